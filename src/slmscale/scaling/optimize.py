"""Minimisers for the scaling-law fits: a batched L-BFGS that runs thousands of starts at once,
a tight scipy polish, and the convergence check every reported fit must pass.

Hoffmann et al. 2022 (Approach 3) fit their law with L-BFGS from a 4,500-point grid of starts;
Besiroglu et al. 2024 (Epoch AI) showed that a loose stopping rule leaves that fit far from the
optimum. The batched L-BFGS (Nocedal 1980; Liu & Nocedal 1989: limited-memory two-loop recursion;
weak-Wolfe bracketing line search as in Lewis & Overton 2013, with a quadratic first cut) keeps a
separate history, line search and stopping flag per start, so the whole grid (or all bootstrap
replicates) costs one numpy pass per iteration instead of one Python-level optimiser run per start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import OptimizeResult, minimize

GRADIENT_RTOL = 1e-6
"""A fit counts as converged when its gradient inf-norm is below GRADIENT_RTOL times the
objective's gradient scale (see `gradient_tolerance`)."""

# Status codes of BatchResult.status, one per start.
RUNNING, GRADIENT_SMALL, NO_PROGRESS, MAX_ITER, LINE_SEARCH_FAILED = -1, 0, 1, 2, 3
STATUS_NAMES = {GRADIENT_SMALL: "gradient", NO_PROGRESS: "ftol", MAX_ITER: "max_iter",
                LINE_SEARCH_FAILED: "line_search"}

BatchValueAndGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(X: (k, P) points, rows: (k,) which starts of the batch they are) -> (f: (k,), g: (k, P)).
`rows` lets an objective use per-start data (bootstrap weights); most ignore it."""


@dataclass
class BatchResult:
    x: np.ndarray
    """(S, P) final points."""
    fun: np.ndarray
    """(S,) objective at x."""
    grad: np.ndarray
    """(S, P) gradient at x."""
    iterations: np.ndarray
    status: np.ndarray
    """Why each start stopped: GRADIENT_SMALL, NO_PROGRESS, MAX_ITER or LINE_SEARCH_FAILED."""
    evaluations: int
    """Batched calls of value_and_grad (each on the still-running starts only)."""

    @property
    def stopped_normally(self) -> np.ndarray:
        """Every stop but MAX_ITER. A failed line search is how any L-BFGS ends when no float64
        step lowers the objective any more (scipy's 'ABNORMAL'); whether that point is an optimum
        or a stall is for the gradient to say (`check_converged`)."""
        return self.status != MAX_ITER


def _two_loop(grad, s_hist, y_hist, rho):
    """-H·g per start from its (s, y) history; empty slots have rho = 0 and drop out."""
    q = grad.copy()
    memory = s_hist.shape[1]
    alphas = np.zeros((len(grad), memory))
    for i in range(memory - 1, -1, -1):  # newest pair is the last slot
        alphas[:, i] = rho[:, i] * np.einsum("kp,kp->k", s_hist[:, i], q)
        q -= alphas[:, i, None] * y_hist[:, i]
    sy = np.einsum("kp,kp->k", s_hist[:, -1], y_hist[:, -1])
    yy = np.einsum("kp,kp->k", y_hist[:, -1], y_hist[:, -1])
    # Initial Hessian scaling s·y / y·y (Nocedal & Wright eq. 7.20); 1 until a pair exists.
    gamma = np.where(rho[:, -1] > 0, sy / np.where(yy > 0, yy, 1.0), 1.0)
    r = gamma[:, None] * q
    for i in range(memory):
        beta = rho[:, i] * np.einsum("kp,kp->k", y_hist[:, i], r)
        r += (alphas[:, i] - beta)[:, None] * s_hist[:, i]
    return -r


def lbfgs_batched(value_and_grad: BatchValueAndGrad, x0: np.ndarray, *, memory: int = 10,
                  max_iter: int = 1000, gtol: float | np.ndarray = 1e-10, ftol: float = 1e-15,
                  max_line_search: int = 40, c1: float = 1e-4, c2: float = 0.9) -> BatchResult:
    """Minimise S independent objectives from the S rows of x0 at once.

    Each start stops on its own: gradient inf-norm <= gtol (a scalar or one per start), or a
    relative decrease below ftol (scipy's L-BFGS-B rule), or max_iter, or a failed line search.
    Stopped starts are no longer evaluated, so the cost falls as the batch converges."""
    x = np.array(x0, dtype=np.float64, copy=True)
    if x.ndim != 2:
        raise ValueError(f"x0 must be (starts, params), got shape {x.shape}")
    starts, dim = x.shape
    gtol = np.broadcast_to(np.asarray(gtol, dtype=np.float64), (starts,))
    f, g = value_and_grad(x, np.arange(starts))
    evaluations = 1
    s_hist = np.zeros((starts, memory, dim))
    y_hist = np.zeros((starts, memory, dim))
    rho = np.zeros((starts, memory))
    iterations = np.zeros(starts, dtype=int)
    status = np.full(starts, RUNNING)
    status[np.abs(g).max(axis=1) <= gtol] = GRADIENT_SMALL
    status[~np.isfinite(f)] = LINE_SEARCH_FAILED

    for _ in range(max_iter):
        rows = np.flatnonzero(status == RUNNING)
        if rows.size == 0:
            break
        x_k, f_k, g_k = x[rows], f[rows], g[rows]
        direction = _two_loop(g_k, s_hist[rows], y_hist[rows], rho[rows])
        slope = np.einsum("kp,kp->k", g_k, direction)
        uphill = ~(slope < 0)  # a stale history can fail to give descent: restart it from -g
        if uphill.any():
            direction[uphill] = -g_k[uphill]
            slope[uphill] = -np.einsum("kp,kp->k", g_k[uphill], g_k[uphill])
            rho[rows[uphill]] = 0.0
        # Without curvature information the first step is scaled to unit length (as scipy does).
        fresh = rho[rows, -1] == 0
        step = np.where(fresh, np.minimum(1.0, 1.0 / np.linalg.norm(direction, axis=1)), 1.0)
        x_new, f_new, g_new, evals, accepted = _wolfe_search(
            value_and_grad, rows, x_k, f_k, direction, slope, step, max_line_search, c1, c2)
        evaluations += evals
        iterations[rows] += 1

        failed = ~accepted
        status[rows[failed]] = LINE_SEARCH_FAILED
        ok = rows[accepted]
        s_new = x_new[accepted] - x_k[accepted]
        y_new = g_new[accepted] - g_k[accepted]
        sy = np.einsum("kp,kp->k", s_new, y_new)
        x[ok], f[ok], g[ok] = x_new[accepted], f_new[accepted], g_new[accepted]
        # Keep only pairs with positive curvature so the implicit inverse Hessian stays positive
        # definite; the Wolfe condition guarantees it except at round-off level.
        keep = sy > 1e-300
        kept = ok[keep]
        s_hist[kept] = np.roll(s_hist[kept], -1, axis=1)
        y_hist[kept] = np.roll(y_hist[kept], -1, axis=1)
        rho[kept] = np.roll(rho[kept], -1, axis=1)
        s_hist[kept, -1], y_hist[kept, -1], rho[kept, -1] = s_new[keep], y_new[keep], 1.0 / sy[keep]

        f_old = f_k[accepted]
        # Relative to the objective itself, not to max(|f|, 1) as scipy does: a near-exact fit
        # (f ~ 1e-9) would otherwise stop on an absolute decrease of 1e-15, far from its optimum.
        decrease = (f_old - f[ok]) / np.maximum.reduce([np.abs(f_old), np.abs(f[ok]), np.full(len(ok), 1e-300)])
        status[ok[decrease <= ftol]] = NO_PROGRESS
        status[ok[np.abs(g[ok]).max(axis=1) <= gtol[ok]]] = GRADIENT_SMALL
    status[status == RUNNING] = MAX_ITER
    return BatchResult(x=x, fun=f, grad=g, iterations=iterations, status=status, evaluations=evaluations)


def _wolfe_search(value_and_grad, rows, x, f0, direction, slope, step, max_steps, c1, c2):
    """Weak-Wolfe line search for every start at once: shrink a step that is too long (Armijo
    fails), grow one that is too short (curvature fails; doubling until bracketed), bisect the
    bracket.
    A non-finite objective counts as too long. If the budget runs out, the best Armijo step so
    far is taken; a start with none is reported as failed."""
    k = len(rows)
    lo, hi = np.zeros(k), np.full(k, np.inf)
    t = step.copy()
    done = np.zeros(k, dtype=bool)
    x_out, f_out, g_out = x.copy(), f0.copy(), np.zeros_like(x)
    best_armijo = np.zeros(k, dtype=bool)
    evaluations = 0
    for _ in range(max_steps):
        todo = np.flatnonzero(~done)
        if todo.size == 0:
            break
        x_try = x[todo] + t[todo, None] * direction[todo]
        with np.errstate(all="ignore"):
            f_try, g_try = value_and_grad(x_try, rows[todo])
        evaluations += 1
        finite = np.isfinite(f_try) & np.isfinite(g_try).all(axis=1)
        armijo = finite & (f_try <= f0[todo] + c1 * t[todo] * slope[todo])
        curvature = np.einsum("kp,kp->k", np.where(finite[:, None], g_try, 0.0), direction[todo]) \
            >= c2 * slope[todo]
        # Remember the best sufficient-decrease point in case the search runs out of budget.
        better = armijo & (f_try < f_out[todo])
        sel = todo[better]
        x_out[sel], f_out[sel], g_out[sel], best_armijo[sel] = x_try[better], f_try[better], g_try[better], True
        accept = armijo & curvature
        done[todo[accept]] = True
        too_long, too_short = todo[~armijo], todo[armijo & ~curvature]
        hi[too_long] = t[too_long]
        lo[too_short] = t[too_short]
        # Too long: the minimiser of the quadratic through f(lo=0), slope and f(t), kept within
        # [0.1, 0.5] of the bracket (Nocedal & Wright §3.5); bisection once lo > 0 or f is not finite.
        t_long, f_long = t[too_long], np.where(finite, f_try, np.inf)[~armijo]
        excess = f_long - f0[too_long] - slope[too_long] * t_long
        with np.errstate(divide="ignore", invalid="ignore"):
            quadratic = -slope[too_long] * t_long ** 2 / (2.0 * excess)
        quadratic = np.where(np.isfinite(quadratic) & (lo[too_long] == 0), quadratic, 0.5 * t_long)
        t[too_long] = np.where(lo[too_long] == 0, np.clip(quadratic, 0.1 * t_long, 0.5 * t_long),
                               0.5 * (lo[too_long] + hi[too_long]))
        t[too_short] = np.where(np.isfinite(hi[too_short]), 0.5 * (lo[too_short] + hi[too_short]),
                                2.0 * t[too_short])
        sel = todo[accept]
        x_out[sel], f_out[sel], g_out[sel] = x_try[accept], f_try[accept], g_try[accept]
    accepted = done | best_armijo
    return x_out, f_out, g_out, evaluations, accepted


def polish(fun_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray,
           max_iter: int = 100_000) -> OptimizeResult:
    """scipy L-BFGS-B with tolerances tight enough that it stops at the optimum, not on a
    plateau of the objective (Besiroglu et al. 2024: default tolerances stall Hoffmann's fit).
    The objective is divided by its value at x0, because scipy's ftol is relative to
    max(|f|, 1): on a near-exact fit (f ~ 1e-9) it would be an absolute 1e-15 and stop early."""
    x0 = np.asarray(x0, dtype=np.float64)
    f0 = abs(fun_and_grad(x0)[0])
    scale = f0 if np.isfinite(f0) and f0 > 0 else 1.0

    def scaled(x):
        f, g = fun_and_grad(x)
        return f / scale, np.asarray(g) / scale

    result = minimize(scaled, x0, jac=True, method="L-BFGS-B",
                      options={"ftol": 1e-15, "gtol": 1e-12 / scale, "maxiter": max_iter, "maxfun": 10 * max_iter,
                               "maxcor": 20})
    result.fun, result.jac = result.fun * scale, result.jac * scale
    return result


def polish_succeeded(result: OptimizeResult) -> bool:
    """scipy's success, plus its 'ABNORMAL' line-search stop: with ftol = 1e-15 that is how
    L-BFGS-B ends when no float64 step lowers the objective any more (typically when started at
    an optimum already). Whether that point is an optimum or a stall is then decided by the
    gradient (`check_converged`); iteration or evaluation limits are never success."""
    return bool(result.success) or (result.status == 2 and "ABNORMAL" in str(result.message))


def gradient_tolerance(weight_sum: float, delta: float, rtol: float = GRADIENT_RTOL) -> float:
    """The convergence threshold on the gradient inf-norm of a summed-Huber objective.

    Each point's Huber derivative is capped at delta, so weight_sum·delta is the size of the
    gradient when the fit is off for every point (per unit sensitivity of the prediction to a
    parameter); rtol = 1e-6 of that means the remaining slope could move the objective by a
    negligible fraction of what a point-wide misfit would. The scale keeps the check independent
    of the number of points and of delta (mean versus sum, bootstrap weights).

    A tighter scale for near-exact fits, rtol·sqrt(2 f W) (MINPACK's orthogonality test), was
    tried and dropped: on a 12-run grid fitted to 1e-4 the objective's round-off (its residuals
    carry absolute errors of ~1e-16, i.e. ~1e-12 of f) stops every line search at gradients about
    twice that scale, so the verdict was decided by the last bits again (docs/LOG.md, 2026-12-04)."""
    return rtol * weight_sum * delta


TIE_RTOL = 1e-12
"""Objectives that differ by less than this (relative) are ties: such a difference is the last bits
of the BLAS kernel (OPENBLAS_CORETYPE changes them), not the data, so it must decide nothing."""
AGREE_RTOL = 1e-6
"""Two stationary starts agree (reached the same optimum) when their objectives differ by less than
this (relative). Starts stopped by the gradient test sit within ~g²/h of the optimum's value, far
below 1e-6 of it; distinct local optima of these fits differ by percents (docs/LOG.md)."""
MIN_AGREEING = 2
"""A fit is converged only when at least this many stationary starts reach its optimum: one lucky
(or unlucky) start is not evidence that the optimum was found."""


def stationary(gradient_norm: float, objective: float, weight_sum: float, delta: float,
               rtol: float = GRADIENT_RTOL) -> bool:
    """The one gradient test of every law, its main fit and its bootstrap replicates: a finite
    objective and a gradient inf-norm within `gradient_tolerance`. Together with a normal stop
    (no iteration limit) and a second start that agrees (`judge`), this is convergence."""
    return bool(np.isfinite(objective)) and float(gradient_norm) <= gradient_tolerance(weight_sum, delta, rtol)


def same_value(f: float, g: float, rtol: float, floor: float = 0.0) -> bool:
    """|f − g| within rtol of the larger magnitude, or below `floor` (objectives near 0)."""
    return bool(np.isfinite(f) and np.isfinite(g)) and abs(f - g) <= max(rtol * max(abs(f), abs(g)), floor)


def value_floor(weight_sum: float, delta: float) -> float:
    """Objectives below this are zero for the tie and agreement tests: every residual under
    1e-6·delta, far inside the round-off of log L on a real fit."""
    return 0.5 * weight_sum * (1e-6 * delta) ** 2


@dataclass
class Verdict:
    best: int
    """Index of the chosen start: the lowest objective, a converged start winning a tie."""
    converged: bool
    """The chosen start is stationary and at least MIN_AGREEING stationary starts agree with it."""
    agreeing: int
    """Stationary starts whose objective agrees with the chosen one (AGREE_RTOL)."""


def count_agreeing(funs: np.ndarray, ok: np.ndarray, value: float, floor: float = 0.0) -> int:
    """Stationary starts (`ok`) whose objective agrees with `value` (AGREE_RTOL)."""
    return int(sum(bool(k) and same_value(f, value, AGREE_RTOL, floor) for f, k in zip(funs, ok)))


def judge(funs: np.ndarray, ok: np.ndarray, floor: float = 0.0) -> Verdict:
    """Choose the fit among the ends of several starts and decide whether it converged.
    `ok[i]`: start i stopped normally and passed `stationary`. Ties (TIE_RTOL) go to a converged
    start, then to the first, so that round-off never picks a start."""
    funs, ok = np.asarray(funs, dtype=np.float64), np.asarray(ok, dtype=bool)
    finite = np.flatnonzero(np.isfinite(funs))
    if finite.size == 0:
        raise ValueError("every start gave a non-finite objective")
    lowest = float(funs[finite].min())
    tied = [int(i) for i in finite if same_value(funs[i], lowest, TIE_RTOL, floor)]
    best = next((i for i in tied if ok[i]), tied[0])
    agreeing = count_agreeing(funs, ok, float(funs[best]), floor)
    return Verdict(best=best, converged=bool(ok[best]) and agreeing >= MIN_AGREEING, agreeing=agreeing)


@dataclass
class Polished:
    row: int
    """The batch row (start) this came from."""
    x: np.ndarray
    fun: float
    gradient_norm: float
    converged: bool
    """This start stopped normally and passed the gradient test (`stationary`)."""
    message: str


def distinct_best(x: np.ndarray, fun: np.ndarray, count: int, separation: float = 1e-3,
                  fun_rtol: float = 1e-4) -> list[int]:
    """Rows of the `count` lowest objectives that are distinct optima: many starts land on the
    same optimum (or drift along the same flat valley, e.g. E -> 0), and polishing copies of it
    says nothing new. Two rows are the same optimum when their points agree within `separation`
    (inf-norm) or their objectives agree to `fun_rtol`."""
    chosen: list[int] = []
    for row in np.argsort(np.where(np.isfinite(fun), fun, np.inf), kind="stable"):
        if not np.isfinite(fun[row]):
            break
        if all(np.max(np.abs(x[row] - x[other])) > separation
               and abs(fun[row] - fun[other]) > fun_rtol * abs(fun[other]) for other in chosen):
            chosen.append(int(row))
            if len(chosen) == count:
                break
    return chosen


Accept = Callable[[float, float], bool]
"""(gradient inf-norm, objective) -> passes the gradient test (a `stationary` with the fit's scales)."""


def polish_rows(value_and_grad: BatchValueAndGrad, batch: BatchResult, rows: list[int],
                accept: Accept) -> list[Polished]:
    """Polish the given batch rows one by one with `polish` and check each with `accept`;
    a polish that ends worse than its batched start keeps the batched point."""
    out = []
    for row in rows:
        index = np.array([row])

        def fun_and_grad(point, index=index):
            f, g = value_and_grad(point[None, :], index)
            return float(f[0]), g[0]

        result = polish(fun_and_grad, batch.x[row])
        if not (polish_succeeded(result) and accept(float(np.max(np.abs(result.jac))), float(result.fun))):
            # A second run starts with an empty L-BFGS memory: near a kink of the Huber's second
            # derivative (a residual at exactly ±delta) a stale curvature history can stop it early.
            again = polish(fun_and_grad, result.x)
            result = again if again.fun <= result.fun else result
        x, fun, grad, success = result.x, float(result.fun), result.jac, polish_succeeded(result)
        if not fun <= batch.fun[row]:
            x, fun, grad = batch.x[row], float(batch.fun[row]), batch.grad[row]
            success = bool(batch.stopped_normally[row])
        norm = float(np.max(np.abs(grad)))
        out.append(Polished(row=row, x=np.asarray(x, dtype=np.float64), fun=fun, gradient_norm=norm,
                            converged=bool(success) and accept(norm, fun), message=str(result.message)))
    return out
