"""What every law's fit returns, and the pieces all fits share: the Huber loss on log loss
(Hoffmann et al. 2022, Approach 3) and the R² that papers report on the loss itself."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """Elementwise Huber: quadratic within ±delta, linear outside (robust to outlier runs)."""
    small = np.abs(residual) <= delta
    return np.where(small, 0.5 * residual ** 2, delta * (np.abs(residual) - 0.5 * delta))


def huber_derivative(residual: np.ndarray, delta: float) -> np.ndarray:
    return np.clip(residual, -delta, delta)


def r_squared(observed: np.ndarray, predicted: np.ndarray) -> float:
    """1 - SS_res/SS_tot on the loss (not its log), as Muennighoff et al. report it."""
    observed, predicted = np.asarray(observed, float), np.asarray(predicted, float)
    total = float(((observed - observed.mean()) ** 2).sum())
    return 1.0 - float(((observed - predicted) ** 2).sum()) / total if total > 0 else math.nan


@dataclass
class LawFit:
    """One fitted law. `params` uses the names of fit.json: E, A, B, alpha, beta, and
    R_N_star, R_D_star for the data-constrained law (N_c, D_c, alpha_N, alpha_D for Kaplan)."""
    law: str
    params: dict[str, float]
    converged: bool
    """The best start met the optimizer's tight tolerances and its gradient norm is ~0."""
    objective: float
    """Summed Huber of log-loss residuals at `params`."""
    n_points: int
    r2: float
    delta: float
    fixed: dict[str, float] = field(default_factory=dict)
    """Parameters held constant (--fix), included in `params` too."""
    gradient_norm: float = math.nan
    starts: int = 0
    """Initialisations tried (the grid size)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Law-specific results: compute_optimal, ci, bootstrap, extrapolation, ..."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        extra = out.pop("extra")
        return {**out, **extra}
