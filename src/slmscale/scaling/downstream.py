"""Downstream scaling: how a benchmark score grows with training compute, and how it tracks loss.

Cuervo & Marxer 2024 ("Scaling Properties of Speech Language Models", EMNLP) take, per
benchmark, the envelope of the best score reached at each compute budget and fit Q ∝ C^γ to it
(their Figure 2 and Table 4); before the scores saturate, each score is linear in test loss
(their Figure 4). The authors did not release their fitting code.

Default method, "noise_aware" (`downstream_noise.py`): every score is an accuracy over n items
with binomial noise, so the frontier keeps every run that no cheaper run beats by more than 2
standard errors, saturation needs a χ² drop of 10.83 (both rules fixed in advance), log Q is
fitted on log C by least squares weighted by nQ/(1 − Q), and the 95% interval comes from a
parametric bootstrap that redraws every score from Binomial(n, Q̃)/n and redoes every step. It
is validated by simulation (`downstream_validation.py`, tests/test_scaling_downstream_noise.py):
on the released runs' budgets with a known law and binomial noise, γ is unbiased to within
+0.4% / +0.2% / +2.2% (sBLIMP / tSC / sSC, mean over 1,000 datasets, seed 0) and the intervals cover
94% / 93% / 94%. When over- and under-trained runs sit 1–12% below the law, γ comes out 2–6%
low (the frontier keeps runs less than ~2 standard errors below it). The item count comes from
`n_items`, a `<metric>_n` column or `downstream_noise.ITEM_COUNTS`; with none, the earlier
default below is used and the output's `noise` says so.

On the released runs (slm_scaling/results.csv, 31 runs; Table 4: sBLIMP 0.021, tSC 0.025, sSC
0.017), "noise_aware" keeps all 31 runs, finds no saturation and gives γ = 0.0175 [0.0149,
0.0199] / 0.0235 [0.0205, 0.0261] / 0.0123 [0.0079, 0.0160] (1,000 resamples, seed 0): Table 4's
tSC lies inside, its sBLIMP and sSC above the intervals.

Earlier candidates, kept as methods for comparison (γ on the released runs, sBLIMP / tSC / sSC):
- presaturation (the earlier default): plain envelope (`envelope`), BIC hinge dropping the points
  after a break (`saturation_break`), unweighted fit (`fit_power_law`): 0.0205 / 0.0243 / 0.0107.
  It was picked for matching Table 4, but in the simulation above it is biased +6% / +4% / +26%,
  its hinge fires in 15–24% of unsaturated datasets, and its run-resampling intervals cover
  80% / 81% / 67%;
- envelope (every envelope point): 0.0185 / 0.0243 / 0.0107;
- all_runs (no envelope): 0.0176 / 0.0234 / 0.0122;
- above_chance (Q − 0.5 on the envelope): 0.154 / 0.084 / 0.140;
- error ((1 − Q) ∝ C^−γ on the envelope): 0.025 / 0.060 / 0.013.
These fit log Q rather than Q − chance or 1 − Q because the paper writes its law on Q.
On Pythia BLiMP (final checkpoints 70M–6.9B, 67,000 pairs) "noise_aware" and "presaturation"
both give 0.048 on the three smallest models (saturation found after 410M), the plain envelope
0.027, against the paper's 0.066.

The unit of the metric (% or fraction) is detected (`as_fraction`) and never changes γ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slmscale.files import StageError
from slmscale.scaling import downstream_noise as noise
from slmscale.scaling.table import ResultsTable

METHODS = ("noise_aware", "presaturation", "envelope", "all_runs", "above_chance", "error")
DEFAULT_METHOD = "noise_aware"
CHANCE = 0.5
"""Chance accuracy of the two-alternative benchmarks (sBLIMP, tSC, sSC, BLiMP)."""
MIN_POINTS = 3
"""Fewest points a power law or the pre-saturation part of a hinge is fitted on."""
Z95 = 1.959963984540054
"""Two-sided 95% quantile of the standard normal."""


def _array(values: Any, name: str, positive: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(array) | ((array <= 0) if positive else False))
    if bad.size:
        need = "positive finite numbers" if positive else "finite numbers"
        raise ValueError(f"{name} must hold {need}: index {bad[0]} is {array[bad[0]]}")
    return array


def _pair(x: Any, y: Any, x_name: str, y_name: str, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x, y = _array(x, x_name, positive), _array(y, y_name, positive)
    if len(x) != len(y):
        raise ValueError(f"{x_name} has {len(x)} values but {y_name} has {len(y)}")
    return x, y


def as_fraction(values: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """Scores as fractions, and the unit they came in: all ≤ 1 is a fraction, else percent."""
    if np.all(values <= 1.0):
        return values, "fraction"
    if np.all(values <= 100.0):
        return values / 100.0, "percent"
    raise ValueError(f"{name}: scores above 100 ({values.max()}) are neither a fraction nor a percentage")


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares y = slope·x + intercept; returns slope, intercept and the residual sum of squares."""
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx == 0.0:
        raise ValueError("all points share one x value; no slope can be fitted")
    slope = float(dx @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    residual = y - (slope * x + intercept)
    return slope, intercept, float(residual @ residual)


def saturation_break(x: np.ndarray, y: np.ndarray, min_before: int = MIN_POINTS) -> int | None:
    """Index of the last point before saturation in `x`-sorted data, or None when one straight line
    explains the points better (BIC: a line has 2 parameters, the hinge a 3rd, its break). The hinge
    is y = a + b·min(x, x_k): linear up to x_k, flat after, with at least one point after."""
    n = len(x)
    if n < min_before + 1:
        return None
    floor = 1e-12 * max(float(np.var(y)) * n, 1e-300)  # an exact fit must not give log(0)
    line_sse = _line(x, y)[2]
    bic_line = n * math.log(max(line_sse, floor) / n) + 2 * math.log(n)
    best_k, best_sse = None, math.inf
    for k in range(min_before - 1, n - 1):
        clipped = np.minimum(x, x[k])
        if np.ptp(clipped) == 0:
            continue
        sse = _line(clipped, y)[2]
        if sse < best_sse:
            best_k, best_sse = k, sse
    if best_k is None:
        return None
    bic_hinge = n * math.log(max(best_sse, floor) / n) + 3 * math.log(n)
    return best_k if bic_hinge < bic_line else None


def envelope(flops: Any, metric: Any) -> np.ndarray:
    """Indices of the runs no run with less or equal compute beats (higher metric is better),
    sorted by compute. At equal compute only the best run can be on the envelope."""
    flops, metric = _pair(flops, metric, "flops", "metric")
    order = np.lexsort((-metric, flops))
    ordered = metric[order]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(ordered)[:-1]))
    return order[ordered > best_before]


def fit_power_law(flops: Any, metric: Any) -> dict[str, float]:
    """Q = exp(log_coefficient)·C^gamma by least squares on log Q against log C (natural logs);
    r2 is measured in log space."""
    flops, metric = _pair(flops, metric, "flops", "metric", positive=True)
    if len(flops) < MIN_POINTS:
        raise ValueError(f"a power law needs at least {MIN_POINTS} points, got {len(flops)}")
    x, y = np.log(flops), np.log(metric)
    gamma, log_coefficient, sse = _line(x, y)
    total = float(((y - y.mean()) ** 2).sum())
    return {"gamma": gamma, "log_coefficient": log_coefficient,
            "r2": 1.0 - sse / total if total > 0 else math.nan, "n_points": int(len(flops))}


def _method_fit(flops: np.ndarray, score: np.ndarray, method: str) -> tuple[dict, np.ndarray, np.ndarray, float | None]:
    """γ by `method` on fractional scores: the fit, the envelope, the indices fitted, the break's FLOPs."""
    if method == "all_runs":
        frontier = np.argsort(flops, kind="stable")
        return fit_power_law(flops, score), frontier, frontier, None
    frontier = envelope(flops, score)
    if len(frontier) < MIN_POINTS:
        raise ValueError(f"the envelope has {len(frontier)} points; a power law needs at least {MIN_POINTS}")
    used, break_flops = frontier, None
    if method == "presaturation":
        k = saturation_break(np.log(flops[frontier]), np.log(score[frontier]))
        if k is not None:
            used, break_flops = frontier[:k + 1], float(flops[frontier[k]])
    target = {"presaturation": score, "envelope": score, "above_chance": score - CHANCE, "error": 1.0 - score}[method]
    if np.any(target[used] <= 0):
        raise ValueError(f"method {method!r} needs scores above {CHANCE if method == 'above_chance' else 0} "
                         f"and below 1 on the envelope")
    fit = fit_power_law(flops[used], target[used])
    if method == "error":  # (1 − Q) ∝ C^−γ: report γ so that positive means improving
        fit["gamma"] = -fit["gamma"]
    return fit, frontier, used, break_flops


def _bootstrap_gamma(flops: np.ndarray, score: np.ndarray, method: str, resamples: int, seed: int) -> dict:
    """Resample runs with replacement and redo envelope, saturation and fit; percentile interval.
    Not validated: it ignores the binomial noise of each score (see `downstream_noise.py`)."""
    rng = np.random.default_rng(seed)
    gammas, failed = [], 0
    for _ in range(resamples):
        pick = rng.integers(0, len(flops), len(flops))
        try:
            gammas.append(_method_fit(flops[pick], score[pick], method)[0]["gamma"])
        except ValueError:  # too few distinct envelope points in this resample
            failed += 1
    values = np.array(gammas)
    interval = [float(v) for v in np.percentile(values, [2.5, 97.5])] if len(values) else None
    return {"kind": "runs resampled with replacement (not validated against score noise)", "interval": "percentile",
            "resamples": resamples, "n_valid": len(values), "n_converged": len(values), "failed": failed,
            "seed": seed, "gamma_ci95": interval,
            "gamma_std": float(values.std(ddof=1)) if len(values) > 1 else None}


def loss_metric_fit(loss: Any, metric: Any, max_loss: float | None = None,
                    min_loss: float | None = None) -> dict[str, Any]:
    """metric = slope·loss + intercept on the runs before saturation (the paper's Figure 4), with
    Pearson r and its 95% interval from Fisher's z (tanh(atanh r ± 1.96/√(n−3))).

    "Before saturation": with `min_loss`/`max_loss`, the runs whose loss lies within them. Without
    bounds, automatic: sorted from high to low loss, the metric is tested for a hinge that goes
    flat at low loss (`saturation_break`, BIC); if it wins, the runs below the break's loss are
    the saturated ones and are left out, otherwise all runs are used."""
    loss, metric = _pair(loss, metric, "loss", "metric")
    if min_loss is not None or max_loss is not None:
        low = -math.inf if min_loss is None else float(min_loss)
        high = math.inf if max_loss is None else float(max_loss)
        if low > high:
            raise ValueError(f"min_loss {min_loss} is above max_loss {max_loss}")
        keep = np.flatnonzero((loss >= low) & (loss <= high))
        selection = {"rule": "bounds", "min_loss": min_loss, "max_loss": max_loss, "saturation_loss": None}
    else:
        order = np.argsort(-loss, kind="stable")
        k = saturation_break(-loss[order], metric[order])
        keep = np.sort(order if k is None else order[:k + 1])
        saturation = None if k is None else float(loss[order[k]])
        selection = {"rule": "auto: hinge flat at low loss vs. line, by BIC", "min_loss": saturation,
                     "max_loss": None, "saturation_loss": saturation}
    n = len(keep)
    if n < 4:
        raise ValueError(f"the loss-metric fit needs at least 4 runs before saturation (Fisher z), got {n}")
    x, y = loss[keep], metric[keep]
    slope, intercept, _ = _line(x, y)
    if np.ptp(y) == 0:
        raise ValueError("the metric is constant on the selected runs; no correlation can be measured")
    r = float(np.corrcoef(x, y)[0, 1])
    z = math.atanh(float(np.clip(r, -1 + 1e-15, 1 - 1e-15)))
    half = Z95 / math.sqrt(n - 3)
    return {"slope": slope, "intercept": intercept, "r": r,
            "r_ci95": [math.tanh(z - half), math.tanh(z + half)], "n": int(n), "selection": selection,
            "indices": [int(i) for i in keep], "loss": x.tolist(), "metric": y.tolist()}


def _noise_aware(flops: np.ndarray, score: np.ndarray, counts: np.ndarray | float,
                 resamples: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray, float | None, dict | None]:
    """The default method (`downstream_noise.py`): the fit, the frontier and fitted run indices
    (by compute), the break's FLOPs and the parametric bootstrap."""
    est = noise.estimate(flops, score, counts)
    if not np.isfinite(est["gamma"]):
        raise ValueError(f"fewer than {MIN_POINTS} runs on the frontier before saturation; no power law can be fitted")
    order = np.argsort(flops, kind="stable")
    frontier, used = order[est["frontier"][order]], order[est["used"][order]]
    cut = float(est["cut"])
    break_flops = float(flops[np.argmin(np.abs(np.log(flops) - cut))]) if math.isfinite(cut) else None
    x, y = np.log(flops), np.log(score)
    w = np.where(est["used"], noise.log_weights(score, counts), 0.0)
    chi2 = float(noise.weighted_line(x, y, w)[2])
    total = float((w * (y - (w * y).sum() / w.sum()) ** 2).sum())
    fit = {"gamma": float(est["gamma"]), "log_coefficient": float(est["log_coefficient"]),
           "r2": 1.0 - chi2 / total if total > 0 else math.nan, "chi2": chi2}
    boot = noise.bootstrap(flops, score, counts, est, resamples, seed) if resamples > 0 else None
    return fit, frontier, used, break_flops, boot


def _noise_info(metric: str, method: str, counts: np.ndarray | float | None, source: str | None,
                fit: dict | None = None) -> dict[str, Any]:
    """What the output says about the noise model behind γ and its interval."""
    if method != "noise_aware":
        why = (f"method {method!r} was asked for" if counts is not None else
               f"no item count for {metric!r} (pass n_items or add a {metric}_n column): fell back to {method!r}")
        return {"model": None, "n_items": None, "source": None,
                "note": f"{why}; it ignores the binomial noise of each score and its interval resamples runs, "
                        "which the noise simulation does not validate (γ biased high, intervals undercover)"}
    return {"model": "binomial", "n_items": counts.tolist() if isinstance(counts, np.ndarray) else counts,
            "source": source, "dominance_z": noise.DOMINANCE_Z, "saturation_chi2": noise.SATURATION_CHI2,
            "fit_chi2": fit.get("chi2") if fit else None}


def downstream_scaling(table: ResultsTable, metric: str, method: str = DEFAULT_METHOD,
                       bootstrap: int = 1000, seed: int = 0, n_items: float | None = None) -> dict[str, Any]:
    """The frontier of best `metric` per FLOP and Q ∝ C^γ fitted to it (Figure 2 / Table 4), with a
    bootstrap 95% interval on γ; plus `loss_metric_fit` when the table has a loss column.

    `n_items`: the number of items each score is measured on (else a `<metric>_n` column, else
    `downstream_noise.ITEM_COUNTS`). The default method needs it; without one it falls back to
    "presaturation" with runs resampled, and `method`, `method_requested` and `noise` say so."""
    if method not in METHODS:
        raise StageError(f"unknown downstream method {method!r}; choose one of {', '.join(METHODS)}")
    if metric not in table.metrics:
        known = ", ".join(sorted(table.metrics)) or "none"
        raise StageError(f"{table.source}: no metric column {metric!r} (has {known})")
    raw = table.metrics[metric]
    missing = np.flatnonzero(~np.isfinite(raw))
    if missing.size:
        names = [table.run_ids[i] if table.run_ids else f"row {i}" for i in missing[:5]]
        raise StageError(f"{table.source}: metric {metric!r} is missing (NaN) for {len(missing)} run(s): "
                         f"{', '.join(names)}; drop those runs first")
    requested, boot, fit_noise = method, None, None
    try:
        counts, source = noise.item_count(metric, n_items, table.metrics.get(f"{metric}_n"))
        score, unit = as_fraction(_array(raw, metric, positive=True), metric)
        if method == "noise_aware" and counts is None:
            method = "presaturation"
        if method == "noise_aware":
            fit, frontier, used, break_flops, boot = _noise_aware(table.flops, score, counts, bootstrap, seed)
            fit_noise = fit
        else:
            fit, frontier, used, break_flops = _method_fit(table.flops, score, method)
    except ValueError as error:
        raise StageError(f"{table.source}: metric {metric!r}: {error}") from None
    if method != "noise_aware" and bootstrap > 0:
        boot = _bootstrap_gamma(table.flops, score, method, bootstrap, seed)
    used_set = set(used.tolist())
    points = [{"flops": float(table.flops[i]), "metric": float(raw[i]),
               "run_id": table.run_ids[i] if table.run_ids else str(i), "used_in_fit": int(i) in used_set}
              for i in frontier]
    out: dict[str, Any] = {
        "metric": metric, "unit": unit, "method": method, "method_requested": requested, "gamma": fit["gamma"],
        "log_coefficient": fit["log_coefficient"],  # of the law on fractions, so unit-free too
        "r2_log": fit["r2"], "gamma_ci95": boot["gamma_ci95"] if boot else None, "bootstrap": boot,
        "saturation_flops": break_flops, "n_runs": int(len(table)), "n_envelope": int(len(frontier)),
        "n_fit": int(len(used)), "envelope": points,
        "noise": _noise_info(metric, method, counts, source, fit_noise),
    }
    if table.loss is not None:
        try:
            out["loss_fit"] = loss_metric_fit(table.loss, raw)
        except ValueError as error:
            out["loss_fit"] = {"error": str(error)}
    return out
