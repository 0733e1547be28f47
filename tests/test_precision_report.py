"""The report states the precision the runs trained in and fits no law across precisions (issue 15)."""

from __future__ import annotations

import json

import numpy as np

from slmscale.report.report import make_report
from test_report import COARSE_GRID, raw_rows, write_sweep


def _rows(precision_of_xl: str) -> list[dict]:
    rows = raw_rows(np.random.default_rng(5))
    for row in rows:
        row["precision"] = precision_of_xl if row["size"] == "xl" else "fp32"
    return rows


def test_a_mixed_precision_sweep_is_flagged_and_not_fitted(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", _rows("bf16"))
    report = make_report(sweep, tmp_path / "out", bootstrap=0, init_grid=COARSE_GRID)
    info = report["precision"]
    assert info["mixed"] and info["runs"] == {"bf16": 4, "fp32": 17} and info["mixed_variants"] == ["raw"]
    raw = report["variants"]["raw"]
    for law in ("chinchilla", "data_constrained", "loss_envelope"):
        assert "mixed precisions (bf16: 4, fp32: 17 runs)" in raw[law]["skipped"]
    assert not report["checks"]["r2_log"]["pass"] and "mixed precisions" in report["checks"]["r2_log"]["why"]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "**Warning: runs trained in mixed precisions (bf16: 4, fp32: 17 runs); no loss law fitted for raw.**" in text
    assert "| run | variant | size | precision |" in text


def test_one_precision_is_stated_with_the_sweeps_choice(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", _rows("fp32"))
    (sweep / "precision.json").write_text(json.dumps({"precision": "fp32", "reason": "this CPU has no native bf16"}))
    report = make_report(sweep, tmp_path / "out", bootstrap=0, init_grid=COARSE_GRID)
    info = report["precision"]
    assert info["single"] == "fp32" and not info["mixed"] and info["warnings"] == []
    assert info["sweep"]["precision"] == "fp32" and "params" in report["variants"]["raw"]["chinchilla"]
    text = (tmp_path / "out" / "report.md").read_text()
    assert "Precision: every run trained in fp32 (chosen once for the sweep: this CPU has no native bf16)." in text


def test_runs_off_the_sweeps_choice_are_a_warning(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", _rows("fp32"))
    (sweep / "precision.json").write_text(json.dumps({"precision": "bf16", "reason": "x"}))
    report = make_report(sweep, tmp_path / "out", bootstrap=0, init_grid=COARSE_GRID)
    assert any("21 run(s) trained in another precision than the sweep's bf16" in w
               for w in report["precision"]["warnings"])
