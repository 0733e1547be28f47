"""Simulation check of the downstream γ estimators: bias of γ and coverage of its 95% interval.

The released runs of Cuervo & Marxer 2024 (their compute budgets C = 6ND) are given scores from a
known law, Q_true = level·(C/C_mid)^γ (C_mid the geometric mean of the budgets, `level` about the
runs' mean score), optionally times an allocation shortfall exp(−κ·ln²((D/N)/20)) that puts
over- and under-trained runs below the frontier while the frontier stays the law. Each simulated
dataset draws every run's score from Binomial(n, Q_true)/n, independently, and the estimator is
run on it exactly as on real data. Reported:

- bias: mean of γ̂/γ − 1 over datasets (the median is given too);
- coverage: the share of datasets whose nominal 95% interval contains the true γ;
- saturation_rate: the share of datasets where the estimator declared saturation (all false
  alarms, since the law never saturates).

`SETTINGS` holds the three speech benchmarks of Table 4 with the paper's exponents and the
benchmarks' item counts (`downstream_noise.ITEM_COUNTS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from slmscale.scaling import downstream_noise as noise
from slmscale.scaling.downstream import _bootstrap_gamma, _method_fit

SETTINGS: dict[str, dict[str, float]] = {
    "sblimp_macro": {"gamma": 0.021, "n_items": 4060.0, "level": 0.58},
    "tsc": {"gamma": 0.025, "n_items": 1871.0, "level": 0.72},
    "ssc": {"gamma": 0.017, "n_items": 1871.0, "level": 0.54},
}
"""Per benchmark: Table 4's speech γ, the item count, and the score at C_mid (released runs' mean)."""
OPTIMAL_TOKENS_PER_PARAM = 20.0
"""Tokens per parameter of the runs that sit on the frontier in the shortfall scenario."""


def true_scores(params: np.ndarray, tokens: np.ndarray, gamma: float, level: float,
                kappa: float = 0.0) -> np.ndarray:
    """Q_true of each run: the power law in C = 6ND, times the allocation shortfall when kappa > 0."""
    flops = 6.0 * params * tokens
    frontier = level * (flops / np.exp(np.mean(np.log(flops)))) ** gamma
    return frontier * np.exp(-kappa * np.log(tokens / params / OPTIMAL_TOKENS_PER_PARAM) ** 2)


def draw_datasets(truth: np.ndarray, n_items: float, datasets: int, seed: int) -> np.ndarray:
    """`datasets` × runs scores, each Binomial(n, Q_true)/n independently."""
    rng = np.random.default_rng(seed)
    return rng.binomial(int(round(n_items)), truth, size=(datasets, len(truth))) / round(n_items)


def _noise_aware(flops: np.ndarray, data: np.ndarray, n_items: float, resamples: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    est = noise.estimate(flops, data, n_items)
    intervals, failed = np.full((len(data), 2), np.nan), 0
    for i in range(len(data) if resamples else 0):
        boot = noise.bootstrap(flops, data[i], n_items, {k: v[i] for k, v in est.items()}, resamples, seed + i)
        intervals[i], failed = boot["gamma_ci95"] or [np.nan, np.nan], failed + boot["failed"]
    return est["gamma"], np.isfinite(est["cut"]), intervals, failed


def _presaturation(flops: np.ndarray, data: np.ndarray, resamples: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The earlier default: plain envelope, BIC hinge, runs resampled (kept to show its failure)."""
    gammas, hinged = np.empty(len(data)), np.zeros(len(data), dtype=bool)
    intervals, failed = np.full((len(data), 2), np.nan), 0
    for i, score in enumerate(data):
        fit, _, _, break_flops = _method_fit(flops, score, "presaturation")
        gammas[i], hinged[i] = fit["gamma"], break_flops is not None
        if resamples:
            boot = _bootstrap_gamma(flops, score, "presaturation", resamples, seed + i)
            intervals[i], failed = boot["gamma_ci95"] or [np.nan, np.nan], failed + boot["failed"]
    return gammas, hinged, intervals, failed


def simulate(params: np.ndarray, tokens: np.ndarray, gamma: float, n_items: float, level: float,
             datasets: int = 400, resamples: int = 300, seed: int = 0, method: str = "noise_aware",
             kappa: float = 0.0) -> dict[str, Any]:
    """Bias and coverage of `method` ("noise_aware" or "presaturation") over `datasets` simulated
    datasets (module docstring); `resamples` = 0 measures bias only."""
    flops = 6.0 * np.asarray(params, float) * np.asarray(tokens, float)
    truth = true_scores(np.asarray(params, float), np.asarray(tokens, float), gamma, level, kappa)
    data = draw_datasets(truth, n_items, datasets, seed)
    if method == "noise_aware":
        gammas, saturated, intervals, failed = _noise_aware(flops, data, n_items, resamples, seed + 10_000)
    elif method == "presaturation":
        gammas, saturated, intervals, failed = _presaturation(flops, data, resamples, seed + 10_000)
    else:
        raise ValueError(f"simulate knows the methods noise_aware and presaturation, not {method!r}")
    ratio = gammas[np.isfinite(gammas)] / gamma
    covered = (intervals[:, 0] <= gamma) & (gamma <= intervals[:, 1])
    return {"method": method, "gamma": gamma, "n_items": n_items, "kappa": kappa, "datasets": datasets,
            "resamples": resamples, "seed": seed, "n_fitted": int(len(ratio)),
            "bias": float(ratio.mean() - 1.0), "median_bias": float(np.median(ratio) - 1.0),
            "relative_sd": float(ratio.std(ddof=1)), "saturation_rate": float(saturated.mean()),
            "coverage": float(covered.mean()) if resamples else None,
            "interval_missing": int(np.isnan(intervals[:, 0]).sum()) if resamples else None,
            "bootstrap_failed": failed}
