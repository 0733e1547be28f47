"""The data-constrained scaling law of Muennighoff et al. 2023 ("Scaling Data-Constrained
Language Models", NeurIPS 2023, arXiv:2305.16264), with the objective its authors minimised.

    L(N, D, U) = E + A / N'^alpha + B / D'^beta

Repeated tokens and excess parameters are worth less than fresh ones, with exponential decay:

    D' = U_D + U_D * R_D* * (1 - exp(-R_D / R_D*)),   R_D = max(D / U_D - 1, 0)
    N' = U_N + U_N * R_N* * (1 - exp(-R_N / R_N*)),   R_N = max(N / U_N - 1, 0)

U_N is the compute-optimal size for U_D unique tokens under the base (Hoffmann et al. 2022)
law. With G = (alpha A / (beta B))^(1/(alpha+beta)), a = beta/(alpha+beta), b = alpha/(alpha+beta),
the compute-optimal frontier is N_opt = G (C/6)^a and D_opt = G^-1 (C/6)^b. Solving D_opt = U_D
for the budget gives C/6 = (G U_D)^(1/b), hence N_opt(U_D) = G (G U_D)^(a/b) = G (G U_D)^(beta/alpha),
and U_N = min(N_opt(U_D), N): a model smaller than that size has no excess parameters.

Objective (as in the authors' datablations parametric-fit notebook): the base constants E, A, B,
alpha, beta are held fixed and only R_D*, R_N* are fitted, minimising the summed Huber(delta) of
the log-loss residuals with log L-hat in log-sum-exp form (Hoffmann et al., Approach 3), from the
grid R_D*, R_N* in linspace(0, 20, 4)^2. What differs from the authors: the two constants are
optimised as log R* so that the R* -> 0 limit (repeats worth nothing, D' = U_D) sits at
log R* = -inf rather than at a pole of R_D/R_D* (the grid's 0 therefore starts at R* = ZERO_START);
float64 with an analytic gradient instead of their float32; L-BFGS-B with the tight tolerances
Besiroglu et al. 2024 found necessary (ftol 1e-15, gtol 1e-12); and the convergence rule of every
fit here (`optimize.judge`: stationary, and confirmed by a second start).

On the authors' 182 C4 runs this objective has several local minima along one flat valley where a
larger R_D* trades against a smaller R_N*. The published R_D* = 15.39, R_N* = 5.31 is one of them,
the minimum their own starts and optimiser reached; the best start of the same grid in log R*
reaches a lower one (R_D* ~ 95, R_N* ~ 1.7), yet moving R_D* anywhere from 30 to 200 changes the
objective by under 0.1%. The data constrain the two jointly, not separately: report R* with its
interval (`bootstrap_data_constrained`), never alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from slmscale.scaling.chinchilla import check_enough_points, fit_chinchilla
from slmscale.scaling.law_fit import LawFit, huber, huber_derivative, r_squared
from slmscale.scaling.optimize import gradient_tolerance, judge, polish_succeeded, stationary, value_floor

MUENNIGHOFF_PUBLISHED = {
    "a": 6.255414, "b": 7.3049974, "e": 0.6254804,
    "alpha": 0.3526596, "beta": 0.3526596, "R_D_star": 15.387756, "R_N_star": 5.309743,
}
"""Published constants (datablations README / parametric_fit notebook): log A, log B, log E,
the tied exponents and the two decay constants. For comparison and reporting only."""
MUENNIGHOFF_R2 = 0.7722
MUENNIGHOFF_HUBER = 0.0158259
"""Published fit quality of those constants on the 182 C4 runs (R², summed Huber with delta 1e-3)."""


def muennighoff_params() -> dict[str, float]:
    """The published constants in this module's parameter names (E, A, B, alpha, beta, R_*_star)."""
    p = MUENNIGHOFF_PUBLISHED
    return {"E": math.exp(p["e"]), "A": math.exp(p["a"]), "B": math.exp(p["b"]), "alpha": p["alpha"],
            "beta": p["beta"], "R_N_star": p["R_N_star"], "R_D_star": p["R_D_star"]}


BASE_KEYS = ("E", "A", "B", "alpha", "beta")
START_GRID = np.linspace(0.0, 20.0, 4)
"""Muennighoff et al.'s starting values for each of R_D*, R_N*."""
ZERO_START = 0.1
"""Where the grid's R* = 0 starts (log R* must be finite)."""
R_STAR_BOUNDS = (1e-3, 1e4)
"""Search range for R*. At 1e-3 a repeat is worth almost nothing; at 1e4 any realistic number of
repeats (R << 1e4) counts almost fully, i.e. the plain Chinchilla law. A fit ending on a bound is
reported in extra["at_bound"]."""
def _check_base(base: dict[str, float]) -> dict[str, float]:
    missing = [k for k in BASE_KEYS if k not in base]
    if missing:
        raise ValueError(f"data-constrained law: base constants missing {missing} (need {list(BASE_KEYS)})")
    bad = {k: base[k] for k in BASE_KEYS if not (math.isfinite(base[k]) and base[k] > 0)}
    if bad:
        raise ValueError(f"data-constrained law: base constants must be positive and finite, got {bad}")
    return {k: float(base[k]) for k in BASE_KEYS}


def _unique_seen(D, U) -> np.ndarray:
    # A run stopped before one epoch has seen only D unique tokens, so U_D = min(U, D); otherwise
    # U_D = U > D would give D' = U, crediting tokens never trained on.
    D, U = np.asarray(D, float), np.asarray(U, float)
    if np.any(~(U > 0)) or np.any(~(D > 0)):
        raise ValueError("data-constrained law: tokens D and unique tokens U must be positive")
    return np.minimum(U, D)


def _decayed(unique: np.ndarray, repeats: np.ndarray, r_star: float) -> np.ndarray:
    """unique * (1 + R* (1 - exp(-R/R*))), with its R* -> inf limit unique * (1 + R)."""
    if math.isinf(r_star):
        return unique * (1.0 + repeats)
    if not r_star > 0:
        raise ValueError(f"data-constrained law: R* must be positive, got {r_star}")
    return unique + unique * r_star * -np.expm1(-repeats / r_star)


def compute_optimal_params(unique_tokens, base: dict[str, float]) -> np.ndarray:
    """N_opt(U_D) = G (G U_D)^(beta/alpha): the compute-optimal size at the budget for which U_D
    unique tokens would be the compute-optimal data (derivation in the module docstring)."""
    base = _check_base(base)
    alpha, beta = base["alpha"], base["beta"]
    G = (alpha * base["A"] / (beta * base["B"])) ** (1.0 / (alpha + beta))
    return G * (G * np.asarray(unique_tokens, float)) ** (beta / alpha)


def effective_data(D, U, R_D_star: float) -> np.ndarray:
    """D' for D training tokens drawn from U unique ones."""
    unique = _unique_seen(D, U)
    repeats = np.maximum(np.asarray(D, float) / unique - 1.0, 0.0)
    return _decayed(unique, repeats, float(R_D_star))


def _unique_params(N, U, base) -> np.ndarray:
    N = np.asarray(N, float)
    if np.any(~(N > 0)):
        raise ValueError("data-constrained law: parameter counts N must be positive")
    return np.minimum(compute_optimal_params(U, base), N)


def effective_params(N, U, R_N_star: float, base: dict[str, float]) -> np.ndarray:
    """N' for N parameters trained on U unique tokens (U_N from the base law's frontier)."""
    unique = _unique_params(N, U, base)
    repeats = np.maximum(np.asarray(N, float) / unique - 1.0, 0.0)
    return _decayed(unique, repeats, float(R_N_star))


def _log_prediction(params: dict[str, float], N_eff: np.ndarray, D_eff: np.ndarray) -> np.ndarray:
    # log(E + A N'^-alpha + B D'^-beta) as a log-sum-exp, as Hoffmann and Muennighoff fit it.
    terms = np.stack([np.full_like(N_eff, math.log(params["E"])),
                      math.log(params["A"]) - params["alpha"] * np.log(N_eff),
                      math.log(params["B"]) - params["beta"] * np.log(D_eff)])
    top = terms.max(axis=0)
    return top + np.log(np.exp(terms - top).sum(axis=0))


def data_constrained_loss(params: dict[str, float], N, D, U) -> np.ndarray:
    """Predicted loss; params holds E, A, B, alpha, beta, R_N_star, R_D_star."""
    missing = [k for k in (*BASE_KEYS, "R_N_star", "R_D_star") if k not in params]
    if missing:
        raise ValueError(f"data-constrained law: params missing {missing}")
    N_eff = effective_params(N, U, params["R_N_star"], params)
    D_eff = effective_data(D, U, params["R_D_star"])
    return np.exp(_log_prediction(params, N_eff, D_eff))


def evaluate_law(params: dict[str, float], N, D, U, loss, delta: float) -> dict[str, float]:
    """Fit quality of a given parameter set: R² on the loss and summed Huber of log residuals."""
    loss = np.asarray(loss, float)
    predicted = data_constrained_loss(params, N, D, U)
    objective = float(huber(np.log(predicted) - np.log(loss), delta).sum())
    return {"r2": r_squared(loss, predicted), "objective": objective, "n_points": int(loss.size),
            "delta": float(delta)}


class _Problem:
    """The objective in theta = (log R_D*, log R_N*), everything independent of theta precomputed."""

    def __init__(self, N, D, U, loss, base, delta):
        self.base, self.delta = base, delta
        self.U_D = _unique_seen(D, U)
        self.R_D = np.maximum(np.asarray(D, float) / self.U_D - 1.0, 0.0)
        self.U_N = _unique_params(N, self.U_D, base)
        self.R_N = np.maximum(np.asarray(N, float) / self.U_N - 1.0, 0.0)
        self.log_loss = np.log(np.asarray(loss, float))

    def __call__(self, theta: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Summed (optionally weighted: bootstrap counts) Huber and its gradient in theta."""
        r_d, r_n = np.exp(theta)
        x_d, x_n = self.R_D / r_d, self.R_N / r_n
        D_eff = self.U_D + self.U_D * r_d * -np.expm1(-x_d)
        N_eff = self.U_N + self.U_N * r_n * -np.expm1(-x_n)
        log_pred = _log_prediction(self.base, N_eff, D_eff)
        residual = log_pred - self.log_loss
        weight = huber_derivative(residual, self.delta)
        losses = huber(residual, self.delta)
        if weights is not None:
            weight, losses = weight * weights, losses * weights
        # d X'/d log R* = R* dX'/dR* = U R* ((1 - e^-x) - x e^-x), and
        # d log L / d log X' = -exponent * (coefficient X'^-exponent) / L.
        pred = np.exp(log_pred)
        dD = self.U_D * r_d * (-np.expm1(-x_d) - x_d * np.exp(-x_d))
        dN = self.U_N * r_n * (-np.expm1(-x_n) - x_n * np.exp(-x_n))
        p = self.base
        dlog_d = -p["beta"] * p["B"] * D_eff ** (-p["beta"] - 1.0) * dD / pred
        dlog_n = -p["alpha"] * p["A"] * N_eff ** (-p["alpha"] - 1.0) * dN / pred
        gradient = np.array([(weight * dlog_d).sum(), (weight * dlog_n).sum()])
        return float(losses.sum()), gradient


def _projected_gradient_norm(theta, gradient, bounds) -> float:
    # On an active bound, the component pushing out of the box is not a failure to converge.
    g = gradient.copy()
    for i, (low, high) in enumerate(bounds):
        if (theta[i] <= low and g[i] > 0) or (theta[i] >= high and g[i] < 0):
            g[i] = 0.0
    return float(np.max(np.abs(g)))


def _start_points(grid) -> np.ndarray:
    """Starting (log R_D*, log R_N*) pairs: the square of a 1-d grid of values (Muennighoff et al.'s
    layout), or explicit (R_D*, R_N*) rows of a k x 2 grid. Zeros start at ZERO_START."""
    values = START_GRID if grid is None else np.asarray(grid, float)
    if values.ndim == 1:
        values = np.array([(d, n) for d in values for n in values])
    if values.ndim != 2 or values.shape[1] != 2 or len(values) == 0:
        raise ValueError(f"data-constrained fit: grid must be 1-d values or (R_D*, R_N*) rows, "
                         f"got shape {values.shape}")
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"data-constrained fit: grid values must be non-negative and finite, got {values.tolist()}")
    return np.log(np.clip(np.where(values == 0, ZERO_START, values), *R_STAR_BOUNDS))


def fit_data_constrained(N, D, U, loss, base: dict[str, float], delta: float = 1e-3,
                         grid=None) -> LawFit:
    """Fit R_D*, R_N* with the base constants (E, A, B, alpha, beta) fixed; best of a grid of
    L-BFGS-B starts. `grid`: the starting values for each R* (default START_GRID, squared), or
    explicit (R_D*, R_N*) rows.

    The objective has several local minima in (R_D*, R_N*) (the Huber with delta = 1e-3 is nearly
    an L1 loss, piecewise in which runs sit inside ±delta); the best start is kept and
    extra["local_minima"] lists the distinct end points, so a reader can see how flat the valley is."""
    base = _check_base(base)
    N, D, U, loss = (np.asarray(v, float) for v in (N, D, U, loss))
    if not N.shape == D.shape == U.shape == loss.shape or N.ndim != 1:
        raise ValueError(f"data-constrained fit: N, D, U, loss must be 1-d of equal length, got shapes "
                         f"{N.shape}, {D.shape}, {U.shape}, {loss.shape}")
    if np.any(~(loss > 0)) or not np.all(np.isfinite(loss)):
        raise ValueError("data-constrained fit: every loss must be a positive number")
    if not delta > 0:
        raise ValueError(f"data-constrained fit: the Huber delta must be positive, got {delta}")
    problem = _Problem(N, D, U, loss, base, delta)
    if not np.any(problem.R_D > 0):
        raise ValueError("data-constrained fit: no run repeats data (D <= U everywhere), so R_D* is not identifiable")
    if not np.any(problem.R_N > 0):
        raise ValueError("data-constrained fit: no run has excess parameters (N <= N_opt(U) everywhere), "
                         "so R_N* is not identifiable")
    check_enough_points(int(N.size), 2, "data-constrained")
    starts = _start_points(grid)
    ends = [_minimise(problem, start) for start in starts]
    verdict = judge([e.value for e in ends], [e.converged for e in ends], value_floor(N.size, delta))
    best = ends[verdict.best]
    r_d, r_n = (float(v) for v in np.exp(best.theta))
    params = {**base, "R_N_star": r_n, "R_D_star": r_d}
    quality = evaluate_law(params, N, D, U, loss, delta)
    at_bound = [name for name, t in (("R_D_star", best.theta[0]), ("R_N_star", best.theta[1]))
                if min(abs(t - edge) for edge in _BOUNDS[0]) < 1e-9]
    return LawFit(law="data-constrained", params=params, converged=verdict.converged,
                  objective=best.value, n_points=int(N.size), r2=quality["r2"], delta=float(delta), fixed=dict(base),
                  gradient_norm=best.gradient_norm, starts=len(starts),
                  extra={"optimizer_message": best.message, "iterations": best.iterations,
                         "starts_converged": int(sum(e.converged for e in ends)), "agreeing_starts": verdict.agreeing,
                         "gradient_tolerance": gradient_tolerance(N.size, delta),
                         "at_bound": at_bound, "parametrisation": "log R_star",
                         "local_minima": _distinct_minima(ends)})


@dataclass
class _End:
    """Where one L-BFGS-B start of the R* fit ended."""
    theta: np.ndarray
    value: float
    gradient_norm: float
    """Projected: on an active bound the component pushing out of the box does not count."""
    converged: bool
    """Stopped normally (`polish_succeeded`) and stationary: the rule of every fit (`optimize`)."""
    message: str
    iterations: int


_BOUNDS = [tuple(np.log(R_STAR_BOUNDS))] * 2


def _minimise(problem: _Problem, start: np.ndarray, weights: np.ndarray | None = None) -> _End:
    fun = problem if weights is None else (lambda theta: problem(theta, weights))
    result = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=_BOUNDS,
                      options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
    value, gradient = fun(result.x)
    norm = _projected_gradient_norm(result.x, gradient, _BOUNDS)
    weight_sum = float(problem.log_loss.size if weights is None else weights.sum())
    ok = polish_succeeded(result) and stationary(norm, value, weight_sum, problem.delta)
    return _End(theta=np.asarray(result.x, dtype=np.float64), value=float(value), gradient_norm=norm, converged=ok,
                message=str(result.message), iterations=int(result.nit))


def _distinct_minima(ends: list[_End]) -> list[dict[str, float]]:
    """End points of the converged starts, merged when both R* agree to 1e-4 relative, best first."""
    minima: list[dict[str, float]] = []
    for end in sorted(ends, key=lambda e: e.value):
        if not end.converged:
            continue
        r_d, r_n = (float(v) for v in np.exp(end.theta))
        same = [m for m in minima if abs(m["R_D_star"] / r_d - 1) < 1e-4 and abs(m["R_N_star"] / r_n - 1) < 1e-4]
        if same:
            same[0]["starts"] += 1
        else:
            minima.append({"R_D_star": r_d, "R_N_star": r_n, "objective": end.value, "starts": 1})
    return minima


def bootstrap_data_constrained(N, D, U, loss, fit: LawFit, resamples: int = 200, seed: int = 0,
                               delta: float = 1e-3) -> dict:
    """Percentile intervals of R_D*, R_N* from resampling the runs with replacement, the base
    constants held at the fit's (so the interval is conditional on the base law). Each replicate
    starts from the fit's optimum, from it scaled by 1.5 (a second start that must agree) and from
    every other local minimum the fit found, and is judged by the rule of every fit; replicates that
    fail it are left out and counted (`n_converged` of `resamples`). On a flat valley the interval is
    wide: that is the answer, R* is then weakly identified."""
    N, D, U, loss = (np.asarray(v, float) for v in (N, D, U, loss))
    base = {k: fit.params[k] for k in BASE_KEYS}
    problem = _Problem(N, D, U, loss, base, delta)
    optimum = np.log([fit.params["R_D_star"], fit.params["R_N_star"]])
    others = [np.log([m["R_D_star"], m["R_N_star"]]) for m in fit.extra.get("local_minima", [])[1:4]]
    starts = [np.clip(t, *_BOUNDS[0]) for t in (optimum, optimum + math.log(1.5), *others)]
    counts = np.random.default_rng(seed).multinomial(N.size, np.full(N.size, 1.0 / N.size), size=resamples)
    floor = value_floor(N.size, delta)
    draws = []
    for weights in counts.astype(np.float64):
        ends = [_minimise(problem, start, weights) for start in starts]
        verdict = judge([e.value for e in ends], [e.converged for e in ends], floor)
        if verdict.converged:
            draws.append(np.exp(ends[verdict.best].theta))
    if len(draws) < 2:
        raise ValueError(f"bootstrap: only {len(draws)} of {resamples} replicates converged")
    draws = np.array(draws)
    out = {name: {"estimate": float(fit.params[name]), "se": float(np.std(draws[:, i], ddof=1)),
                  "ci95": [float(v) for v in np.percentile(draws[:, i], [2.5, 97.5])]}
           for i, name in enumerate(("R_D_star", "R_N_star"))}
    return {**out, "n_converged": len(draws), "resamples": resamples, "seed": seed, "starts_per_resample": len(starts),
            "conditional_on": "the base law's constants (E, A, B, alpha, beta) as fitted"}


def fit_data_constrained_after_base(table, delta: float = 1e-3, tie_alpha_beta: bool = False) -> LawFit:
    """The two-stage fit of Muennighoff et al. and Cuervo & Marxer 2024: the base law on the
    single-epoch runs, then R_D*, R_N* on all runs with the base constants fixed. A run counts as
    single-epoch when D <= U (up to rounding): it saw no token twice."""
    loss = table.require_loss("data-constrained")
    if table.unique_tokens is None:
        raise ValueError(f"{table.source}: the data-constrained law needs a unique_tokens column")
    single = table.epochs <= 1.0 + 1e-9
    if not single.any():
        raise ValueError(f"{table.source}: no single-epoch run (tokens <= unique_tokens) to fit the base law on")
    base_fit = fit_chinchilla(table.params[single], table.tokens[single], loss[single], delta=delta,
                              tie_alpha_beta=tie_alpha_beta)
    fit = fit_data_constrained(table.params, table.tokens, table.unique_tokens, loss,
                               {k: base_fit.params[k] for k in BASE_KEYS}, delta=delta)
    fit.extra["base"] = base_fit.to_json()
    return fit
