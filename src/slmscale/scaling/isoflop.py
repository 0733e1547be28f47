"""Compute-optimal allocation from IsoFLOP profiles: Hoffmann et al. 2022 ("Training Compute-Optimal
Large Language Models"), Approach 2.

Runs that spent the same compute C form one IsoFLOP profile. Along a profile the loss is fitted
by a parabola in ln N; its vertex is N_opt(C) and D_opt(C) = C / (6 N_opt). Power laws
N_opt ∝ C^a and D_opt ∝ C^b are then fitted through the vertices by least squares in log-log.

Known bias (Besiroglu et al. 2024; the vpnls paper, arXiv:2603.22339): a parabola is only a
local approximation of L(ln N) = E + A N^-α + B (C/6N)^-β. The profile is symmetric in ln N about
its minimum only when α = β; otherwise, or when the sampled sizes are not centred on the
minimum, the vertex misses N_opt, and if that miss changes with C the exponent a is biased too.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

MIN_SIZES = 3
"""Distinct model sizes a profile needs for a parabola (three points determine one)."""


def _as_runs(N, D, loss, flops) -> tuple[np.ndarray, ...]:
    N, D, loss = (np.asarray(v, dtype=np.float64) for v in (N, D, loss))
    shapes = {N.shape, D.shape, loss.shape} | ({np.shape(flops)} if flops is not None else set())
    if N.ndim != 1 or len(shapes) != 1:
        raise ValueError(f"isoflop fit: N, D, loss, flops must be 1-d of equal length, got shapes "
                         f"{N.shape}, {D.shape}, {loss.shape}, {np.shape(flops)}")
    flops = 6.0 * N * D if flops is None else np.asarray(flops, dtype=np.float64)
    for name, values in (("N", N), ("D", D), ("loss", loss), ("flops", flops)):
        bad = np.flatnonzero(~(values > 0) | ~np.isfinite(values))
        if bad.size:
            raise ValueError(f"isoflop fit: {name}[{bad[0]}] = {values[bad[0]]} is not a positive number")
    return N, D, loss, flops


def group_budgets(flops, tolerance: float = 0.1, budget=None) -> list[tuple[float, np.ndarray]]:
    """(C, run indices) per compute budget, in increasing C.

    With an explicit `budget` column (the nominal FLOPs of each run's profile), runs sharing a value
    form a budget and C is that value. Otherwise runs are sorted by FLOPs and a budget takes every
    run within `tolerance` (relative) above its smallest run; the next run starts a new budget.
    Anchoring at the smallest run (not the previous one) stops a chain of near neighbours from
    merging distinct budgets. C is then the geometric mean of the budget's FLOPs: real runs land
    near, not on, their nominal budget (integer steps, batch rounding)."""
    flops = np.asarray(flops, dtype=np.float64)
    if budget is not None:
        budget = np.asarray(budget, dtype=np.float64)
        if budget.shape != flops.shape or np.any(~(budget > 0)):
            raise ValueError(f"isoflop fit: budget must hold one positive FLOP value per run ({flops.size})")
        return [(float(c), np.flatnonzero(budget == c)) for c in np.unique(budget)]
    if not 0 < tolerance < 1:
        raise ValueError(f"isoflop fit: tolerance must be in (0, 1), got {tolerance}")
    order = np.argsort(flops, kind="stable")
    groups: list[list[int]] = []
    for i in order:
        if groups and flops[i] <= flops[groups[-1][0]] * (1 + tolerance):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [(float(np.exp(np.log(flops[g]).mean())), np.array(g)) for g in groups]


def profile_vertex(N, loss) -> dict:
    """The parabola loss = c2 u^2 + c1 u + c0 in u = ln N - mean(ln N) and its vertex, or the reason
    there is no usable one: fewer than MIN_SIZES sizes, opening downward, vertex outside the sizes."""
    x = np.log(N)
    sizes = np.unique(N).size
    if sizes < MIN_SIZES:
        return {"skipped": f"only {sizes} distinct model size(s), need {MIN_SIZES}"}
    centre = x.mean()  # centring keeps the normal equations well conditioned
    c2, c1, c0 = np.polyfit(x - centre, loss, 2)
    if not c2 > 0:
        return {"skipped": f"parabola opens downward (d2L/d(lnN)^2 = {2 * c2:.3g}): no minimum"}
    vertex = centre - c1 / (2 * c2)
    if not x.min() <= vertex <= x.max():
        return {"skipped": f"vertex at N = {math.exp(vertex):.4g} outside the sampled sizes "
                           f"[{N.min():.4g}, {N.max():.4g}]"}
    return {"N_opt": float(math.exp(vertex)), "loss_at_vertex": float(np.polyval([c2, c1, c0], vertex - centre)),
            "curvature": float(2 * c2)}


def _power_law(log_c: np.ndarray, log_y: np.ndarray) -> dict:
    """OLS of ln y on ln C: exponent, coefficient (y = k C^exponent), and a 95% t-interval for the
    exponent from its standard error (m - 2 degrees of freedom; needs m >= 3 budgets)."""
    fit = stats.linregress(log_c, log_y)
    out = {"exponent": float(fit.slope), "coefficient": float(math.exp(fit.intercept)), "se": None, "ci95": None}
    if log_c.size >= 3:
        half = stats.t.ppf(0.975, log_c.size - 2) * fit.stderr
        out.update(se=float(fit.stderr), ci95=[float(fit.slope - half), float(fit.slope + half)])
    return out


def fit_isoflop(N, D, loss, flops=None, tolerance: float = 0.1, budget=None) -> dict:
    """Hoffmann et al.'s Approach 2. Returns a JSON-able dict: law, budgets (per budget either
    {flops, n_runs, N_opt, D_opt, loss_at_vertex, curvature} or {flops, n_runs, skipped}),
    a, b (N_opt ∝ C^a, D_opt ∝ C^b), a_ci95, b_ci95, a_se, b_se (None with 2 budgets),
    N_coefficient, D_coefficient, n_budgets (used), n_points (runs in used budgets), tolerance,
    ci_method. `flops` defaults to 6ND; `budget` optionally names each run's budget explicitly."""
    N, D, loss, flops = _as_runs(N, D, loss, flops)
    budgets = []
    for C, runs in group_budgets(flops, tolerance, budget):
        vertex = profile_vertex(N[runs], loss[runs])
        if "N_opt" in vertex:
            # D_opt from C = 6ND, the convention the budget itself is defined by.
            vertex = {"N_opt": vertex["N_opt"], "D_opt": C / (6 * vertex["N_opt"]), **vertex}
        budgets.append({"flops": C, "n_runs": int(runs.size), **vertex})
    used = [b for b in budgets if "N_opt" in b]
    if len(used) < 2:
        listing = "; ".join(f"{b['flops']:.3g} FLOPs: {b['n_runs']} run(s), "
                            + ("used" if "N_opt" in b else f"skipped ({b['skipped']})") for b in budgets)
        raise ValueError(f"isoflop fit: {len(used)} usable budget(s), need at least 2 "
                         f"(tolerance {tolerance}); budgets: {listing}")
    log_c = np.log([b["flops"] for b in used])
    n_law = _power_law(log_c, np.log([b["N_opt"] for b in used]))
    d_law = _power_law(log_c, np.log([b["D_opt"] for b in used]))
    return {"law": "isoflop", "budgets": budgets, "a": n_law["exponent"], "b": d_law["exponent"],
            "a_ci95": n_law["ci95"], "b_ci95": d_law["ci95"], "a_se": n_law["se"], "b_se": d_law["se"],
            "N_coefficient": n_law["coefficient"], "D_coefficient": d_law["coefficient"],
            "n_budgets": len(used), "n_points": int(sum(b["n_runs"] for b in used)),
            "tolerance": float(tolerance) if budget is None else None,
            "ci_method": "t interval (m-2 dof) from the OLS standard error of the slope over the m budgets"}
