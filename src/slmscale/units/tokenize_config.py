"""The settings of `slmscale tokenize` (its `--config` file and `key=value` overrides).

The units themselves are fixed by the tokenizer; these keys choose only how its units are stored
(`dedup`) and how the stage runs, which is why `tokenize_corpus` takes them as plain arguments and
the study passes its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from slmscale.config import ConfigError


@dataclass(frozen=True)
class TokenizeConfig:
    """How `slmscale tokenize` turns audio into a units dir."""
    dedup: Optional[bool] = None
    """Collapse runs of a repeated unit into one (their lengths kept in .dur); null = the tokenizer's
    own setting (tokenizer.json `dedup`). `--no-dedup` sets false."""
    skip_bad: bool = False
    """Leave out unreadable or empty audio files (listed in meta.json `skipped`) instead of stopping."""
    workers: int = 0
    """Feature-extraction processes; 0 = one per CPU core."""
    hubert_path: Optional[str] = None
    """Where the tokenizer's HuBERT model lies now, if it moved since the tokenizer was made (checked
    to be the same weights, so the units do not change); null = where the tokenizer recorded it."""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"workers: value {self.workers!r} must be >= 0 (0 = one per core)")
        if self.hubert_path == "":
            raise ConfigError("hubert_path: value '' names no directory; leave it null to use the tokenizer's")
