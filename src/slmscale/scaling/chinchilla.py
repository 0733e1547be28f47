"""The Chinchilla parametric law, Hoffmann et al. 2022 ("Training Compute-Optimal Large Language
Models", Approach 3): L̂(N, D) = E + A/N^α + B/D^β, fitted as Besiroglu et al. 2024 (Epoch AI,
"Chinchilla Scaling: A replication attempt") showed it must be: the *summed* Huber (δ = 1e-3) of
log-loss residuals in the log-sum-exp parametrisation a = log A, b = log B, e = log E, analytic
gradients, every start of Hoffmann's 4,500-point grid, tight tolerances and a convergence check.
Also: the compute-optimal allocation under C = 6ND, a bootstrap and an extrapolation check.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from slmscale.scaling.law_fit import LawFit, huber_derivative, r_squared
from slmscale.scaling.optimize import (MIN_AGREEING, STATUS_NAMES, BatchResult, Polished, count_agreeing,
                                       distinct_best, gradient_tolerance, judge, lbfgs_batched, polish_rows, stationary,
                                       value_floor)

COORDS = ("a", "b", "e", "alpha", "beta")
"""Order of the optimisation vector: log A, log B, log E, α, β."""
NAMES = ("A", "B", "E", "alpha", "beta")
"""The reported parameter for each coordinate (A = e^a, ...)."""
HOFFMANN_GRID = {"alpha": np.arange(0, 2.01, 0.5), "beta": np.arange(0, 2.01, 0.5),
                 "e": np.arange(-1, 1.01, 0.5), "a": np.arange(0, 26, 5.0), "b": np.arange(0, 26, 5.0)}
"""Hoffmann et al.'s initialisation grid (5 × 5 × 5 × 6 × 6 = 4,500 starts)."""
HOFFMANN_PUBLISHED = {"a": 6.0073404, "b": 6.0179186, "e": 0.5267228, "alpha": 0.33917084, "beta": 0.2849083}
"""Published reference constants: Hoffmann et al.'s Approach 3 estimate, unrounded (TeX source, as
used by Epoch AI). For comparison and as a start, never as a result."""
POLISHED_STARTS = 5
"""Distinct best grid results polished with scipy; the best polished one is the fit."""
CHUNK = 128
"""Starts evaluated per block (see LogHuberObjective)."""
BOOTSTRAP_STEP = np.array([0.5, 0.5, 0.5, 0.05, 0.05])
"""How far (in a, b, e, α, β) each bootstrap start's twin starts from it."""


def chinchilla_loss(params: dict, N, D) -> np.ndarray:
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    return params["E"] + params["A"] / N ** params["alpha"] + params["B"] / D ** params["beta"]


def compute_optimal(params: dict) -> dict:
    """N_opt = G (C/6)^a and D_opt = G^-1 (C/6)^b: minimise L̂ subject to C = 6ND."""
    alpha, beta = params["alpha"], params["beta"]
    G = (alpha * params["A"] / (beta * params["B"])) ** (1.0 / (alpha + beta))
    return {"G": float(G), "a": float(beta / (alpha + beta)), "b": float(alpha / (alpha + beta))}


def frontier(params: dict, flops: np.ndarray) -> dict:
    flops = np.asarray(flops, dtype=np.float64)
    opt = compute_optimal(params)
    n_opt = opt["G"] * (flops / 6) ** opt["a"]
    d_opt = (flops / 6) ** opt["b"] / opt["G"]
    return {"flops": flops.tolist(), "N_opt": n_opt.tolist(), "D_opt": d_opt.tolist(),
            "tokens_per_param": (d_opt / n_opt).tolist(), "loss": chinchilla_loss(params, n_opt, d_opt).tolist()}


class LogHuberObjective:
    """Σ_i w_i Huber_δ(log L̂(x; N_i, D_i) − log L_i) for a batch of parameter vectors.

    `model(X)` returns the log prediction (k, n) and a function mapping per-point slopes
    c = w·Huber'(r) (k, n) to the gradient (k, P) — the transposed Jacobian product, so no
    (k, n, P) Jacobian is built. Fixed and tied parameters: full x = base + z Mᵀ, with z the free
    coordinates and M a 0/1 map (a tied α = β is one column with two ones)."""

    def __init__(self, model, log_loss, delta, weights, base, free_map):
        self.model, self.log_loss, self.delta = model, log_loss, delta
        self.weights = weights  # (n,) or one row per batch start (S, n)
        self.unweighted = weights.ndim == 1 and bool(np.all(weights == 1.0))
        self.base, self.free_map = base, free_map

    def full(self, z: np.ndarray) -> np.ndarray:
        return self.base + z @ self.free_map.T

    def __call__(self, z: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Blocks of CHUNK starts keep the (starts × points) temporaries in cache: measured ~5×
        # faster than one 4,500-row pass on 240 points (128 measured ~2× faster than 256).
        if len(z) <= CHUNK:
            return self._evaluate(z, rows)
        parts = [self._evaluate(z[i:i + CHUNK], rows[i:i + CHUNK]) for i in range(0, len(z), CHUNK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _evaluate(self, z, rows):
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf: the line search backs off
            residual, pullback = self.model(self.full(z))
        residual -= self.log_loss
        # Huber(r) = c·(r − c/2) with c = clip(r, ±δ) = Huber'(r): one clip serves both.
        slope = huber_derivative(residual, self.delta)
        if self.unweighted:
            f = np.einsum("kn,kn->k", slope, residual) - 0.5 * np.einsum("kn,kn->k", slope, slope)
        else:
            half = residual - 0.5 * slope
            slope *= self.weights if self.weights.ndim == 1 else self.weights[rows]
            f = np.einsum("kn,kn->k", slope, half)
        with np.errstate(over="ignore", invalid="ignore"):
            return f, pullback(slope) @ self.free_map


def chinchilla_model(log_n: np.ndarray, log_d: np.ndarray):
    """log L̂ = LSE(a − α log N, b − β log D, e), shifted by the largest of the three terms so that
    no exponential overflows: with E → 0 the fit drives e to −500 and below, where the shorter form
    e + log(1 + e^(term − e)) overflowed to inf and stopped every line search (docs/LOG.md,
    2026-12-04). The pullback uses each term's share of the sum."""
    def model(x):
        e = x[:, 2, None]
        t0 = np.multiply(x[:, 3, None], -log_n)
        t0 += x[:, 0, None]
        t1 = np.multiply(x[:, 4, None], -log_d)
        t1 += x[:, 1, None]
        top = np.maximum(np.maximum(t0, t1), e)
        exp0, exp1, exp_e = np.exp(t0 - top), np.exp(t1 - top), np.exp(e - top)
        total = exp0 + exp1
        total += exp_e
        log_pred = np.log(total)
        log_pred += top

        def pullback(c):
            q = np.divide(c, total, out=total)  # c / Σ; each term's slope is q · its exponential
            c0, c1 = q * exp0, q * exp1
            return np.stack([c0.sum(1), c1.sum(1), (q * exp_e).sum(1), -(c0 @ log_n), -(c1 @ log_d)], axis=1)
        return log_pred, pullback
    return model


def free_parameters(fixed: dict | None, tie: bool, names=NAMES, coords=COORDS, logged=("A", "B", "E")):
    """(base, free_map, free coordinate names) for the given fixed/tied parameters."""
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ValueError(f"fixed: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(names)})")
    if tie and ("alpha" in fixed) != ("beta" in fixed):
        value = fixed.get("alpha", fixed.get("beta"))
        fixed["alpha"] = fixed["beta"] = value
    if tie and "alpha" in fixed and fixed["alpha"] != fixed["beta"]:
        raise ValueError(f"tie_alpha_beta with different fixed alpha={fixed['alpha']} and beta={fixed['beta']}")
    base = np.zeros(len(coords))
    for name, value in fixed.items():
        value = float(value)
        if name in logged and not value > 0:
            raise ValueError(f"fixed {name} must be positive, got {value}")
        base[names.index(name)] = math.log(value) if name in logged else value
    columns, free = [], []
    for i, name in enumerate(names):
        if name in fixed or (tie and name == "beta"):
            continue
        column = np.zeros(len(coords))
        column[i] = 1.0
        if tie and name == "alpha":
            column[names.index("beta")] = 1.0
        columns.append(column)
        free.append(coords[i])
    if not columns:
        raise ValueError(f"fixed: every parameter ({', '.join(names)}) is fixed, nothing left to fit")
    return base, np.array(columns).T.reshape(len(coords), len(columns)), free


def grid_starts(grid, coords=COORDS) -> np.ndarray:
    """Full-coordinate starts: the cartesian product of a dict of axes, or an explicit (k, P) array."""
    if isinstance(grid, dict):
        missing = [c for c in coords if c not in grid]
        if missing:
            raise ValueError(f"grid: missing axis {', '.join(missing)}")
        return np.array(list(itertools.product(*(np.atleast_1d(grid[c]) for c in coords))), dtype=np.float64)
    starts = np.atleast_2d(np.asarray(grid, dtype=np.float64))
    if starts.shape[1] != len(coords):
        raise ValueError(f"grid: starts must have {len(coords)} columns ({', '.join(coords)}), got {starts.shape}")
    return starts


def project_starts(starts: np.ndarray, free_map: np.ndarray) -> np.ndarray:
    """Free coordinates of each full start, duplicates (from fixed or tied axes) removed."""
    first = free_map.argmax(axis=0)  # the first full coordinate each free one drives
    return np.unique(starts[:, first], axis=0)


def check_data(N, D, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in (N, D, loss)]
    for name, values in zip(("N", "D", "loss"), arrays):
        if len(values) != len(arrays[0]):
            raise ValueError(f"{name} has {len(values)} values, N has {len(arrays[0])}")
        if not (np.isfinite(values) & (values > 0)).all():
            raise ValueError(f"{name} must be positive and finite")
    return tuple(arrays)


@dataclass
class Multistart:
    """What `fit_multistart` found: the chosen optimum and the evidence for it."""
    best: Polished
    converged: bool
    """`best` passed the gradient test and at least MIN_AGREEING stationary starts reached its value."""
    agreeing: int
    """Distinct starts (batched or polished) that reached the best objective and are stationary."""
    polished: list[Polished]
    batch: BatchResult
    tolerance: float


def batch_stationary(batch: BatchResult, weight_sum: float, delta: float) -> np.ndarray:
    """Per start: stopped normally and passes `stationary` (the rule of every fit)."""
    # `stationary` elementwise: thousands of starts (every bootstrap replicate's) at once.
    norms = np.abs(batch.grad).max(axis=1)
    return batch.stopped_normally & np.isfinite(batch.fun) & (norms <= gradient_tolerance(weight_sum, delta))


SPARE_POINTS = 2
"""Runs a law needs beyond its free parameters: with k free parameters through k + 1 points it fits
them (near) exactly, and its R² of 1 and zero-width intervals say nothing."""


def check_enough_points(n_points: int, n_free: int, law: str) -> None:
    """Refuse a law fitted to fewer than its free parameters + SPARE_POINTS runs."""
    if n_points < n_free + SPARE_POINTS:
        raise ValueError(f"the {law} law has {n_free} free parameters and needs at least {n_free + SPARE_POINTS} runs "
                         f"to be tested by the data; got {n_points}")


def check_exponents(params: dict[str, float], names: tuple[str, ...], law: str) -> None:
    """The laws' exponents are positive by construction (loss falls with N and D). An optimum with a
    non-positive exponent means the runs do not show that fall: the law is not identified, and its
    compute-optimal allocation (fractional powers of the exponents) has no meaning."""
    bad = {name: params[name] for name in names if not params[name] > 0}
    if bad:
        shown = ", ".join(f"{name} = {value:.3g}" for name, value in bad.items())
        raise ValueError(f"the {law} law is not identified: its best fit has {shown} (≤ 0), i.e. the loss does not "
                         f"fall with that quantity in these runs")


def fit_multistart(objective: LogHuberObjective, starts: np.ndarray, weight_sum: float, delta: float,
                   polish_count: int = POLISHED_STARTS) -> Multistart:
    """Batched L-BFGS from every start, then polish the distinct best few; the fit is chosen among
    the polished points and judged with every start's end (`optimize.judge`). The batch aims 100×
    below the gradient tolerance so that the test has margin."""
    tolerance = gradient_tolerance(weight_sum, delta)
    batch = lbfgs_batched(objective, starts, gtol=0.01 * tolerance)
    accept = lambda norm, fun: stationary(norm, fun, weight_sum, delta)  # noqa: E731
    polished = polish_rows(objective, batch, distinct_best(batch.x, batch.fun, polish_count), accept)
    if not polished:
        raise ValueError("every start gave a non-finite objective")
    floor = value_floor(weight_sum, delta)
    # Polishing can bring two batched results onto the same optimum: keep the first of each.
    keep = distinct_best(np.array([p.x for p in polished]), np.array([p.fun for p in polished]), len(polished))
    polished = [polished[i] for i in sorted(keep, key=lambda i: polished[i].fun)]
    chosen = judge([p.fun for p in polished], [p.converged for p in polished], floor)
    best = polished[chosen.best]
    # Agreement counts every start once: its batched end, or its polished one.
    ends, ok = batch.fun.copy(), batch_stationary(batch, weight_sum, delta)
    for p in polished:
        ends[p.row], ok[p.row] = p.fun, p.converged
    agreeing = count_agreeing(ends, ok, best.fun, floor)
    return Multistart(best=best, converged=best.converged and agreeing >= MIN_AGREEING, agreeing=agreeing,
                      polished=polished, batch=batch, tolerance=tolerance)


def to_params(x_full: np.ndarray) -> dict[str, float]:
    a, b, e, alpha, beta = (float(v) for v in x_full)
    with np.errstate(over="ignore"):  # a runaway start may report inf; the fit itself never does
        A, B, E = (float(np.exp(v)) for v in (a, b, e))
    return {"E": E, "A": A, "B": B, "alpha": alpha, "beta": beta}


def batch_summary(batch: BatchResult) -> dict:
    return {"evaluations": int(batch.evaluations), "max_iterations": int(batch.iterations.max()),
            "stopped": {name: int((batch.status == code).sum()) for code, name in STATUS_NAMES.items()}}


def fit_chinchilla(N, D, loss, delta: float = 1e-3, fixed: dict[str, float] | None = None,
                   tie_alpha_beta: bool = False, weights=None, grid=None,
                   polish_count: int = POLISHED_STARTS) -> LawFit:
    """Fit L̂ = E + A/N^α + B/D^β from every start of `grid` (default: Hoffmann's 4,500)."""
    N, D, loss = check_data(N, D, loss)
    w = np.ones(len(N)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != N.shape or (w < 0).any():
        raise ValueError(f"weights must be {len(N)} non-negative values")
    free = free_parameters(fixed, tie_alpha_beta)[2]
    objective = _objective(N, D, loss, delta, w, fixed, tie_alpha_beta)
    free_map = objective.free_map
    starts = project_starts(grid_starts(HOFFMANN_GRID if grid is None else grid), free_map)
    check_enough_points(int((w > 0).sum()), len(free), "chinchilla")
    found = fit_multistart(objective, starts, float(w.sum()), delta, polish_count)
    best = found.best
    params = to_params(objective.full(best.x[None])[0])
    for name, value in (fixed or {}).items():  # exactly as given, not through exp(log(value))
        params[name] = float(value)
        if tie_alpha_beta and name in ("alpha", "beta"):
            params["alpha"] = params["beta"] = float(value)
    check_exponents(params, ("alpha", "beta"), "chinchilla")
    return LawFit(
        law="chinchilla", params=params, converged=found.converged, objective=best.fun, n_points=len(N),
        r2=r_squared(loss, chinchilla_loss(params, N, D)), delta=delta, fixed=dict(fixed or {}),
        gradient_norm=best.gradient_norm, starts=len(starts),
        extra={"compute_optimal": compute_optimal(params), "free": free, "tie_alpha_beta": tie_alpha_beta,
               **multistart_summary(found),
               "polished": [{"objective": p.fun, "converged": p.converged, "gradient_norm": p.gradient_norm,
                             "coords": dict(zip(COORDS, objective.full(p.x[None])[0].tolist()))}
                            for p in found.polished]})


def multistart_summary(found: Multistart) -> dict:
    return {"gradient_tolerance": found.tolerance, "agreeing_starts": found.agreeing,
            "batched": batch_summary(found.batch)}


def chinchilla_objective(N, D, loss, delta: float = 1e-3, weights=None):
    """fun_and_grad(x) of the summed Huber at one point x = (a, b, e, α, β), for scipy or the
    convergence check of a fit made elsewhere."""
    N, D, loss = check_data(N, D, loss)
    w = np.ones(len(N)) if weights is None else np.asarray(weights, dtype=np.float64)
    objective = _objective(N, D, loss, delta, w, None, False)

    def fun_and_grad(x):
        f, g = objective(np.asarray(x, dtype=np.float64)[None, :], np.zeros(1, dtype=int))
        return float(f[0]), g[0]
    return fun_and_grad


def _objective(N, D, loss, delta, weights, fixed, tie):
    base, free_map, _ = free_parameters(fixed, tie)
    return LogHuberObjective(chinchilla_model(np.log(N), np.log(D)), np.log(loss), delta, weights, base, free_map)


def _free_point(params: dict, free_map: np.ndarray) -> np.ndarray:
    full = np.array([math.log(params["A"]), math.log(params["B"]), math.log(params["E"]),
                     params["alpha"], params["beta"]])
    return full[free_map.argmax(axis=0)]


def bootstrap_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) multinomial counts: resampling n points with replacement, as weights."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def bootstrap_starts(fit: LawFit, fixed: dict | None = None, tie_alpha_beta: bool = False) -> np.ndarray:
    """Free-coordinate starts for every replicate (see bootstrap_chinchilla)."""
    free_map = free_parameters(fixed, tie_alpha_beta)[1]
    polished = fit.extra.get("polished", [])

    def coords(point):  # the optimiser's own coordinates: E may have underflowed to 0 in the params
        return np.array([point["coords"][c] for c in COORDS])[free_map.argmax(axis=0)]

    starts = [coords(polished[0]) if polished else _free_point(fit.params, free_map),
              _free_point(to_params(np.array([HOFFMANN_PUBLISHED[c] for c in COORDS])), free_map)]
    starts += [coords(p) for p in polished[1:] if p["objective"] <= 3 * fit.objective][:1]
    # Each start twice, the copy a step away in every coordinate: a replicate's optimum then has a
    # second start in its own basin to confirm it (`optimize.MIN_AGREEING`), even where the distant
    # starts fall into other minima (a 12-run grid has an E → 0 valley beside an E > 0 basin).
    starts = np.unique(np.array(starts), axis=0)
    return np.vstack([starts, starts + BOOTSTRAP_STEP[free_map.argmax(axis=0)]])


def _replicate_params(full: np.ndarray) -> dict[str, np.ndarray]:
    """The law's constants and its allocation per replicate. a, b and G exist only where both
    exponents are positive (`check_exponents`); elsewhere they are NaN and left out of their
    intervals, which then say on how many replicates they rest."""
    with np.errstate(over="ignore"):  # a runaway replicate's A = e^800 is inf: its interval says unbounded
        params = {"A": np.exp(full[:, 0]), "B": np.exp(full[:, 1]), "E": np.exp(full[:, 2]),
                  "alpha": full[:, 3], "beta": full[:, 4]}
    alpha, beta = params["alpha"], params["beta"]
    positive = (alpha > 0) & (beta > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        params["a"] = np.where(positive, beta / (alpha + beta), np.nan)
        params["b"] = np.where(positive, alpha / (alpha + beta), np.nan)
        G = (alpha * params["A"] / (beta * params["B"])) ** (1.0 / (alpha + beta))
    params["G"] = np.where(positive, G, np.nan)
    return params


def _interval(estimate: float, values: np.ndarray) -> dict:
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return {"estimate": float(estimate), "se": None, "ci95": None, "n": int(len(values))}
    with np.errstate(over="ignore", invalid="ignore"):  # a runaway replicate's A near 1e300 squares to inf
        return {"estimate": float(estimate), "se": float(np.std(values, ddof=1)),
                "ci95": [float(v) for v in np.percentile(values, [2.5, 97.5])], "n": int(len(values))}


def bootstrap_chinchilla(N, D, loss, fit: LawFit, resamples: int = 1000, seed: int = 0, delta: float = 1e-3,
                         fixed: dict[str, float] | None = None, tie_alpha_beta: bool = False) -> dict:
    """Refit `resamples` resamples of the points (drawn with replacement, as multinomial point
    weights) all at once, every replicate to convergence (Besiroglu et al. 2024 refit each of
    theirs from Hoffmann's values with BFGS).

    Starts per replicate: the full-data optimum (a replicate's optimum lies near it), Hoffmann's
    published values (a distant start in the same basin), and any other distinct optimum the
    full-data grid found within 3× of the best objective (a resample could make that basin the
    lowest). A replicate is judged by the rule of the main fit (`optimize.judge`); the starts of a
    replicate that fails it are polished with scipy and it is judged again. Replicates that still
    fail are left out and counted: `n_converged` of `resamples`."""
    N, D, loss = check_data(N, D, loss)
    n = len(N)
    starts = bootstrap_starts(fit, fixed, tie_alpha_beta)
    k = len(starts)
    counts = bootstrap_weights(n, resamples, seed)
    objective = _objective(N, D, loss, delta, np.repeat(counts, k, axis=0), fixed, tie_alpha_beta)
    weight_sum = float(n)  # every replicate's weights sum to n
    batch = lbfgs_batched(objective, np.tile(starts, (resamples, 1)),
                          gtol=0.01 * gradient_tolerance(weight_sum, delta))
    x, fun, ok = batch.x.copy(), batch.fun.copy(), batch_stationary(batch, weight_sum, delta)
    floor = value_floor(weight_sum, delta)

    def verdicts():
        return [judge(fun[r * k:(r + 1) * k], ok[r * k:(r + 1) * k], floor) for r in range(resamples)]

    retry = [r for r, v in enumerate(verdicts()) if not v.converged]
    accept = lambda norm, value: stationary(norm, value, weight_sum, delta)  # noqa: E731
    for p in polish_rows(objective, batch, [r * k + j for r in retry for j in range(k)], accept):
        x[p.row], fun[p.row], ok[p.row] = p.x, p.fun, p.converged
    judged = verdicts()
    converged = np.array([v.converged for v in judged])
    if converged.sum() < 2:
        raise ValueError(f"bootstrap: only {int(converged.sum())} of {resamples} replicates converged")
    chosen = np.array([r * k + v.best for r, v in enumerate(judged)])[converged]
    params = _replicate_params(objective.full(x[chosen]))
    estimate = {**fit.params, **fit.extra["compute_optimal"]}
    out = {name: _interval(estimate[name], values) for name, values in params.items()}
    return {**out, "n_converged": int(converged.sum()), "resamples": resamples, "seed": seed,
            "starts_per_resample": k, "batched": batch_summary(batch), "polished": len(retry)}


def extrapolation_check(N, D, loss, flops, threshold: float, min_fit: int = 10, min_heldout: int = 2,
                        **fit_kwargs) -> dict:
    """Fit on the runs with flops < threshold, predict the larger held-out runs: does the law
    extrapolate in compute the way it is used to (Hoffmann et al. 2022, Table 3)?"""
    N, D, loss = check_data(N, D, loss)
    flops = np.asarray(flops, dtype=np.float64).ravel()
    if flops.shape != N.shape:
        raise ValueError(f"flops has {flops.size} values, N has {N.size}")
    below = flops < threshold
    n_fit, n_heldout = int(below.sum()), int((~below).sum())
    if n_fit < min_fit or n_heldout < min_heldout:
        raise ValueError(f"extrapolation threshold {threshold:g} leaves {n_fit} runs to fit (need {min_fit}) "
                         f"and {n_heldout} held out (need {min_heldout})")
    fit = fit_chinchilla(N[below], D[below], loss[below], **fit_kwargs)
    relative = chinchilla_loss(fit.params, N[~below], D[~below]) / loss[~below] - 1.0
    return {"threshold": float(threshold), "n_fit": n_fit, "n_heldout": n_heldout,
            "relative_error": relative.tolist(), "mean_abs_relative_error": float(np.abs(relative).mean()),
            "max_abs_relative_error": float(np.abs(relative).max()), "params": fit.params,
            "converged": fit.converged}
