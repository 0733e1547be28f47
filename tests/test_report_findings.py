"""The report's Findings (slmscale.report.findings) on synthetic report dicts and per-pair outcomes
whose answer is known: each verdict follows the numbers (HOLDS, DOES NOT HOLD, NOT MEASURABLE),
and the markdown prints the verdict computed, never fixed text."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from slmscale.evaluate.outcomes import PairOutcomes
from slmscale.report.findings import compute_findings, render_findings
from slmscale.report.report import run_outcomes
from slmscale.scaling.downstream_noise import gamma_contrast

RESAMPLES = 200


def pairs(correct: int, n: int = 1000, baseline: int | None = None, prefix: str = "p") -> PairOutcomes:
    """A run right on the first `correct` of n pairs (its n-gram on the first `baseline`)."""
    index = np.arange(n)
    return PairOutcomes(keys=tuple(f"{prefix}{i}" for i in range(n)), strata=("",) * n,
                        model=(index < correct).astype(float),
                        baseline=None if baseline is None else (index < baseline).astype(float), macro=False)


def acc(rate: float, baseline: float | None = None, n: int = 2000) -> PairOutcomes:
    """A run right on the first `rate` share of n pairs (2000: a ±2.2-point interval at worst)."""
    return pairs(round(rate * n), n, None if baseline is None else round(baseline * n))


def row(run_id: str, variant: str, corpus: str, size: str, params: float, tokens: float, **extra) -> dict:
    return {"run_id": run_id, "variant": variant, "corpus": corpus, "tokenizer": "raw", "modality": "audio",
            "size": size, "params": str(params), "tokens": str(tokens), "epochs": "1", "unique_tokens": "",
            "flops": f"{6 * params * tokens:.6g}", "sblimp": "0.6", "tsc": "0.6", **extra}


def fit(gamma: float, low: float, high: float) -> dict:
    return {"gamma": gamma, "gamma_ci95": [low, high]}


def base_report() -> dict:
    """A report whose every finding holds with `good_outcomes`."""
    runs = [row("raw-s", "raw", "all", "s", 1e5, 1e6), row("raw-m", "raw", "all", "m", 1e6, 1e6),
            row("raw-l", "raw", "all", "l", 1e7, 1e7), row("raw-l-e4", "raw", "all", "l", 1e7, 4e7, epochs="4"),
            row("st-s", "st", "stories", "s", 1e5, 1e6), row("se-s", "se", "sentences", "s", 1e5, 1e6),
            row("st-m", "st", "stories", "m", 1e6, 1e6), row("se-m", "se", "sentences", "m", 1e6, 1e6)]
    return {
        "metrics": ["sblimp", "tsc", "ssc"], "main_variant": "raw", "text_arm": "text", "text_arm_why": "same corpus",
        "checks": {"variant": "raw", "r2_log": {"value": 0.99, "threshold": 0.97, "pass": True},
                   "extrapolation": {"value": 0.012, "mean": 0.008, "threshold": 0.03, "n_heldout": 3, "pass": True}},
        "variants": {"raw": {"corpus": "all", "tokenizer": "raw",
                             "chinchilla": {"identified": {"E": {"identified": False, "why": "E → 0"},
                                                           "A": {"identified": True, "why": None}}},
                             "downstream": {"sblimp": fit(0.02, 0.018, 0.022), "tsc": fit(0.025, 0.02, 0.03),
                                            "ssc": {"skipped": "the envelope has 2 points"}}},
                     "uni": {"corpus": "all", "tokenizer": "unigram",
                             "downstream": {"sblimp": fit(0.012, 0.01, 0.015)}},
                     "text": {"corpus": "all", "tokenizer": "chars", "downstream": {"sblimp": fit(0.06, 0.05, 0.07)}}},
        "comparison": {"sblimp": {"speech_gamma": 0.02, "speech_gamma_ci95": [0.018, 0.022], "table4_column": "blimp",
                                  "text_arm": {"text_gamma": 0.06, "text_gamma_ci95": [0.05, 0.07], "ratio": 3.0,
                                               "ratio_bounds": [0.05 / 0.022, 0.07 / 0.018]}}},
        "tokenizer_pair": ["raw", "uni"], "skipped": [], "runs": runs,
        "paper": {"ratios": {"blimp": 3.14, "tsc": 1.56, "ssc": 2.7}},
    }


def good_outcomes() -> dict:
    """Top raw run right on 70% of 2000 pairs, the lowest on 50%; stories 65% against sentences 55%."""
    return {("raw-l", "sblimp"): acc(0.7, baseline=0.55), ("raw-s", "sblimp"): acc(0.5),
            ("raw-l", "tsc"): acc(0.7, baseline=0.52), ("raw-s", "tsc"): acc(0.5),
            ("st-m", "tsc"): acc(0.65), ("se-m", "tsc"): acc(0.55),
            ("st-m", "sblimp"): acc(0.6), ("se-m", "sblimp"): acc(0.6)}


def findings(report: dict | None = None, outcomes: dict | None = None) -> dict[str, dict]:
    table = good_outcomes() if outcomes is None else outcomes
    found = compute_findings(report or base_report(), lambda run, metric: table.get((run, metric)), RESAMPLES, 0)
    assert [f["id"] for f in found] == ["loss_law", "downstream_growth", "speech_vs_text", "stories_vs_sentences",
                                       "tokenizers", "intervals"]
    for item in found:
        assert (item["holds"] is None) == ("why" in item) and item["text"]
    json.dumps(found)  # report.json carries them as they are
    return {f["id"]: f for f in found}


def test_every_finding_holds_on_numbers_that_show_it():
    found = findings()
    assert all(f["holds"] is True for f in found.values()), {k: f.get("why") for k, f in found.items()}
    growth = found["downstream_growth"]["numbers"]
    assert growth["top"]["run_id"] == "raw-l" and growth["bottom"]["run_id"] == "raw-s"  # 4-epoch run left out
    assert growth["sblimp"]["difference"] == pytest.approx(0.2) and growth["sblimp"]["ci"][0] > 0
    assert growth["tsc_vs_ngram"]["difference"] == pytest.approx(0.18)
    assert growth["gamma"]["sblimp"] == {"gamma": 0.02, "ci95": [0.018, 0.022]}
    assert "why" in growth["gamma"]["ssc"] and "swuggy" not in growth["gamma"]
    assert "sblimp +20.0 points [" in found["downstream_growth"]["text"]
    assert found["loss_law"]["numbers"]["not_identified"] == {"E": "E → 0"}
    versus = found["speech_vs_text"]["numbers"]
    assert versus["paper_ratio"] == 3.14 and versus["paper_compute_multiplier_per_decade"] == pytest.approx(10 ** 3.14)
    assert versus["compute_multiplier_per_decade"] == pytest.approx(10 ** versus["ratio"])
    low, high = versus["ratio_ci95"] or versus["ratio_bounds"]
    assert versus["compute_multiplier_ci95"] == pytest.approx([10 ** low, 10 ** high])
    assert f"speech gains from {10 ** versus['ratio']:.3g}×" in found["speech_vs_text"]["text"]
    assert "(paper: 1.38e+03×)" in found["speech_vs_text"]["text"]
    stories = found["stories_vs_sentences"]["numbers"]
    assert stories["stories"]["run_id"] == "st-m" and stories["tsc"]["difference"] == pytest.approx(0.1)
    assert stories["sblimp"]["difference"] == 0  # reported, not judged


def test_loss_law_verdicts():
    report = base_report()
    report["checks"]["r2_log"]["value"] = 0.96  # below the 0.97 bar
    assert findings(report)["loss_law"]["holds"] is False
    report = base_report()
    report["checks"]["extrapolation"].update(value=0.05, **{"pass": False})
    assert findings(report)["loss_law"]["holds"] is False
    report = base_report()
    report["checks"] = {"r2_log": {"pass": False, "why": "2 token budgets"},
                        "extrapolation": {"pass": False, "why": "2 token budgets"}}
    law = findings(report)["loss_law"]
    assert law["holds"] is None and law["why"] == "2 token budgets"
    report = base_report()
    report["checks"]["extrapolation"] = {"value": None, "pass": False, "why": "leaves 5 to fit (need 8)"}
    assert findings(report)["loss_law"]["why"] == "leaves 5 to fit (need 8)"


def test_downstream_growth_does_not_hold_without_a_paired_gain():
    same = good_outcomes()
    same[("raw-s", "sblimp")] = acc(0.7)  # both runs right on the same pairs: difference 0 [0, 0]
    assert findings(outcomes=same)["downstream_growth"]["holds"] is False
    worse = good_outcomes()
    worse[("raw-l", "tsc")] = acc(0.45)
    growth = findings(outcomes=worse)["downstream_growth"]
    assert growth["holds"] is False and "tsc -5.0 points" in growth["text"]


def test_downstream_growth_not_measurable():
    missing = good_outcomes()
    del missing[("raw-s", "tsc")]  # evaluated before eval.json kept pair outcomes
    growth = findings(outcomes=missing)["downstream_growth"]
    assert growth["holds"] is None and "no pair outcomes for tsc of raw-s" in growth["why"]
    missing[("raw-l", "sblimp")] = acc(0.5)  # one measured failure decides, whatever the other
    assert findings(outcomes=missing)["downstream_growth"]["holds"] is False
    report = base_report()
    report["metrics"] = ["sblimp", "ssc"]
    assert "tsc is not in the sweep" in findings(report)["downstream_growth"]["why"]
    report = base_report()
    report["runs"] = [r for r in report["runs"] if r["run_id"] != "raw-s" and r["run_id"] != "raw-m"]
    assert findings(report)["downstream_growth"]["holds"] is None


def test_speech_vs_text_verdicts():
    report = base_report()
    report["comparison"]["sblimp"]["text_arm"]["ratio_bounds"] = [0.8, 2.5]
    assert findings(report)["speech_vs_text"]["holds"] is False
    report = base_report()
    report["comparison"]["sblimp"].pop("text_arm")
    report.update(text_arm=None, text_arm_why="the sweep has no completed text-arm runs (modality text)")
    versus = findings(report)["speech_vs_text"]
    assert versus["holds"] is None and "no completed text-arm runs" in versus["why"]
    report = base_report()
    report["comparison"]["sblimp"]["text_arm"]["ratio_bounds"] = None  # no γ intervals (bootstrap 0)
    assert findings(report)["speech_vs_text"]["holds"] is None


def test_stories_vs_sentences_verdicts():
    equal = good_outcomes()
    equal[("st-m", "tsc")] = acc(0.55)
    assert findings(outcomes=equal)["stories_vs_sentences"]["holds"] is False
    report = base_report()
    report["runs"] = [r for r in report["runs"] if r["corpus"] != "sentences"]
    corpora = findings(report)["stories_vs_sentences"]
    assert corpora["holds"] is None and "no stories and sentences runs" in corpora["why"]


def test_tokenizer_verdicts():
    report = base_report()
    report["variants"]["uni"]["downstream"]["sblimp"] = fit(0.03, 0.025, 0.035)  # entirely above raw's
    assert findings(report)["tokenizers"]["holds"] is False
    report["variants"]["uni"]["downstream"]["sblimp"] = fit(0.024, 0.021, 0.027)  # overlaps: not shown better
    assert findings(report)["tokenizers"]["holds"] is True
    report["variants"]["uni"]["downstream"]["sblimp"] = {"skipped": "the envelope has 2 points"}
    tokens = findings(report)["tokenizers"]
    assert tokens["holds"] is None and "the envelope has 2 points" in tokens["why"]
    report.update(tokenizer_pair=[], skipped=[{"what": "Figure 5", "why": "no other tokenizer"}])
    assert findings(report)["tokenizers"]["why"] == "no other tokenizer"


def test_interval_verdicts():
    assert findings()["intervals"]["holds"] is True
    wide = {key: acc(value.model.mean(), n=250) for key, value in good_outcomes().items()}
    assert findings(outcomes=wide)["intervals"]["holds"] is False
    report = base_report()  # no pairs kept: the binomial bound from the item counts
    for r in report["runs"]:
        r.update(sblimp_n="5000", tsc_n="5000")
    bounded = findings(report, outcomes={})["intervals"]
    assert bounded["holds"] is True and "1.96·√(0.25/n)" in bounded["text"]
    assert findings(outcomes={})["intervals"]["holds"] is None  # neither pairs nor counts
    report["runs"] = [r for r in report["runs"] if r["variant"] != "raw" and r["corpus"] != "sentences"]
    none_used = findings(report)["intervals"]
    assert none_used["holds"] is None and none_used["numbers"]["accuracies"] == []


def test_markdown_prints_the_verdict_computed():
    good = compute_findings(base_report(), lambda run, metric: good_outcomes().get((run, metric)), RESAMPLES, 0)
    flipped = good_outcomes()
    flipped[("raw-l", "sblimp")], flipped[("raw-s", "sblimp")] = acc(0.5), acc(0.7)
    bad = compute_findings(base_report(), lambda run, metric: flipped.get((run, metric)), RESAMPLES, 0)
    assert "- **HOLDS**: Downstream accuracy grows" in render_findings(good)
    text = render_findings(bad)
    assert "- **DOES NOT HOLD**: Downstream accuracy grows" in text and "sblimp -20.0 points" in text
    unmeasured = copy.deepcopy(bad)
    unmeasured[0].update(holds=None, why="no law fitted")
    assert "- **NOT MEASURABLE**: Loss follows" in render_findings(unmeasured)
    assert "(not measurable: no law fitted)" in render_findings(unmeasured)


def test_run_outcomes_reads_each_runs_eval_json(tmp_path):
    task = {"metric": "tsc", "kind": "cloze", "pairs": {"keys": ["a", "b"], "strata": ["", ""],
                                                       "model": [1.0, 0.5], "baseline": [0.0, 0.0]}}
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "eval.json").write_text(json.dumps({"benchmarks": {"world": {"tasks": {"tsc": task}}}}))
    outcomes = run_outcomes(tmp_path)
    found = outcomes("r1", "tsc")
    assert found.keys == ("a", "b") and list(found.model) == [1.0, 0.5]
    assert outcomes("r1", "sblimp") is None and outcomes("r2", "tsc") is None


def _replicates(gamma: float, sd: float, seed: int, n: int = 400) -> dict:
    return {"gamma_replicates": list(np.random.default_rng(seed).normal(gamma, sd, n))}


def test_gamma_contrast_recovers_a_known_ratio_and_difference():
    # Replicates drawn around the paper's sBLIMP exponents: speech 0.021, text 0.066 (ratio 3.14).
    contrast = gamma_contrast(_replicates(0.021, 0.002, 1), _replicates(0.066, 0.004, 2))
    low, high = contrast["ratio_ci95"]
    assert 1 < low < 0.066 / 0.021 < high and contrast["ratio_n"] == 400
    assert contrast["difference_ci95"][0] < 0.045 < contrast["difference_ci95"][1]
    same = gamma_contrast(_replicates(0.021, 0.002, 1), _replicates(0.021, 0.002, 3))
    assert same["ratio_ci95"][0] < 1 < same["ratio_ci95"][1]
    assert "error" in gamma_contrast({"gamma_replicates": [0.02]}, _replicates(0.02, 0.001, 4))


def test_speech_vs_text_and_tokenizers_use_the_replicate_intervals_when_kept():
    report = base_report()
    versus = report["comparison"]["sblimp"]["text_arm"]
    versus["ratio_bounds"] = [0.9, 5.0]  # the ends of the γ intervals alone would not decide
    versus["contrast"] = gamma_contrast(_replicates(0.02, 0.001, 1), _replicates(0.06, 0.005, 2))
    found = findings(report)["speech_vs_text"]
    assert found["holds"] is True and "bootstrap, 400 paired replicates" in found["text"]
    versus["contrast"] = gamma_contrast(_replicates(0.02, 0.004, 1), _replicates(0.021, 0.004, 2))
    assert findings(report)["speech_vs_text"]["holds"] is False
    # Unigram against raw: the interval of the γ difference decides.
    report = base_report()
    report["variants"]["raw"]["downstream"]["sblimp"]["bootstrap"] = _replicates(0.02, 0.001, 5)
    report["variants"]["uni"]["downstream"]["sblimp"] = {**fit(0.026, 0.019, 0.033),
                                                         "bootstrap": _replicates(0.026, 0.0015, 6)}
    tokens = findings(report)["tokenizers"]  # overlapping γ intervals, but the difference lies above 0
    assert tokens["holds"] is False and tokens["numbers"]["rule"] == "interval of the γ difference"
    report["variants"]["uni"]["downstream"]["sblimp"]["bootstrap"] = _replicates(0.0205, 0.0015, 6)
    assert findings(report)["tokenizers"]["holds"] is True
