"""The settings of `slmscale report` (its `--config` file, flags and `key=value` overrides).

Not the study's `fit` group (StudyFitConfig), though the keys mean the same: a report made by hand
defaults to 1,000 bootstrap resamples, the study to 200 (a tiny study's report in minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

from slmscale.config import ConfigError


@dataclass(frozen=True)
class ReportConfig:
    """How `slmscale report` fits the laws of a sweep."""
    bootstrap: int = 1000
    """Bootstrap resamples for every interval of the report (0 = none). `--bootstrap`."""
    seed: int = 0
    """Seed of the bootstraps. `--seed`."""
    delta: float = 1e-3
    """Huber delta of every law fit (Hoffmann's 1e-3; a study's fit.delta). `--delta`."""

    def __post_init__(self) -> None:
        if self.bootstrap < 0:
            raise ConfigError(f"bootstrap: value {self.bootstrap!r} must be >= 0 (0 = no intervals)")
        if not self.delta > 0:
            raise ConfigError(f"delta: value {self.delta!r} must be > 0")
