"""One training precision per sweep (issue 15): chosen once for the whole grid, recorded in
SWEEP/precision.json, passed to every run, kept on resume, in results.csv per run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

import slmscale.lm.plan as plan_module
from slmscale.config import ConfigError
from slmscale.sweep.precision import PRECISION_FILE, choose, sweep_precision
from slmscale.sweep.results import write_results
from slmscale.sweep.sweep import pending, prepare
from slmscale.sweep.worker import load_sweep, run_one, train_config
from slmscale.units.fixtures import make_units_dir

TRAIN = ["context=32", "tokens_per_update=256", "eval_every=0", "lr=0.01", "checkpoint_every=100", "device=cpu"]


def _config(tmp_path: Path, sizes: list[str], train: list[str] = TRAIN, name: str = "sweep.yaml") -> Path:
    units = tmp_path / "units"
    if not units.exists():
        make_units_dir(units)
    data = {"variants": [{"name": "raw", "units": "units", "corpus": "all", "tokenizer": "raw"}],
            "grids": [{"name": "main", "variants": ["raw"], "sizes": sizes, "tokens": [512]}], "train": train}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _native_bf16(monkeypatch, native: bool) -> None:
    """Stand in for the CPU check: a CPU with (or without) AVX512-BF16/AMX."""
    monkeypatch.setattr(plan_module, "cpu_has_native_bf16", lambda: native)


def _run_precision(sweep: Path, run_id: str) -> str:
    return json.loads((sweep / "runs" / run_id / "run.json").read_text())["precision"]


def test_runs_below_and_above_width_128_train_in_one_precision(tmp_path, monkeypatch):
    # A CPU with native bf16: `auto` alone trains tiny-L4 (width 128) in bf16 and tiny-L2 (64) in fp32.
    _native_bf16(monkeypatch, True)
    sweep = tmp_path / "sweep"
    prepare(_config(tmp_path, ["tiny-L2", "tiny-L4"]), sweep)
    for run_id in ("raw-tiny-L2-d512", "raw-tiny-L4-d512"):
        assert run_one(sweep, run_id, threads=1) == "done"
    precisions = {_run_precision(sweep, r) for r in ("raw-tiny-L2-d512", "raw-tiny-L4-d512")}
    assert precisions == {"fp32"}  # bf16 does not pay at width 64 here, so no run takes it
    choice = json.loads((sweep / PRECISION_FILE).read_text())
    assert choice["precision"] == "fp32" and choice["requested"] == "auto" and choice["widths"] == [64, 128]
    _, rows = write_results(sweep)
    with (sweep / "results.csv").open() as handle:
        assert "precision" in next(csv.reader(handle))
    assert {row["precision"] for row in rows} == {"fp32"}


def test_a_grid_wide_enough_for_bf16_passes_bf16_to_every_run(tmp_path, monkeypatch):
    _native_bf16(monkeypatch, True)
    sweep = tmp_path / "sweep"
    prepare(_config(tmp_path, ["tiny-L4", "tiny-L5"]), sweep)
    cfg, specs = load_sweep(sweep)
    precision = sweep_precision(sweep, cfg, list(specs.values()))
    assert precision == "bf16"
    assert {train_config(spec, cfg, precision).precision for spec in specs.values()} == {"bf16"}


def test_the_recorded_choice_survives_another_machine_and_a_conflicting_override_is_an_error(tmp_path, monkeypatch):
    _native_bf16(monkeypatch, True)
    sweep = tmp_path / "sweep"
    prepare(_config(tmp_path, ["tiny-L4", "tiny-L5"]), sweep)
    cfg, specs = load_sweep(sweep)
    assert sweep_precision(sweep, cfg, list(specs.values())) == "bf16"
    _native_bf16(monkeypatch, False)  # resumed on a CPU without native bf16: the grid keeps bf16
    prepare(_config(tmp_path, ["tiny-L4", "tiny-L5"]), sweep)
    cfg, specs = load_sweep(sweep)
    assert sweep_precision(sweep, cfg, list(specs.values())) == "bf16"
    conflicting = _config(tmp_path, ["tiny-L4", "tiny-L5"], TRAIN + ["precision=fp32"], name="fp32.yaml")
    with pytest.raises(ConfigError, match=r"^train: precision=fp32 conflicts with precision bf16") as err:
        prepare(conflicting, sweep)
    assert "\n" not in str(err.value)
    agreeing = _config(tmp_path, ["tiny-L4", "tiny-L5"], TRAIN + ["precision=bf16"], name="bf16.yaml")
    prepare(agreeing, sweep)  # an explicit precision equal to the recorded one is fine


def _fake_completed(sweep: Path, run_id: str, precision: str) -> None:
    run_dir = sweep / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps({"status": "completed", "precision": precision}))


def test_a_sweep_from_before_the_record_keeps_the_precision_its_runs_share(tmp_path, monkeypatch):
    _native_bf16(monkeypatch, False)  # this machine alone would choose fp32
    sweep = tmp_path / "sweep"
    prepare(_config(tmp_path, ["tiny-L4", "tiny-L5"]), sweep)
    for run_id in ("raw-tiny-L4-d512", "raw-tiny-L5-d512"):
        _fake_completed(sweep, run_id, "bf16")
    cfg, specs = load_sweep(sweep)
    choice = choose(sweep, cfg, list(specs.values()))
    assert choice["precision"] == "bf16" and "already completed" in choice["reason"]


def test_a_run_trained_in_another_precision_is_moved_aside_and_retrained(tmp_path, monkeypatch):
    _native_bf16(monkeypatch, False)
    sweep = tmp_path / "sweep"
    prepare(_config(tmp_path, ["tiny-L1"]), sweep)
    assert run_one(sweep, "raw-tiny-L1-d512", threads=1) == "done"
    # As if this run had trained in bf16 before the sweep recorded its fp32.
    record_path = sweep / "runs" / "raw-tiny-L1-d512" / "run.json"
    record_path.write_text(json.dumps({**json.loads(record_path.read_text()), "precision": "bf16"}))
    assert [spec.run_id for spec in pending(sweep)] == ["raw-tiny-L1-d512"]
    assert run_one(sweep, "raw-tiny-L1-d512", threads=1) == "done"
    assert _run_precision(sweep, "raw-tiny-L1-d512") == "fp32"
    kept = sweep / "superseded" / "raw-tiny-L1-d512-bf16"
    assert json.loads((kept / "run.json").read_text())["precision"] == "bf16"
    assert pending(sweep) == []


def test_a_run_trained_with_other_train_settings_is_moved_aside_and_retrained(tmp_path, monkeypatch):
    _native_bf16(monkeypatch, False)
    sweep = tmp_path / "sweep"
    prepare(_config(tmp_path, ["tiny-L1"]), sweep)
    assert run_one(sweep, "raw-tiny-L1-d512", threads=1) == "done"
    # The same settings on another thread count: the run stands.
    assert run_one(sweep, "raw-tiny-L1-d512", threads=2) == "done" and pending(sweep) == []
    assert not (sweep / "superseded").exists()
    # An edited train override (as a study's `unigram_train` edit rewrites sweep.yaml): trained again.
    changed = [item if not item.startswith("lr=") else "lr=0.02" for item in TRAIN]
    prepare(_config(tmp_path, ["tiny-L1"], changed, name="changed.yaml"), sweep)
    assert [spec.run_id for spec in pending(sweep)] == ["raw-tiny-L1-d512"]
    assert run_one(sweep, "raw-tiny-L1-d512", threads=1) == "done"
    assert json.loads((sweep / "runs" / "raw-tiny-L1-d512" / "run.json").read_text())["config"]["lr"] == 0.02
    kept = sweep / "superseded" / "raw-tiny-L1-d512-config"
    assert json.loads((kept / "run.json").read_text())["config"]["lr"] == 0.01
    assert pending(sweep) == []
