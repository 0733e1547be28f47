"""The one convergence rule of every law (`optimize.judge`): decided by the gradient and by a second
start, never by the last bits of the objective; and the laws refuse what the data cannot identify."""

import numpy as np
import pytest

from slmscale.scaling import data_constrained as dc
from slmscale.scaling.chinchilla import bootstrap_chinchilla, chinchilla_loss, fit_chinchilla
from slmscale.scaling.kaplan import fit_kaplan
from slmscale.scaling.optimize import AGREE_RTOL, TIE_RTOL, judge, lbfgs_batched, stationary
from slmscale.scaling.table import read_table

DATABLATIONS = "tests/data/reference/datablations/c4_runs_final_val_loss.csv"
TINY_TRUTH = {"E": 0.5, "A": 30.0, "B": 60.0, "alpha": 0.3, "beta": 0.3}


def tiny_grid(noise: float, seed: int = 0):
    """3 sizes × 4 budgets, like the tiny study's main grid, on a known law."""
    N = np.repeat([1e6, 2e6, 4e6], 4)
    D = np.tile([2.5e5, 5e5, 1e6, 2e6], 3)
    loss = chinchilla_loss(TINY_TRUTH, N, D) * np.exp(np.random.default_rng(seed).normal(0, noise, N.size))
    return N, D, loss


def test_a_tie_goes_to_the_converged_start_whatever_the_last_bits():
    value = 0.0158046624740
    for wiggle in (-1, 1):  # the unconverged start is an ulp-scale hair below or above
        funs = [value * (1 + wiggle * 0.3 * TIE_RTOL), value, value * (1 + 0.5 * AGREE_RTOL)]
        verdict = judge(funs, [False, True, True])
        assert verdict.best == 1 and verdict.converged and verdict.agreeing == 2
    # A real difference is not a tie: the lower objective wins, converged or not.
    verdict = judge([value * (1 - 1e-6), value, value], [False, True, True])
    assert verdict.best == 0 and not verdict.converged
    # One stationary start alone is not a converged fit.
    assert not judge([value, value * 1.01], [True, True]).converged
    with pytest.raises(ValueError, match="non-finite"):
        judge([np.inf, np.nan], [True, True])


def test_stationary_is_scale_free():
    # The same relative gradient passes whatever the number of points (or bootstrap weights) and delta.
    for weight_sum, delta in ((12, 1e-3), (240, 1e-3), (182, 0.03)):
        assert stationary(0.5e-6 * weight_sum * delta, 1e-9, weight_sum, delta)
        assert not stationary(2e-6 * weight_sum * delta, 1e-9, weight_sum, delta)
    assert not stationary(0.0, np.nan, 12, 1e-3)


def test_batched_lbfgs_does_not_stop_on_an_absolute_decrease():
    # f = s·|x|² with s = 1e-12: scipy's ftol rule (decrease relative to max(|f|, 1)) stops at
    # once; the decrease relative to f itself goes on to the gradient test.
    scale = 1e-12

    def value_and_grad(x, rows):
        return scale * (x ** 2).sum(1), 2 * scale * x

    result = lbfgs_batched(value_and_grad, np.full((3, 4), 3.0), gtol=1e-20)
    assert np.abs(result.x).max() < 1e-6


def test_data_constrained_start_at_its_optimum_is_converged():
    # Started at the optimum, L-BFGS-B ends on an 'ABNORMAL' line search: that is a converged start
    # when the gradient says so (the rule that OPENBLAS_CORETYPE used to flip).
    runs = read_table(DATABLATIONS)
    published = dc.muennighoff_params()
    base = {k: published[k] for k in dc.BASE_KEYS}
    args = (runs.params, runs.tokens, runs.unique_tokens, runs.loss, base)
    fit = dc.fit_data_constrained(*args, grid=[[15.0, 5.0], [16.0, 5.5]])
    at_optimum = dc.fit_data_constrained(*args, grid=[[fit.params["R_D_star"], fit.params["R_N_star"]], [16.0, 5.5]])
    assert at_optimum.converged and at_optimum.extra["starts_converged"] == 2
    assert at_optimum.objective == pytest.approx(fit.objective, rel=1e-9)


def test_bootstrap_replicates_are_judged_like_the_main_fit():
    # A 12-run grid fitted almost exactly (0.01% noise): replicates used to stop on scipy's absolute
    # ftol, far from their optimum, and were dropped (here 32 of 200; 63 of 200 on the tiny study).
    N, D, loss = tiny_grid(noise=1e-4)
    fit = fit_chinchilla(N, D, loss)
    assert fit.converged and fit.extra["agreeing_starts"] >= 2
    boot = bootstrap_chinchilla(N, D, loss, fit, resamples=100, seed=0)
    assert boot["n_converged"] >= 95 and boot["resamples"] == 100
    for name in ("E", "alpha", "beta", "a"):
        low, high = boot[name]["ci95"]
        assert low <= boot[name]["estimate"] <= high and boot[name]["n"] <= boot["n_converged"]


def test_too_few_runs_are_refused():
    N, D, loss = tiny_grid(noise=1e-3)
    with pytest.raises(ValueError, match="5 free parameters and needs at least 7 runs.*got 6"):
        fit_chinchilla(N[:6], D[:6], loss[:6])
    with pytest.raises(ValueError, match="4 free parameters and needs at least 6 runs.*got 5"):
        fit_kaplan(N[:5], D[:5], loss[:5])
    fixed = fit_chinchilla(N[:6], D[:6], loss[:6], fixed={"alpha": 0.3, "beta": 0.3})  # 3 free: 6 is enough
    assert fixed.n_points == 6
    runs = read_table(DATABLATIONS)
    published = dc.muennighoff_params()
    with pytest.raises(ValueError, match="2 free parameters and needs at least 4 runs"):
        dc.fit_data_constrained(runs.params[:3], runs.tokens[:3], runs.unique_tokens[:3], runs.loss[:3],
                                {k: published[k] for k in dc.BASE_KEYS})


def test_a_law_whose_loss_does_not_fall_with_size_is_not_identified():
    # Loss rising with N (a noisy grid where the larger models did worse): the unconstrained optimum
    # has α < 0, where the allocation's fractional powers used to crash `fit` with a complex number.
    N, D, _ = tiny_grid(noise=0.0)
    loss = 2.0 + 0.05 * np.log(N / 1e6) + 40.0 / D ** 0.3
    with pytest.raises(ValueError, match=r"not identified.*alpha = -"):
        fit_chinchilla(N, D, loss)


def test_data_constrained_bootstrap_interval_covers_a_known_decay():
    runs = read_table(DATABLATIONS)
    published = dc.muennighoff_params()
    base = {k: published[k] for k in dc.BASE_KEYS}
    truth = {**base, "R_D_star": 10.0, "R_N_star": 3.0}
    clean = dc.data_constrained_loss(truth, runs.params, runs.tokens, runs.unique_tokens)
    noisy = clean * np.exp(np.random.default_rng(0).normal(0.0, 0.01, clean.size))
    fit = dc.fit_data_constrained(runs.params, runs.tokens, runs.unique_tokens, noisy, base)
    boot = dc.bootstrap_data_constrained(runs.params, runs.tokens, runs.unique_tokens, noisy, fit, resamples=30,
                                         seed=0)
    assert boot["resamples"] == 30 and boot["n_converged"] >= 27
    for name, value in (("R_D_star", 10.0), ("R_N_star", 3.0)):
        low, high = boot[name]["ci95"]
        assert low < value < high and high / low < 3  # informative on a design that identifies R*
