"""Downstream γ that knows each score is a binomial measurement (the default of `downstream.py`).

Every score Q here is an accuracy over n two-choice items, so it carries a binomial standard error
√(Q(1 − Q)/n): about 1.1 points for spoken StoryCloze (1,871 pairs) against a 5-point range over
the whole study. Taking the plain envelope of best score per FLOP (Cuervo & Marxer 2024, Figure 2)
then picks runs whose noise happened to be favourable, more of them at high compute, and γ comes
out high; a hinge chosen by BIC "finds" saturation in noise; and resampling runs does not measure
the noise of a score at all. This estimator keeps the paper's idea (fit Q ∝ C^γ to the runs no
cheaper run beats, before saturation) but decides each step against the noise:

1. frontier: a run is left out only when a run with no more compute beats it by more than
   `DOMINANCE_Z` standard errors of the difference (`dominated`); noise alone rarely does that;
2. saturation: a hinge, flat after one of the frontier runs, replaces the straight line in
   (log C, log Q) only when it lowers the noise-weighted χ² by more than `SATURATION_CHI2`, a
   threshold fixed in advance (p = 0.001 for one break; over ~25 candidate breaks the simulated
   false-alarm rate on the released runs' budgets is 0–0.3%, against 15–25% for a BIC choice);
3. fit: weighted least squares of log Q on log C, each run weighted by 1/var(log Q) = nQ/(1 − Q)
   (delta method), so the noisier low scores count less;
4. interval: a parametric bootstrap. Every run's score is redrawn from Binomial(n, Q̃)/n, with Q̃
   the fitted law for the runs in the fit and the observed score for the others, and steps 1–3
   are redone on each replicate; the 95% interval is the basic (reflected percentile) interval,
   2γ̂ − q₉₇.₅ … 2γ̂ − q₂.₅, which undoes to first order any shift the selection steps add.

The item count n of a metric comes from the caller (`n_items`), from a `<metric>_n` column of the
results table, or from `ITEM_COUNTS` (the public benchmarks' sizes); without one the caller falls
back to resampling runs and says so.

Caveat on the noise model: the runs are scored on the same items, so their errors are correlated
and the run-to-run scatter is smaller than independent binomial noise (on the released runs the
residual χ²/dof of a straight line is 0.3–0.7). A shared item effect cancels in a slope, so
treating the noise as independent most likely makes the intervals conservative on real data; the
simulation validates the estimator under the independent model only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ITEM_COUNTS: dict[str, tuple[float, str]] = {
    "sblimp_macro": (4060.0, "sBLIMP dev, 6,300 pairs in 12 types of 100–900 pairs: the macro mean's "
                             "effective count 144/Σ(1/n_type)"),
    "sblimp": (4060.0, "sBLIMP dev macro mean over 12 types, effective count as sblimp_macro"),
    "sblimp_pair": (4060.0, "sBLIMP dev, both voices right; averaging unstated, so the macro's "
                            "(smaller, conservative) effective count"),
    "sblimp_pairs": (6300.0, "sBLIMP dev, mean over its 6,300 pairs"),
    "ssc": (1871.0, "spoken StoryCloze, 1,871 pairs (StoryCloze Spring-2016 test stories)"),
    "tsc": (1871.0, "topic StoryCloze, 1,871 pairs"),
    "blimp": (67000.0, "BLiMP, 67 paradigms x 1,000 pairs"),
    "blimp_dedup": (67000.0, "BLiMP, 67 paradigms x 1,000 pairs"),
    "lambada": (5153.0, "LAMBADA (OpenAI) test, 5,153 passages"),
    "lambada_dedup": (5153.0, "LAMBADA (OpenAI) test, 5,153 passages"),
}
"""Default item count per metric name: the size of the public benchmark the name stands for. A
study scored on other (e.g. smaller, generated) sets must pass its own counts."""

DOMINANCE_Z = 2.0
"""A run leaves the frontier when a run with no more compute beats it by more than this many
standard errors of the difference. Chosen by simulation (`downstream_validation.py`) among 1.5,
2 and 3, never on real data: with over/under-trained runs up to 5% below the law, 3 keeps more
of them and γ comes out 3–5% low (6–11% when they sit up to 12% below); 1.5 drops runs whose
noise was unlucky and sSC γ comes out ~3% high on an exact law; 2 keeps both within ~4%
(−4 to −6% when runs sit up to 12% below).
On the released runs γ is the same for any value from 1.5 to 3."""
SATURATION_CHI2 = 10.83
"""χ² drop a flat-after-break hinge must achieve over a straight line to be called saturation
(the χ²₁ quantile at p = 0.001), fixed in advance. Its power is limited: on the released runs'
budgets a plateau after 3·10¹⁹ FLOPs (11 runs on it) is found in 60–68% of simulated sBLIMP and
tSC datasets but 5% of sSC ones, a plateau after 10²⁰ (2 runs) in under 15%."""
CHUNK = 128
"""Replicates processed together: large enough for numpy to pay off, small enough to stay in cache."""
MIN_POINTS = 3
"""Fewest runs a power law, or the part of a hinge before its break, is fitted on."""


def item_count(metric: str, n_items: float | None = None,
               column: np.ndarray | None = None) -> tuple[np.ndarray | float | None, str | None]:
    """The item count(s) of `metric` and where they came from: the argument, then a `<metric>_n`
    column (per run), then `ITEM_COUNTS`; (None, None) when none is known."""
    if n_items is not None:
        if not (math.isfinite(n_items) and n_items >= 1):
            raise ValueError(f"n_items must be a number of items (>= 1), got {n_items}")
        return float(n_items), "argument n_items"
    if column is not None:
        counts = np.asarray(column, dtype=float)
        if np.all(np.isfinite(counts) & (counts >= 1)):
            return counts, f"column {metric}_n"
        raise ValueError(f"column {metric}_n must hold item counts >= 1 for every run")
    known = ITEM_COUNTS.get(metric.lower())
    return (known[0], f"default for {metric!r}: {known[1]}") if known else (None, None)


def score_se(score: np.ndarray, n_items: np.ndarray | float) -> np.ndarray:
    """Binomial standard error √(Q(1 − Q)/n) of an accuracy Q (a fraction) over n items."""
    return np.sqrt(score * (1.0 - score) / n_items)


def log_weights(score: np.ndarray, n_items: np.ndarray | float) -> np.ndarray:
    """1/var(log Q) = nQ/(1 − Q): the weight of a run in the log-space fit (delta method)."""
    return n_items * score / np.clip(1.0 - score, 1e-12, None)


def dominated(flops: np.ndarray, score: np.ndarray, se: np.ndarray, z: float = DOMINANCE_Z) -> np.ndarray:
    """Runs (last axis) beaten by more than z standard errors of the difference by a run with no
    more compute; leading axes are replicates."""
    n = len(flops)
    cheaper = (flops[None, :] <= flops[:, None]) & ~np.eye(n, dtype=bool)  # [i, j]: C_j <= C_i
    gap = np.maximum(score[..., None, :] - score[..., :, None], 0.0)  # [i, j]: Q_j − Q_i where positive
    se2 = (z * se) ** 2
    beaten = gap * gap > se2[..., None, :] + se2[..., :, None]
    beaten &= cheaper
    return beaten.any(axis=-1)


def weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares y = slope·x + intercept along the last axis (w = 0 leaves a point
    out); returns slope, intercept and the weighted residual sum (a χ² when w = 1/variance).
    A fit with no spread in x gives NaN."""
    s0 = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = (w * x).sum(-1) / s0, (w * y).sum(-1) / s0
        dx = x - mx[..., None]
        sxx = (w * dx * dx).sum(-1)
        slope = np.where(sxx > 1e-12 * np.maximum(s0, 1e-300), (w * dx * (y - my[..., None])).sum(-1) / sxx, np.nan)
        intercept = my - slope * mx
        chi2 = (w * (y - intercept[..., None] - slope[..., None] * x) ** 2).sum(-1)
    return slope, intercept, chi2


def _hinge_chi2(clipped: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted χ² of y = a + b·clipped[k] for every break k (rows of `clipped`) and replicate
    (leading axes of y, w), from sums computed as matrix products (fast for many replicates)."""
    wy = w * y
    s0, sy, syy = w.sum(-1)[..., None], wy.sum(-1)[..., None], (wy * y).sum(-1)[..., None]
    sz, szz, szy = w @ clipped.T, w @ (clipped ** 2).T, wy @ clipped.T
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = szz - sz ** 2 / s0
        explained = np.where(sxx > 1e-9 * s0, (szy - sz * sy / s0) ** 2 / sxx, np.nan)
        return syy - sy ** 2 / s0 - explained


def saturation_cut(x: np.ndarray, y: np.ndarray, w: np.ndarray,
                   threshold: float = SATURATION_CHI2) -> np.ndarray:
    """Per replicate, the log C after which the points are saturated, or +inf when no hinge
    (y = a + b·min(x, x_k), flat after x_k, ≥ `MIN_POINTS` weighted points up to x_k and one
    after) lowers the weighted χ² of the straight line by more than `threshold`."""
    x0, y0 = x - x.mean(), y - y.mean(-1, keepdims=True)  # centred: the sums below stay well conditioned
    line = weighted_line(x0, y0, w)[2]
    hinge = _hinge_chi2(np.minimum(x0[None, :], x0[:, None]), y0, w)  # (..., k): break after run k
    kept = (w > 0).astype(float)
    before = kept @ (x[None, :] <= x[:, None]).T.astype(float)
    gain = np.where((before >= MIN_POINTS) & (kept.sum(-1)[..., None] - before >= 1), line[..., None] - hinge, -np.inf)
    gain = np.where(np.isfinite(gain), gain, -np.inf)
    best = np.argmax(gain, axis=-1)
    fired = np.take_along_axis(gain, best[..., None], -1)[..., 0] > threshold
    return np.where(fired, x[best], np.inf)


def estimate(flops: np.ndarray, score: np.ndarray, n_items: np.ndarray | float,
             z: float = DOMINANCE_Z, threshold: float = SATURATION_CHI2) -> dict[str, np.ndarray]:
    """Steps 1–3 of the module docstring on scores (fractions; leading axes are replicates):
    gamma, log_coefficient, the frontier and fitted masks, and the saturation cut in log C."""
    score = np.clip(score, 0.5 / np.max(n_items), 1.0 - 0.5 / np.max(n_items))  # a 0 or 1 score has no log
    x, y = np.log(flops), np.log(score)
    frontier = ~dominated(flops, score, score_se(score, n_items), z)
    w = np.where(frontier, log_weights(score, n_items), 0.0)
    cut = saturation_cut(x, y, w, threshold)
    used = frontier & (x <= cut[..., None])
    slope, intercept, _ = weighted_line(x, y, np.where(used, w, 0.0))
    slope = np.where(used.sum(-1) >= MIN_POINTS, slope, np.nan)
    return {"gamma": slope, "log_coefficient": intercept, "frontier": frontier, "used": used, "cut": cut}


def bootstrap(flops: np.ndarray, score: np.ndarray, n_items: np.ndarray | float, fit: dict[str, np.ndarray],
              resamples: int, seed: int, z: float = DOMINANCE_Z,
              threshold: float = SATURATION_CHI2) -> dict[str, Any]:
    """Parametric bootstrap of γ (step 4): binomial redraws around the fitted law (runs in the
    fit) or the observed score (the others); replicates that cannot be fitted are counted."""
    truth = np.where(fit["used"], np.exp(fit["log_coefficient"] + fit["gamma"] * np.log(flops)), score)
    truth = np.clip(truth, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    counts = np.broadcast_to(np.round(n_items).astype(np.int64), flops.shape)
    draws = rng.binomial(counts, truth, size=(resamples, len(flops))) / counts
    gammas = np.concatenate([estimate(flops, draws[i:i + CHUNK], n_items, z, threshold)["gamma"]
                             for i in range(0, resamples, CHUNK)]) if resamples else np.empty(0)
    valid = gammas[np.isfinite(gammas)]
    gamma = float(fit["gamma"])
    interval = None
    if len(valid) >= 2:
        low, high = np.percentile(valid, [2.5, 97.5])
        interval = [2.0 * gamma - float(high), 2.0 * gamma - float(low)]
    return {"kind": "parametric: binomial redraw of every run's score, frontier/saturation/fit redone",
            "interval": "basic (reflected percentile)", "resamples": int(resamples), "n_valid": int(len(valid)),
            "n_converged": int(len(valid)), "failed": int(resamples - len(valid)), "seed": seed,
            "gamma_ci95": interval, "gamma_std": float(valid.std(ddof=1)) if len(valid) > 1 else None,
            "replicate_mean": float(valid.mean()) if len(valid) else None,
            # Kept so that two laws' exponents can be contrasted (`gamma_contrast`).
            "gamma_replicates": [round(float(g), 8) for g in valid]}


def gamma_contrast(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any]:
    """γ_second / γ_first and γ_second − γ_first with 95% percentile intervals, from the two
    laws' bootstrap replicates (`bootstrap`'s `gamma_replicates`). The two bootstraps redraw
    independent runs, so replicate i of one beside replicate i of the other is a draw of the
    pair; a ratio needs γ_first > 0 and is taken over the pairs that have it (`ratio_n`)."""
    a = np.asarray((first or {}).get("gamma_replicates") or [], dtype=float)
    b = np.asarray((second or {}).get("gamma_replicates") or [], dtype=float)
    n = min(len(a), len(b))
    if n < 2:
        return {"error": "too few bootstrap replicates of γ to contrast (need 2 of each)"}
    a, b = a[:n], b[:n]
    positive = a > 0
    out: dict[str, Any] = {"n": int(n), "difference_ci95": [float(v) for v in np.percentile(b - a, [2.5, 97.5])],
                           "ratio_n": int(positive.sum()), "interval": "percentile over paired replicates"}
    if positive.sum() >= 2:
        out["ratio_ci95"] = [float(v) for v in np.percentile(b[positive] / a[positive], [2.5, 97.5])]
    return out
