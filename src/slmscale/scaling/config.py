"""Typed config of `slmscale fit` (flags and key=value overrides map onto it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slmscale.config import ConfigError

Law = Literal["chinchilla", "data-constrained", "kaplan", "isoflop", "downstream"]
READS = {
    "chinchilla": {"delta", "fix", "tie_alpha_beta", "bootstrap", "seed", "extrapolate_below"},
    "data-constrained": {"delta", "fix", "tie_alpha_beta", "bootstrap", "seed"},
    "kaplan": {"delta"},
    "isoflop": {"isoflop_tolerance"},
    "downstream": {"bootstrap", "seed", "metric", "text_reference"},
}
"""The settings each law reads (besides law and drop_highest_loss, read for every law): another one
set away from its default would be silently ignored, so it is an error instead."""


@dataclass(frozen=True)
class FitConfig:
    """Which law is fitted to a results table, and how."""

    law: Law = "chinchilla"
    """chinchilla (Hoffmann Approach 3), data-constrained (Muennighoff: R_D*, R_N* on top of a base law),
    kaplan, isoflop (Hoffmann Approach 2) or downstream (a metric against compute and loss)."""
    delta: float = 1e-3
    """Huber delta on log-loss residuals (Hoffmann's 1e-3; Cuervo & Marxer 2024 used 0.03)."""
    fix: str = ""
    """Parameters held constant, "name=value,name=value" (E, A, B, alpha, beta; for data-constrained all
    five base constants fixed means only R_D*, R_N* are fitted)."""
    tie_alpha_beta: bool = False
    """Fit one exponent for N and D (Muennighoff et al.'s base law)."""
    bootstrap: int = 0
    """Resamples for standard errors and 95% intervals (0 = none; 1000 is a good default)."""
    seed: int = 0
    """Seed of the bootstrap."""
    drop_highest_loss: int = 0
    """Drop this many highest-loss rows before fitting (Epoch AI drops 5 of the Chinchilla points)."""
    extrapolate_below: float = 0.0
    """Extrapolation check: fit on runs below this many FLOPs, report the error on the rest (0 = off)."""
    isoflop_tolerance: float = 0.1
    """isoflop: runs whose FLOPs agree within this relative tolerance form one budget."""
    metric: str = ""
    """downstream: the metric column (e.g. sblimp, ssc, tsc)."""
    text_reference: str = ""
    """downstream: "pythia" adds the text models' exponent and the speech-vs-text comparison."""

    def __post_init__(self) -> None:
        if self.delta <= 0:
            raise ConfigError(f"delta={self.delta} must be > 0")
        for name in ("bootstrap", "drop_highest_loss"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        if self.text_reference not in ("", "pythia"):
            raise ConfigError(f"text_reference={self.text_reference!r}: the shipped reference is 'pythia'")
        default = FitConfig.__dataclass_fields__
        reads = READS.get(self.law, set(default))  # an unknown law is the config loader's error
        for name in sorted(set(default) - reads - {"law", "drop_highest_loss"}):
            if getattr(self, name) != default[name].default:
                raise ConfigError(f"{name}={getattr(self, name)!r}: the {self.law} law does not use it "
                                  f"(it reads {', '.join(sorted(reads))})")

    def fixed(self) -> dict[str, float]:
        """`fix` parsed; a malformed item is a ConfigError naming it."""
        out: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in self.fix.split(","))):
            name, _, value = item.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"fix: {item!r} is not name=number") from None
        return out
