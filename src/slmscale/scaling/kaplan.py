"""The joint size-data law of Kaplan et al. 2020 ("Scaling Laws for Neural Language Models",
Eq. 1.5): L(N, D) = [(N_c/N)^(α_N/α_D) + D_c/D]^α_D, with no irreducible term.

Fitted the way the Chinchilla law is (chinchilla.py; Hoffmann et al. 2022, Besiroglu et al.
2024): summed Huber of log-loss residuals, a grid of starts run through the batched L-BFGS,
the distinct best few polished with scipy and checked for convergence. N_c and D_c are optimised
as their logs, which turns log L into α_D · LSE((α_N/α_D)(log N_c − log N), log D_c − log D).
"""

from __future__ import annotations

import numpy as np

from slmscale.scaling.chinchilla import (POLISHED_STARTS, LogHuberObjective, check_data, check_enough_points,
                                         check_exponents, fit_multistart, free_parameters, grid_starts,
                                         multistart_summary, project_starts)
from slmscale.scaling.law_fit import LawFit, r_squared

COORDS = ("log_N_c", "log_D_c", "alpha_N", "alpha_D")
NAMES = ("N_c", "D_c", "alpha_N", "alpha_D")
KAPLAN_GRID = {"log_N_c": np.arange(10.0, 41.0, 5.0), "log_D_c": np.arange(10.0, 41.0, 5.0),
               "alpha_N": np.array([0.05, 0.1, 0.2, 0.4, 0.8]), "alpha_D": np.array([0.05, 0.1, 0.2, 0.4, 0.8])}
"""Starts: N_c, D_c from e^10 to e^40 (2e4 to 2e17; Kaplan's 6.4e13 and 1.8e13 are e^31.8 and
e^30.5) and exponents from 0.05 to 0.8 on a doubling scale (Kaplan's 0.076 and 0.103 inside).
The exponents must start positive: α_D divides α_N. 7 × 7 × 5 × 5 = 1,225 starts."""


def kaplan_loss(params: dict, N, D) -> np.ndarray:
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    ratio = params["alpha_N"] / params["alpha_D"]
    return ((params["N_c"] / N) ** ratio + params["D_c"] / D) ** params["alpha_D"]


def kaplan_model(log_n: np.ndarray, log_d: np.ndarray):
    """log L = α_D · LSE(u0, u1), u0 = (α_N/α_D)(n_c − log N), u1 = d_c − log D, and its pullback.
    With shares p = softmax(u): ∂/∂n_c = α_N p0, ∂/∂d_c = α_D p1, ∂/∂α_N = p0 (n_c − log N),
    ∂/∂α_D = LSE − p0 u0."""
    def model(x):
        n_c, d_c, alpha_n, alpha_d = (x[:, i, None] for i in range(4))
        gap = n_c - log_n
        u0 = (alpha_n / alpha_d) * gap
        u1 = d_c - log_d
        top = np.maximum(u0, u1)
        exp0, exp1 = np.exp(u0 - top), np.exp(u1 - top)
        total = exp0 + exp1
        lse = top + np.log(total)
        p0, p1 = exp0 / total, exp1 / total

        def pullback(c):
            c0 = c * p0
            return np.stack([alpha_n[:, 0] * c0.sum(1), alpha_d[:, 0] * (c * p1).sum(1), (c0 * gap).sum(1),
                             (c * (lse - p0 * u0)).sum(1)], axis=1)
        return alpha_d * lse, pullback
    return model


def to_params(x_full: np.ndarray) -> dict[str, float]:
    log_n_c, log_d_c, alpha_n, alpha_d = (float(v) for v in x_full)
    with np.errstate(over="ignore"):
        n_c, d_c = float(np.exp(log_n_c)), float(np.exp(log_d_c))
    return {"N_c": n_c, "D_c": d_c, "alpha_N": alpha_n, "alpha_D": alpha_d}


def fit_kaplan(N, D, loss, delta: float = 1e-3, grid=None, polish_count: int = POLISHED_STARTS) -> LawFit:
    """Fit Kaplan's L(N, D) from every start of `grid` (default KAPLAN_GRID)."""
    N, D, loss = check_data(N, D, loss)
    base, free_map, free = free_parameters(None, False, names=NAMES, coords=COORDS, logged=("N_c", "D_c"))
    objective = LogHuberObjective(kaplan_model(np.log(N), np.log(D)), np.log(loss), delta, np.ones(len(N)),
                                  base, free_map)
    starts = project_starts(grid_starts(KAPLAN_GRID if grid is None else grid, COORDS), free_map)
    check_enough_points(len(N), len(free), "kaplan")
    found = fit_multistart(objective, starts, float(len(N)), delta, polish_count)
    params = to_params(found.best.x)
    check_exponents(params, ("alpha_N", "alpha_D"), "kaplan")
    return LawFit(
        law="kaplan", params=params, converged=found.converged, objective=found.best.fun, n_points=len(N),
        r2=r_squared(loss, kaplan_loss(params, N, D)), delta=delta, gradient_norm=found.best.gradient_norm,
        starts=len(starts),
        extra={"free": free, **multistart_summary(found),
               "polished": [{"objective": p.fun, "converged": p.converged, "gradient_norm": p.gradient_norm,
                             "coords": dict(zip(COORDS, p.x.tolist()))} for p in found.polished]})
