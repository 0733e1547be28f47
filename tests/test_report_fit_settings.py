"""The report's fits: every law fitted with the study's settings, every bootstrap interval with the
replicates it rests on, the data-constrained law's R_N*, R_D* where a variant repeated data, checks
named by what they check, and skip reasons listed under the tables (not in their cells)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from slmscale.report import analysis
from slmscale.report.markdown import fmt
from slmscale.report.report import make_report
from slmscale.scaling import data_constrained
from slmscale.scaling.data_constrained import data_constrained_loss, fit_data_constrained_after_base
from slmscale.scaling.fit import replicate_counts
from slmscale.scaling.table import ResultsTable
from test_report import COARSE_GRID, RAW_LAW, SIZES, SPEECH_GAMMA, run_row, write_sweep

DELTA = 0.03
BOOTSTRAP = 8
TRUE = {**RAW_LAW, "R_N_star": 30.0, "R_D_star": 15.0}
"""The data-constrained law the raw runs are drawn from (single-epoch runs too: U = D)."""
FAKE_CONVERGED = 6


def repeated_rows(rng) -> list[dict]:
    """The main N × D grid and epoch runs (2, 4, 10 passes over 1M unique tokens), every loss from TRUE."""
    rows = []
    grid = [(size, d, 1.0, "main") for size in SIZES for d in (3e5, 1e6, 3e6, 1e7)]
    grid += [(size, 1e6 * epochs, epochs, "epochs") for size in ("s", "m", "l", "xl") for epochs in (2.0, 4.0, 10.0)]
    for size, tokens, epochs, name in grid:
        row = run_row(rng, "raw", "all", "raw", "audio", size, tokens, RAW_LAW, SPEECH_GAMMA, name, epochs=epochs)
        loss = data_constrained_loss(TRUE, SIZES[size], tokens, tokens / epochs) * math.exp(rng.normal(0, 0.003))
        row["loss"] = f"{float(loss):.6f}"
        rows.append(row)
    # Two runs of a variant: too few for any exponent, so its cells say "–" and the reason goes below.
    rows += [run_row(rng, "tiny", "all", "raw", "audio", size, 1e6, RAW_LAW, SPEECH_GAMMA, "tiny") for size in "sm"]
    return rows


def _spy(calls: list, name: str, function):
    def wrapper(*args, **kwargs):
        calls.append((name, kwargs))
        return function(*args, **kwargs)
    return wrapper


def fake_bootstrap(N, D, U, loss, fit, resamples: int, seed: int, delta: float) -> dict:
    """Stands in for the data-constrained bootstrap (its own module tests it): the report's wiring only."""
    summary = {k: {"estimate": fit.params[k], "se": 0.1, "ci95": [0.9 * fit.params[k], 1.1 * fit.params[k]]}
               for k in ("R_D_star", "R_N_star")}
    return {**summary, "n_converged": FAKE_CONVERGED, "resamples": resamples, "seed": seed}


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeated")
    sweep = write_sweep(root / "sweep", repeated_rows(np.random.default_rng(5)))
    calls: list = []
    with pytest.MonkeyPatch.context() as patch:
        for name in ("fit_chinchilla", "bootstrap_chinchilla", "extrapolation_check", "fit_data_constrained"):
            patch.setattr(analysis, name, _spy(calls, name, getattr(analysis, name)))
        patch.setattr(data_constrained, "bootstrap_data_constrained",
                      _spy(calls, "bootstrap_data_constrained", fake_bootstrap))
        report = make_report(sweep, root / "out", bootstrap=BOOTSTRAP, seed=0, init_grid=COARSE_GRID, delta=DELTA)
    return report, (root / "out" / "report.md").read_text(), calls, sweep


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_every_fit_uses_the_fit_settings(repeated):
    report, _, calls, _ = repeated
    assert {name for name, _ in calls} == {"fit_chinchilla", "bootstrap_chinchilla", "extrapolation_check",
                                           "fit_data_constrained", "bootstrap_data_constrained"}
    assert all(kwargs["delta"] == DELTA for _, kwargs in calls), calls
    assert report["variants"]["raw"]["chinchilla"]["delta"] == DELTA
    assert report["variants"]["raw"]["data_constrained"]["delta"] == DELTA
    assert report["fit_settings"] == {"delta": DELTA, "tie_alpha_beta": False, "fixed": {}}


def test_data_constrained_law_beside_table_5(repeated):
    report, text, _, sweep = repeated
    fit = report["variants"]["raw"]["data_constrained"]
    assert fit["n_repeated"] == 12 and fit["not_identified"] == {} and fit["converged"]
    # The same two-stage fit as the library's: base law on the single-epoch runs, then R_D*, R_N*.
    from slmscale.report.runs import read_sweep
    reference = fit_data_constrained_after_base(read_sweep(sweep).variants["raw"].table, delta=DELTA)
    for name in ("R_N_star", "R_D_star"):
        assert fit["params"][name] == pytest.approx(reference.params[name], rel=1e-3)
        assert 1 < fit["params"][name] < 1000  # located, not on the search bound
    section = _section(text, "Repeated data (like Table 5's R_N*, R_D*)")
    ci = fit["ci"]["R_N_star"]["ci95"]
    assert (f"| raw | {fmt(fit['params']['R_N_star'])} [{fmt(ci[0])}, {fmt(ci[1])}] "
            f"({FAKE_CONVERGED}/{BOOTSTRAP}) |") in section
    assert "| paper: Speech | 31 | 25 |" in section and "| paper: Text (Muennighoff et al.) | 5.31 | 15.4 |" in section
    assert "| paper: Speech, unigram | – | – |" in section
    assert "- tiny: no multi-epoch runs" in section
    figure = next(f for f in report["figures"] if f["figure"] == "repeated data")
    assert figure["file"] == "repeated_raw.png"
    assert (sweep.parent / "out" / figure["file"]).read_bytes()[:4] == b"\x89PNG"


def test_every_interval_says_how_many_replicates_it_rests_on(repeated):
    report, text, _, sweep = repeated
    raw = report["variants"]["raw"]
    counts = f"({raw['chinchilla']['ci']['n_converged']}/{BOOTSTRAP})"
    laws = _section(text, "Fitted laws")
    # Every identified constant has its interval and counts; the others say "not identified".
    known = {k: v["identified"] for k, v in raw["chinchilla"]["identified"].items()}
    law, allocation = ("E", "A", "B", "alpha", "beta"), ("a", "b", "G")
    assert laws.count(counts) == sum(known[k] for k in law) and f"{BOOTSTRAP} resamples drawn" in laws
    assert laws.count("| not identified") == len(law) - sum(known[k] for k in law)
    assert _section(text, "Compute-optimal allocation").count(counts) == sum(known[k] for k in allocation)
    envelope = raw["loss_envelope"]["bootstrap"]
    assert envelope["n_valid"] + envelope["dropped"] == BOOTSTRAP
    exponents = _section(text, "Scaling exponents")
    assert f"| raw | loss (min per FLOP) | {fmt(raw['loss_envelope']['gamma'])} [" in exponents
    assert f"] ({envelope['n_valid']}/{BOOTSTRAP}) |" in exponents
    for metric, fit in raw["downstream"].items():
        used, drawn = replicate_counts(fit["bootstrap"])
        assert drawn == BOOTSTRAP and f"| raw | {metric} | {fmt(fit['gamma'])} [" in exponents
        assert re.search(rf"\| raw \| {metric} \| [^|]* \({used}/{BOOTSTRAP}\) \|", exponents)
    written = json.loads((sweep.parent / "out" / "report.json").read_text())  # the counts are kept
    assert written["variants"]["raw"]["chinchilla"]["ci"]["resamples"] == BOOTSTRAP


def test_downstream_counts_are_read_from_whatever_the_bootstrap_records():
    assert replicate_counts({"resamples": 200, "failed": 17}) == (183, 200)
    assert replicate_counts({"resamples": 200, "failed": 17, "n_valid": 180}) == (180, 200)
    assert replicate_counts({"resamples": 200, "n_converged": 150}) == (150, 200)
    assert replicate_counts(None) is None and replicate_counts({"gamma_ci95": None}) is None


def test_loss_envelope_counts_the_resamples_it_cannot_fit():
    # Four runs: many resamples keep fewer than three distinct envelope points.
    flops = np.array([1e12, 1e13, 1e14, 1e15])
    table = ResultsTable(params=flops / 6e6, tokens=np.full(4, 1e6), flops=flops, loss=np.array([4.0, 3.0, 2.5, 2.2]),
                         run_ids=list("abcd"))
    out = analysis.loss_envelope(table, bootstrap=50, seed=0)
    assert out["bootstrap"]["dropped"] > 0
    assert out["bootstrap"]["n_valid"] + out["bootstrap"]["dropped"] == 50


def test_checks_are_named_by_what_they_check(repeated):
    report, text, _, _ = repeated
    assert "acceptance" not in report and set(report["checks"]) == {"variant", "r2_log", "extrapolation"}
    assert "## Checks of the main law" in text and "PASS: R² on log loss" in text
    assert not re.search(r"(?i)\bissue\b|acceptance", text)


def test_skip_reasons_go_under_the_exponents_table(repeated):
    report, text, _, sweep = repeated
    exponents = _section(text, "Scaling exponents")
    assert str(sweep) not in exponents and "results.csv" not in exponents
    assert "| tiny | sblimp | – | – | – | – | – |" in exponents
    reason = report["variants"]["tiny"]["downstream"]["sblimp"]["skipped"]
    assert f"- tiny, sblimp: {reason}" in exponents and not reason.startswith("/")


def test_the_report_says_when_one_budget_is_all_there_is(tmp_path):
    rng = np.random.default_rng(6)
    rows = [run_row(rng, "raw", "all", "raw", "audio", size, 1e6, RAW_LAW, SPEECH_GAMMA, "main") for size in SIZES]
    sweep = write_sweep(tmp_path / "sweep", rows)
    report = make_report(sweep, tmp_path / "a", bootstrap=0, init_grid=COARSE_GRID)
    skipped = report["variants"]["raw"]["chinchilla"]["skipped"]
    assert "1 token budget (a fitted B and β needs ≥2 token budgets)" in skipped
    fixed = {"B": RAW_LAW["B"], "beta": RAW_LAW["beta"]}
    report = make_report(sweep, tmp_path / "b", bootstrap=0, init_grid=COARSE_GRID, fixed=fixed)
    warning = "one token budget only: B and β are the fixed values, the runs do not test them"
    assert report["variants"]["raw"]["chinchilla"]["warnings"] == [warning]
    assert f"- raw: {warning}" in _section((tmp_path / "b" / "report.md").read_text(), "Fitted laws")
