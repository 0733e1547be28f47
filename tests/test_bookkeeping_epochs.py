"""Repeated data is bookkept as repeated: results.csv always carries the U a run drew from and
its true epochs, and `sweep plan` warns when D exceeds the train split (issue 14)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from slmscale.report.runs import read_sweep
from slmscale.sweep.grid import RunSpec
from slmscale.sweep.results import run_row, write_results
from slmscale.sweep.sweep import plan_table, prepare
from slmscale.sweep.worker import run_one
from slmscale.units.fixtures import make_units_dir

TRAIN = ["context=32", "tokens_per_update=256", "eval_every=0", "lr=0.01", "checkpoint_every=100"]
SMALL = {"train": 30, "valid": 5, "test": 5}
"""About a thousand train tokens: a D of 4096 repeats them."""


def _config(tmp_path: Path, tokens: list[int], train: list[str] = TRAIN) -> tuple[Path, int]:
    units = tmp_path / "units"
    if not units.exists():
        make_units_dir(units, utterances=SMALL)
    data = {"variants": [{"name": "raw", "units": "units", "corpus": "all", "tokenizer": "raw"}],
            "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": tokens}],
            "train": train}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, json.loads((units / "meta.json").read_text())["splits"]["train"]["tokens"]


def _rows(sweep: Path) -> dict[str, dict[str, str]]:
    with (sweep / "results.csv").open() as handle:
        return {row["run_id"]: row for row in csv.DictReader(handle)}


def test_results_carry_the_true_unique_tokens_and_epochs(tmp_path):
    path, split = _config(tmp_path, [512, 4096])
    assert 512 < split < 4096
    sweep = tmp_path / "sweep"
    prepare(path, sweep)
    for run_id in ("raw-tiny-L1-d512", "raw-tiny-L1-d4096"):
        assert run_one(sweep, run_id, threads=1) == "done"
    write_results(sweep)
    rows = _rows(sweep)
    repeated, part = rows["raw-tiny-L1-d4096"], rows["raw-tiny-L1-d512"]
    assert int(repeated["unique_tokens"]) == split and float(repeated["epochs"]) == pytest.approx(4096 / split, 1e-5)
    assert float(repeated["epochs"]) > 1
    # U is the pool the run drew from (the whole split), so a short run did part of one epoch.
    assert int(part["unique_tokens"]) == split and float(part["epochs"]) == pytest.approx(512 / split, 1e-5)
    record = json.loads((sweep / "runs" / "raw-tiny-L1-d4096" / "run.json").read_text())
    assert int(repeated["unique_tokens"]) == record["unique_tokens"]
    # The single-epoch selection of the report keeps the short run only.
    variant = read_sweep(sweep).variants["raw"]
    assert variant.single_epoch().run_ids == ["raw-tiny-L1-d512"]


def test_results_of_pending_runs_carry_the_planned_unique_tokens(tmp_path):
    path, split = _config(tmp_path, [4096])
    sweep = tmp_path / "sweep"
    prepare(path, sweep)
    write_results(sweep)
    planned = _rows(sweep)["raw-tiny-L1-d4096"]  # before training: the plan's numbers, not blank
    assert planned["status"] == "pending" and planned["loss"] == ""
    assert int(planned["unique_tokens"]) == split and float(planned["epochs"]) == pytest.approx(4096 / split, 1e-5)


def test_results_attention_flops_are_those_of_the_context_trained(tmp_path):
    path, _ = _config(tmp_path, [512])
    sweep = tmp_path / "sweep"
    prepare(path, sweep)
    assert run_one(sweep, "raw-tiny-L1-d512", threads=1) == "done"
    _, rows = write_results(sweep)
    record = json.loads((sweep / "runs" / "raw-tiny-L1-d512" / "run.json").read_text())
    # The spec assumes the preset's context (256); the run trained at context=32.
    assert float(rows[0]["flops_with_attention"]) == pytest.approx(record["flops_with_attention"], rel=1e-5)


def test_an_old_record_without_unique_tokens_reads_its_train_split(tmp_path):
    spec = RunSpec("raw-tiny-L1-d4096", "raw", "tiny-L1", 4096, None, 100, 6e5, 7e5, str(tmp_path), "audio")
    run_dir = tmp_path / "runs" / spec.run_id
    run_dir.mkdir(parents=True)
    record = {"status": "completed", "params": {"non_embedding": 90}, "test_loss": 2.0, "config": {},
              "units": {"splits": {"train": {"tokens": 1024}}}}
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "sweep_done.json").write_text(json.dumps({"stamp": "s"}))
    row = run_row(tmp_path, spec, "s")
    assert (row["unique_tokens"], row["epochs"]) == (1024, "4")


def test_plan_warns_when_the_data_repeats_and_says_when_epochs_are_unknown(tmp_path):
    path, split = _config(tmp_path, [512, 4096])
    lines, totals = plan_table(path, measure=False)
    text = "\n".join(lines)
    row = next(line for line in lines if line.startswith("raw-tiny-L1-d4096 "))
    assert f"{4096 / split:.3g}!" in row.split()
    short = next(line for line in lines if line.startswith("raw-tiny-L1-d512 "))
    assert f"{512 / split:.3g}" in short.split()
    assert any("raw-tiny-L1-d4096" in w and "repeats" in w for w in totals["warnings"])
    assert "warning: raw-tiny-L1-d4096" in text and "FLOPs in all" in lines[-1]
    assert not any("raw-tiny-L1-d512" in w for w in totals["warnings"])
    # A train split the units dir does not have (yet): unknown, never 1.0.
    path, _ = _config(tmp_path, [4096], train=[*TRAIN, "train_split=later"])
    lines, totals = plan_table(path, measure=False)
    row = next(line for line in lines if line.startswith("raw-tiny-L1-d4096 "))
    assert "?" in row.split() and "1.0" not in row.split()
    assert any("epochs unknown" in w for w in totals["warnings"])


def test_a_results_table_with_blank_unique_tokens_takes_them_from_its_epochs(tmp_path):
    from slmscale.scaling.table import read_table
    path = tmp_path / "results.csv"
    path.write_text("params,tokens,loss,unique_tokens,epochs\n1000,8000,2.0,,4\n1000,4000,2.1,,\n1000,2000,2.2,2000,1\n")
    table = read_table(path)
    assert table.unique_tokens.tolist() == [2000.0, 4000.0, 2000.0]
    assert table.epochs.tolist() == [4.0, 1.0, 1.0]
