"""Typed config of `slmscale eval` (key=value overrides, as every stage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slmscale.config import ConfigError


@dataclass(frozen=True)
class EvalConfig:
    """How a run is scored on zero-shot benchmarks."""

    score: Literal["mean", "sum"] = "mean"
    """The headline score of a file: mean per-unit log-likelihood (the paper's, docs/PAPER.md §5.1) or
    the sum. Both are always computed and recorded; this one names the flat metrics without a
    suffix and goes into --write-scores files."""
    tokens_per_batch: int = 16384
    """Padded tokens per forward pass (memory bound; scores do not depend on it)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the LM scores, and HuBERT tokenizes benchmark audio; auto = cuda when available."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto = bf16 autocast on a GPU that supports it, fp32 on CPU (log-softmax always in fp32)."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    workers: int = 0
    """Feature-extraction processes for benchmark audio; 0 = automatic."""
    cache_dir: str = ""
    """Where benchmark units and n-gram baselines are cached; "" = $SLMSCALE_CACHE or ~/.cache/slmscale."""
    ngram_order: int = 5
    """Order of the Kneser-Ney unit n-gram baseline trained on the run's training units; 0 = none."""
    bootstrap: int = 1000
    """Bootstrap resamples for the 95% intervals."""
    seed: int = 0
    """Seed of the bootstrap."""

    def cache(self) -> Path:
        """The cache dir this config names."""
        from slmscale.evaluate.inputs import default_cache_dir
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def __post_init__(self) -> None:
        for name, low in (("tokens_per_batch", 2), ("threads", 0), ("workers", 0), ("ngram_order", 0),
                          ("bootstrap", 10)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= {low}")
