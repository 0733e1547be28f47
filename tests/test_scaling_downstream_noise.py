"""The default downstream estimator against binomial noise: simulation of bias and coverage on the
released runs' compute budgets (Cuervo & Marxer 2024, Table 4 settings), and its parts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from slmscale.scaling import downstream_noise as noise
from slmscale.scaling.downstream import downstream_scaling
from slmscale.scaling.downstream_validation import SETTINGS, simulate, true_scores
from slmscale.scaling.table import REFERENCE, ResultsTable, read_table


@pytest.fixture(scope="module")
def released() -> ResultsTable:
    return read_table(REFERENCE / "slm_scaling" / "results.csv")


@pytest.mark.parametrize("metric", sorted(SETTINGS))
def test_noise_aware_gamma_unbiased_and_intervals_cover(released, metric):
    """The acceptance check: |mean bias| < 5% and 95% intervals covering 90–98% of 500 datasets.
    Measured here (seed 1): bias +0.5% / −0.1% / +1.7% (sBLIMP / tSC / sSC), coverage 0.944 /
    0.938 / 0.936, no false saturation in sBLIMP and tSC, 0.4% in sSC. The earlier default
    ("presaturation", runs resampled) on the same datasets: +6.5% / +3.9% / +25.9%, coverage
    0.80 / 0.81 / 0.67, hinge in 22% / 15% / 24%: it fails this test for all three."""
    s = SETTINGS[metric]
    result = simulate(released.params, released.tokens, s["gamma"], s["n_items"], s["level"],
                      datasets=500, resamples=300, seed=1)
    summary = {k: result[k] for k in ("bias", "median_bias", "coverage", "saturation_rate", "bootstrap_failed")}
    assert abs(result["bias"]) < 0.05, summary
    assert 0.90 <= result["coverage"] <= 0.98, summary
    assert result["saturation_rate"] <= 0.02, summary  # the law never saturates: every hinge is a false alarm
    assert result["n_fitted"] == 500 and result["interval_missing"] == 0, summary


def test_earlier_default_fails_the_same_simulation(released):
    """Plain envelope + BIC hinge (method "presaturation") on simulated sSC datasets: γ comes out
    about 25% high and the hinge fires in about a quarter of unsaturated datasets."""
    s = SETTINGS["ssc"]
    result = simulate(released.params, released.tokens, s["gamma"], s["n_items"], s["level"],
                      datasets=400, resamples=0, seed=1, method="presaturation")
    assert result["bias"] > 0.12 and result["saturation_rate"] > 0.10, result


@pytest.mark.integration
def test_earlier_default_intervals_undercover(released):
    s = SETTINGS["ssc"]
    result = simulate(released.params, released.tokens, s["gamma"], s["n_items"], s["level"],
                      datasets=200, resamples=200, seed=1, method="presaturation")
    assert result["coverage"] < 0.85, result


@pytest.mark.integration
@pytest.mark.parametrize("metric", sorted(SETTINGS))
def test_noise_aware_with_runs_below_the_frontier(released, metric):
    """Robustness, a known weakness: over- and under-trained runs sit up to ~5% below the law
    (κ = 0.0015); the frontier keeps those less than ~2 standard errors below, so γ comes out a
    few percent low and the intervals undercover a little (measured, seed 2: bias −3.6% / −2.2% /
    −2.7% for sBLIMP / tSC / sSC, coverage 0.86 / 0.88 / 0.92)."""
    s = SETTINGS[metric]
    result = simulate(released.params, released.tokens, s["gamma"], s["n_items"], s["level"],
                      datasets=300, resamples=300, seed=2, kappa=0.0015)
    assert -0.06 < result["bias"] < 0.0 and result["coverage"] >= 0.80, result


def test_item_count_sources():
    assert noise.item_count("ssc") == (1871.0, noise.item_count("ssc")[1])
    assert "1,871 pairs" in noise.item_count("SSC")[1]
    assert noise.item_count("ssc", n_items=500) == (500.0, "argument n_items")
    counts, source = noise.item_count("acc", column=np.array([100.0, 200.0]))
    assert counts.tolist() == [100.0, 200.0] and source == "column acc_n"
    assert noise.item_count("acc") == (None, None)
    with pytest.raises(ValueError, match="n_items must be a number of items"):
        noise.item_count("ssc", n_items=0)
    with pytest.raises(ValueError, match="acc_n must hold item counts"):
        noise.item_count("acc", column=np.array([100.0, np.nan]))


def test_dominated_needs_a_gap_beyond_noise():
    flops = np.array([1.0, 2.0, 3.0])
    score = np.array([0.60, 0.58, 0.50])
    se = np.full(3, 0.01)  # difference's se is 0.014: 0.02 is noise, 0.10 is not
    assert noise.dominated(flops, score, se).tolist() == [False, False, True]
    assert noise.dominated(flops, np.array([[0.6, 0.7, 0.8], [0.8, 0.7, 0.6]]), np.full((2, 3), 0.01)).tolist() \
        == [[False, False, False], [False, True, True]]


def test_weighted_line_matches_polyfit_and_ignores_zero_weights():
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=20), rng.normal(size=20), rng.uniform(0.5, 2.0, 20)
    w[:5] = 0.0
    slope, intercept, chi2 = noise.weighted_line(x, y, w)
    expected = np.polyfit(x[5:], y[5:], 1, w=np.sqrt(w[5:]))
    assert [slope, intercept] == pytest.approx(expected.tolist(), rel=1e-10)
    assert chi2 == pytest.approx(float((w * (y - slope * x - intercept) ** 2).sum()), rel=1e-10)
    assert np.isnan(noise.weighted_line(np.ones(4), y[:4], w[10:14])[0])


def _table(flops: np.ndarray, score: np.ndarray, tokens_per_param: float = 20.0, counts=None) -> ResultsTable:
    params = np.sqrt(flops / (6 * tokens_per_param))
    metrics = {"acc": score} if counts is None else {"acc": score, "acc_n": counts}
    return ResultsTable(params=params, tokens=flops / (6 * params), flops=flops, metrics=metrics,
                        run_ids=[f"run{i}" for i in range(len(flops))], source="synthetic")


def test_real_saturation_is_found_and_left_out():
    rng = np.random.default_rng(5)
    flops = np.logspace(18, 22, 30)
    truth = 0.6 * (np.minimum(flops, 1e21) / 1e18) ** 0.03
    score = rng.binomial(100_000, truth) / 100_000
    result = downstream_scaling(_table(flops, score), "acc", bootstrap=200, n_items=100_000)
    assert result["method"] == "noise_aware" and result["noise"]["source"] == "argument n_items"
    assert result["saturation_flops"] == pytest.approx(1e21, rel=0.5)
    assert result["gamma"] == pytest.approx(0.03, rel=0.1)
    assert all(p["flops"] <= 2e21 for p in result["envelope"] if p["used_in_fit"])
    low, high = result["gamma_ci95"]
    assert low <= 0.03 <= high


def test_runs_far_below_the_frontier_are_left_out():
    rng = np.random.default_rng(6)
    flops = np.logspace(18, 22, 40)
    short = np.where(np.arange(40) % 3 == 0, 0.9, 1.0)  # every third run 10% below the law
    score = rng.binomial(20_000, 0.5 * (flops / 1e18) ** 0.02 * short) / 20_000
    result = downstream_scaling(_table(flops, score), "acc", bootstrap=100, n_items=20_000)
    fitted = {p["run_id"] for p in result["envelope"] if p["used_in_fit"]}
    assert not fitted & {f"run{i}" for i in range(3, 40, 3)}  # run0 has no cheaper run to lose to
    assert result["gamma"] == pytest.approx(0.02, rel=0.1)


def test_counts_from_column_and_fallback_without_counts():
    rng = np.random.default_rng(7)
    flops = np.logspace(18, 21, 20)
    score = rng.binomial(2000, 0.55 * (flops / 1e18) ** 0.02) / 2000
    with_column = downstream_scaling(_table(flops, score, counts=np.full(20, 2000.0)), "acc", bootstrap=50)
    assert with_column["method"] == "noise_aware" and with_column["noise"]["source"] == "column acc_n"
    assert with_column["noise"]["n_items"] == [2000.0] * 20
    bare = downstream_scaling(_table(flops, score), "acc", bootstrap=50)
    assert bare["method"] == "presaturation" and bare["method_requested"] == "noise_aware"
    assert bare["noise"]["model"] is None and "no item count for 'acc'" in bare["noise"]["note"]
    assert bare["bootstrap"]["kind"].startswith("runs resampled")


def test_failed_replicates_are_counted_beside_the_interval():
    flops = np.array([1e18, 2e18, 4e18, 8e18])
    score = np.array([0.55, 0.56, 0.57, 0.575])  # four runs, 40 items: replicates often lose the frontier
    result = downstream_scaling(_table(flops, score), "acc", bootstrap=300, seed=3, n_items=40)
    boot = result["bootstrap"]
    assert boot["failed"] > 0 and boot["n_valid"] + boot["failed"] == boot["resamples"] == 300
    assert boot["kind"].startswith("parametric") and boot["n_converged"] == boot["n_valid"]


def test_simulated_truth_is_the_law_on_the_frontier(released):
    truth = true_scores(released.params, released.tokens, 0.02, 0.6)
    x = np.log(released.flops)
    assert np.polyfit(x, np.log(truth), 1)[0] == pytest.approx(0.02, rel=1e-9)
    short = true_scores(released.params, released.tokens, 0.02, 0.6, kappa=0.0015)
    assert np.all(short <= truth) and (1 - short / truth).max() < 0.06


def test_bootstrap_does_not_depend_on_unit(released):
    fraction = replace(released, metrics={k: v / 100 for k, v in released.metrics.items()})
    pct = downstream_scaling(released, "tsc", bootstrap=100, seed=4)
    frac = downstream_scaling(fraction, "tsc", bootstrap=100, seed=4)
    assert frac["gamma_ci95"] == pytest.approx(pct["gamma_ci95"], rel=1e-12)
