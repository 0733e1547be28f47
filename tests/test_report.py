"""The study report (slmscale.report) on synthetic sweeps drawn from known laws."""

from __future__ import annotations

import csv
import json
from pathlib import Path
import math

import numpy as np
import pytest

from slmscale.cli import main
from slmscale.files import StageError
from slmscale.report.markdown import fmt
from slmscale.report.report import make_report

COLUMNS = ["run_id", "status", "grids", "variant", "corpus", "tokenizer", "modality", "size", "params",
           "non_embedding", "tokens", "unique_tokens", "epochs", "flops", "flops_with_attention", "loss",
           "loss_bits_per_second", "valid_loss", "wall_seconds", "error"]
METRICS = ("sblimp", "tsc", "ssc")
RAW_LAW = {"E": 0.9, "A": 40.0, "B": 120.0, "alpha": 0.32, "beta": 0.30}
UNIGRAM_LAW = {"E": 1.6, "A": 25.0, "B": 90.0, "alpha": 0.25, "beta": 0.26}
SPEECH_GAMMA, TEXT_GAMMA = 0.02, 0.06
COARSE_GRID = {"alpha": [0.25, 0.75], "beta": [0.25, 0.75], "e": [-1.0, 0.0], "a": [2.0, 6.0], "b": [2.0, 6.0]}
"""32 starts instead of Hoffmann's 4,500, to keep the test fast; the generating law lies inside."""
BOOTSTRAP = 20
ITEMS = 500
SIZES = {"xs": 2e4, "s": 6e4, "m": 2e5, "l": 6e5, "xl": 2e6}


def law(p, n, d):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def run_row(rng, variant, corpus, tokenizer, modality, size, tokens, loss_law, gamma, grid, epochs=1.0,
            tokens_per_second=50.0, boost=0.0, metrics=METRICS):
    n = SIZES[size]
    flops = 6 * n * tokens
    loss = law(loss_law, n, tokens) * math.exp(rng.normal(0, 0.003))
    row = {"run_id": f"{variant}-{size}-{tokens:.0e}-e{epochs:g}", "status": "completed", "grids": grid,
           "variant": variant, "corpus": corpus, "tokenizer": tokenizer, "modality": modality, "size": size,
           "params": int(n), "non_embedding": int(0.9 * n), "tokens": int(tokens),
           "unique_tokens": int(tokens / epochs) if epochs > 1 else "", "epochs": epochs, "flops": f"{flops:.6g}",
           "flops_with_attention": f"{1.1 * flops:.6g}", "loss": f"{loss:.6f}",
           "loss_bits_per_second": f"{loss / math.log(2) * tokens_per_second:.4f}" if modality == "audio" else "",
           "valid_loss": f"{loss * 1.01:.6f}", "wall_seconds": "12.5", "error": ""}
    for metric in metrics:
        value = (0.55 + boost) * (flops / 1e10) ** gamma * math.exp(rng.normal(0, 0.002))
        row[metric], row[f"{metric}_sum"], row[f"kn5_{metric}"] = value, value - 0.01, 0.52 + rng.normal(0, 0.005)
        row[f"{metric}_n"] = ITEMS  # the evaluation's item count, beside each accuracy
    return row


def write_sweep(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for row in rows for k in row} - set(COLUMNS))
    with (path / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS + extra, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def raw_rows(rng):
    rows = [run_row(rng, "raw", "all", "raw", "audio", size, d, RAW_LAW, SPEECH_GAMMA, "main")
            for size in SIZES for d in (3e5, 1e6, 3e6, 1e7)]
    rows.append(run_row(rng, "raw", "all", "raw", "audio", "m", 1e7, RAW_LAW, SPEECH_GAMMA, "epochs", epochs=4.0))
    return rows


def full_rows():
    rng = np.random.default_rng(1)
    rows = raw_rows(rng)
    rows += [run_row(rng, "uni", "all", "unigram", "audio", size, d, UNIGRAM_LAW, 0.012, "main",
                     tokens_per_second=29.0) for size in ("xs", "s", "m", "l") for d in (2e5, 6e5, 2e6)]
    for corpus, boost in (("stories", 0.03), ("sentences", 0.0)):
        rows += [run_row(rng, corpus, corpus, "raw", "audio", size, 1e6, RAW_LAW, SPEECH_GAMMA, "corpus", boost=boost)
                 for size in ("xs", "s", "m", "l")]
    text_law = {"E": 0.5, "A": 20.0, "B": 60.0, "alpha": 0.3, "beta": 0.3}
    rows += [run_row(rng, "text", "all", "chars", "text", size, 1e6, text_law, TEXT_GAMMA, "text",
                     metrics=("sblimp", "tsc")) for size in SIZES]
    rows.append({"run_id": "raw-xl-3e+07-e1", "status": "failed", "grids": "main", "variant": "raw", "corpus": "all",
                 "tokenizer": "raw", "modality": "audio", "size": "xl", "params": 2000000, "tokens": 30000000,
                 "error": "CUDA out of memory at step 12"})
    rows.append({"run_id": "uni-xl-2e+06-e1", "status": "pending", "variant": "uni", "params": 2000000,
                 "tokens": 2000000})
    return rows


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    sweep = write_sweep(root / "sweep", full_rows())
    report = make_report(sweep, root / "out", bootstrap=BOOTSTRAP, seed=0, init_grid=COARSE_GRID)
    return report, root / "out"


def test_every_figure_is_a_png(full):
    report, out = full
    assert {f["figure"] for f in report["figures"]} == {"1", "2", "3", "4", "5", "iso-loss"}
    for figure in report["figures"]:
        assert (out / figure["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure['file']})" in (out / "report.md").read_text()
    assert {f["file"] for f in report["figures"] if f["figure"] == "iso-loss"} == {"isoloss_raw.png",
                                                                                  "isoloss_uni.png"}


def test_fit_recovers_the_generating_law(full):
    report, _ = full
    fit = report["variants"]["raw"]["chinchilla"]
    assert fit["n_points"] == 20  # single-epoch runs only: the 4-epoch run is left out
    assert fit["params"]["alpha"] == pytest.approx(RAW_LAW["alpha"], abs=0.06)
    assert fit["params"]["beta"] == pytest.approx(RAW_LAW["beta"], abs=0.06)
    assert fit["params"]["E"] == pytest.approx(RAW_LAW["E"], abs=0.1)
    assert fit["ci"]["alpha"]["ci95"][0] <= fit["params"]["alpha"] <= fit["ci"]["alpha"]["ci95"][1]
    assert report["checks"]["r2_log"]["pass"] and fit["r2_log"] > 0.99
    assert report["checks"]["extrapolation"]["pass"]
    assert fit["extrapolation"]["n_heldout"] >= 2 and fit["extrapolation"]["max_abs_relative_error"] < 0.03
    assert report["main_variant"] == "raw" and report["text_arm"] == "text"
    assert "skipped" in report["variants"]["text"]["chinchilla"]  # one token budget: no law fitted


def test_report_mentions_every_fitted_number(full):
    report, out = full
    text = (out / "report.md").read_text()
    for name in ("raw", "uni"):
        fit = report["variants"][name]["chinchilla"]
        for key in ("E", "A", "B", "alpha", "beta"):
            assert fmt(fit["params"][key]) in text
            assert fmt(fit["ci"][key]["ci95"][0]) in text and fmt(fit["ci"][key]["ci95"][1]) in text
        assert fmt(fit["r2_log"]) in text and fmt(fit["r2"]) in text
        assert fmt(fit["compute_optimal"]["a"]) in text
    for numbers in report["variants"].values():
        for fit in numbers["downstream"].values():
            assert fmt(fit["gamma"]) in text
    assert "PASS: R² on log loss" in text and "PASS: largest-compute runs" in text
    # No private absolute path: the sweep is named relative to the report (the study dir can move).
    assert str(out.parent) not in text and report["sweep"].endswith("results.csv")
    assert not Path(report["sweep"]).is_absolute() and (out / report["sweep"]).is_file()
    assert json.loads((out / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))["seed"] == 0


def test_text_scales_faster_than_speech(full):
    report, _ = full
    speech = report["variants"]["raw"]["downstream"]["sblimp"]["gamma"]
    text = report["variants"]["text"]["downstream"]["sblimp"]["gamma"]
    assert speech == pytest.approx(SPEECH_GAMMA, abs=0.005) and text == pytest.approx(TEXT_GAMMA, abs=0.01)
    comparison = report["comparison"]["sblimp"]
    assert comparison["text_arm"]["ratio"] == pytest.approx(text / speech)
    assert comparison["text_arm"]["ratio"] > 1 and "pythia" in comparison
    # The binomial noise of each score comes from the sweep's own item counts, which are not metrics.
    assert report["variants"]["raw"]["downstream"]["sblimp"]["noise"]["source"] == "column sblimp_n"
    assert not any(m.endswith("_n") for m in report["metrics"])


def test_failed_runs_are_listed(full):
    report, out = full
    assert [f["run_id"] for f in report["failed"]] == ["raw-xl-3e+07-e1"]
    assert "CUDA out of memory at step 12" in (out / "report.md").read_text()
    assert report["status_counts"] == {"completed": 46, "failed": 1, "pending": 1}


def test_single_variant_sweep_skips_the_comparisons(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", raw_rows(np.random.default_rng(2)))
    report = make_report(sweep, tmp_path / "out", bootstrap=0, init_grid=COARSE_GRID)
    assert {f["figure"] for f in report["figures"]} == {"1", "2", "4", "iso-loss"}
    skipped = {s["what"]: s["why"] for s in report["skipped"]}
    assert "different corpus labels" in skipped["Figure 3"]
    assert "tokenizer other than 'raw'" in skipped["Figure 5"]
    assert "no text-arm runs" in skipped["Figure 2 text arm"]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## Skipped" in text and "- Figure 3:" in text and "None." in text  # no failed runs
    assert "text_arm" not in report["comparison"]["sblimp"] and "pythia" in report["comparison"]["sblimp"]
    assert report["checks"]["r2_log"]["pass"]


def test_cli_on_a_sweep_without_a_law(tmp_path, capsys):
    """Corpus-comparison runs only (one budget per size): Figure 3, no fit, the checks say why."""
    rng = np.random.default_rng(4)
    rows = [run_row(rng, corpus, corpus, "raw", "audio", size, 1e6, RAW_LAW, SPEECH_GAMMA, "corpus", boost=boost)
            for corpus, boost in (("stories", 0.03), ("sentences", 0.0)) for size in ("xs", "s", "m", "l")]
    sweep = write_sweep(tmp_path / "sweep", rows)
    # Through the command line: the flags reach the report through ReportConfig.
    assert main(["report", str(sweep), "--out", str(tmp_path / "out"), "--bootstrap", "20", "seed=0"]) == 0
    printed = capsys.readouterr().out
    assert "R² on log loss: FAIL" in printed and "3 figures" in printed
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [f["figure"] for f in report["figures"]] == ["2", "3", "4"]
    assert report["main_variant"] == "stories"  # equal run counts: the name breaks the tie
    assert "token budgets" in report["checks"]["r2_log"]["why"]
    assert "FAIL: R² on log loss" in (tmp_path / "out" / "report.md").read_text()


def test_bad_sweeps_are_refused(tmp_path):
    with pytest.raises(StageError, match="no results table"):
        make_report(tmp_path / "nowhere", tmp_path / "out")
    write_sweep(tmp_path / "a", [{"run_id": "r", "status": "failed", "variant": "v", "error": "boom"}])
    with pytest.raises(StageError, match="no completed runs"):
        make_report(tmp_path / "a", tmp_path / "out")
    rows = raw_rows(np.random.default_rng(3))
    rows[0]["loss"] = ""
    write_sweep(tmp_path / "b", rows)
    with pytest.raises(StageError, match=r"results.csv:2: completed run .* loss=''"):
        make_report(tmp_path / "b", tmp_path / "out")
    # A run that records neither U nor epochs is not taken for a single pass over its data.
    rows = raw_rows(np.random.default_rng(3))
    rows[1]["unique_tokens"] = rows[1]["epochs"] = ""
    write_sweep(tmp_path / "c", rows)
    with pytest.raises(StageError, match=r"results.csv:3: completed run .* neither unique_tokens nor epochs"):
        make_report(tmp_path / "c", tmp_path / "out")
