"""Per-pair outcomes in eval.json and paired differences between runs: the stored values
reproduce each headline accuracy, and the paired interval finds a difference that two
separate intervals would hide."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from slmscale.evaluate.evaluate import evaluate_run
from slmscale.evaluate.outcomes import PairOutcomes, pair_outcomes, paired_difference

from test_eval_run import _cfg, world  # noqa: F401  (the module's trained run and benchmarks)


def _outcomes(values, strata=None, macro=False, baseline=None) -> PairOutcomes:
    keys = tuple(f"p{i}" for i in range(len(values)))
    return PairOutcomes(keys=keys, strata=tuple(strata or [""] * len(values)), model=np.asarray(values, float),
                        baseline=None if baseline is None else np.asarray(baseline, float), macro=macro)


def test_stored_pairs_reproduce_every_headline_accuracy(world, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    out = evaluate_run(run, [world["bench"], world["manifest"]], _cfg(world))
    metrics = out["metrics"]
    for metric in ("sblimp", "sblimp_pairs", "swuggy", "ssc", "tsc", "mine"):
        found = pair_outcomes(out, metric)
        assert found is not None, metric
        if found.macro:  # sBLIMP: the mean over types of the pairs' mean
            strata = np.array(found.strata)
            value = np.mean([found.model[strata == s].mean() for s in sorted(set(found.strata))])
        else:
            value = found.model.mean()
        assert value == pytest.approx(metrics[metric], abs=1e-6), metric
        assert found.baseline.mean() == pytest.approx(metrics[f"kn5_{metric}"], abs=1e-6) or found.macro
    assert pair_outcomes(out, "sblimp").macro and not pair_outcomes(out, "sblimp_pairs").macro
    assert pair_outcomes(out, "no_such_metric") is None
    old = {**out, "benchmarks": {k: {**b, "tasks": {t: {kk: vv for kk, vv in e.items() if kk != "pairs"}
                                                    for t, e in b["tasks"].items()}}
                                 for k, b in out["benchmarks"].items()}}
    assert pair_outcomes(old, "sblimp") is None  # scored before pairs were kept


def test_paired_difference_sees_what_separate_intervals_hide():
    rng = np.random.default_rng(0)
    # 1000 pairs of very different difficulty; run B is right wherever A is, plus on 4% more.
    a = (rng.random(1000) < rng.choice([0.05, 0.95], 1000)).astype(float)
    b = a.copy()
    b[np.flatnonzero(a == 0)[:40]] = 1.0
    result = paired_difference(_outcomes(b), _outcomes(a))
    assert result["difference"] == pytest.approx(0.04) and result["n"] == 1000
    assert 0 < result["ci"][0] < 0.04 < result["ci"][1] < 0.06
    # Separately, each accuracy's 95% interval is about ±3 points: they overlap.
    assert 1.96 * np.sqrt(0.25 / 1000) > 0.03
    same = paired_difference(_outcomes(a), _outcomes(a))
    assert same["difference"] == 0 and same["ci"] == [0.0, 0.0]


def test_paired_difference_uses_shared_pairs_and_macro_strata():
    a = PairOutcomes(keys=("x", "y", "z"), strata=("P", "P", "Q"), model=np.array([1.0, 1.0, 0.0]),
                     baseline=np.array([0.0, 0.0, 0.0]), macro=True)
    b = PairOutcomes(keys=("z", "y", "w"), strata=("Q", "P", "Q"), model=np.array([1.0, 0.0, 1.0]),
                     baseline=None, macro=True)
    result = paired_difference(a, b)  # shared: y (P: 1 - 0) and z (Q: 0 - 1); macro of type means
    assert result["n"] == 2 and result["difference"] == pytest.approx(0.0)
    against_ngram = paired_difference(a, a, a_values=a.model, b_values=a.baseline)
    assert against_ngram["difference"] == pytest.approx((1.0 + 0.0) / 2)  # P: 1, Q: 0
    assert paired_difference(a, _outcomes([1.0]))["n"] == 0
