"""run.json has one owner (lm/record.py's RunRecord, written by the trainer alone): it round-trips,
reads the records today's and older code left (no `version`, evaluation's copied `downstream`,
failed ones), and a sweep's results.csv joins it with eval.json exactly as it read run.json before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from slmscale.files import StageError
from slmscale.lm.record import RECORD_VERSION, RunRecord
from slmscale.sweep.results import write_results
from slmscale.sweep.sweep import prepare
from slmscale.sweep.worker import DONE_FILE, run_one
from slmscale.units.fixtures import make_units_dir

RUN_ID = "raw-tiny-L1-d512"
TRAIN = ["context=32", "tokens_per_update=256", "eval_every=0", "lr=0.01", "checkpoint_every=100"]

LEGACY = {
    "status": "completed", "run_id": "r", "size": "tiny-L1", "shape": {"width": 64}, "params": {"non_embedding": 90},
    "tokens": 512, "unique_tokens": 1000, "epochs": 0.512, "flops": 1e6, "flops_with_attention": 1.1e6,
    "updates": 2, "warmup_updates": 0, "tokens_per_update": 256, "micro_batch_size": 8, "world_size": 1, "lr": 0.01,
    "final_lr": 0.001, "memory_gb_estimate": 0.01, "test_loss": 2.5, "test_bits_per_second": None,
    "valid_loss": 2.6, "wall_seconds": 1.5, "test_corpora": [{"corpus": None}], "valid_corpora": [],
    "precision": "fp32", "device": "cpu", "units": {"path": "/u"}, "fingerprint": "0123456789abcdef",
    "git_revision": "abc", "versions": {"torch": "2"}, "config": {"size": "tiny-L1"}, "started": "t0",
    "test_tokens": 100, "tokens_per_second": 340.0, "finished": "t1",
    "downstream": {"sblimp": 0.6, "sblimp_n": 12.5}}
"""A completed run.json as the trainer and evaluation wrote it before RunRecord."""


def test_a_record_round_trips_through_json_and_its_file(tmp_path):
    record = RunRecord.from_json({k: v for k, v in LEGACY.items() if k != "downstream"})
    record = dataclasses.replace(record, version=RECORD_VERSION, error=None)
    assert RunRecord.from_json(record.to_json()) == record
    record.write(tmp_path / "run.json")
    assert RunRecord.read(tmp_path / "run.json") == record
    assert json.loads((tmp_path / "run.json").read_text())["version"] == RECORD_VERSION


def test_a_legacy_record_reads_as_version_0_and_writes_back_unchanged(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps(LEGACY))
    record = RunRecord.read(tmp_path / "run.json")
    assert record.version == 0 and record.status == "completed" and record.test_loss == 2.5
    assert record.params == {"non_embedding": 90} and record.fingerprint == "0123456789abcdef"
    assert record.copied_metrics == LEGACY["downstream"] and record.extra == {"downstream": LEGACY["downstream"]}
    assert record.to_json() == {"version": 0, **LEGACY}


def test_failed_interrupted_and_running_records():
    failed = RunRecord.from_json({"status": "failed", "error": "TrainingDiverged: nan", "wall_seconds": 0.2})
    assert (failed.status, failed.error, failed.test_loss) == ("failed", "TrainingDiverged: nan", None)
    assert RunRecord.from_json({"status": "interrupted", "error": "stopped"}).to_json()["error"] == "stopped"
    # A running record claims no end: the late fields stay out, the losses are there as null.
    running = RunRecord(status="running").to_json()
    assert not {"error", "finished", "test_tokens", "tokens_per_second"} & set(running)
    assert running["test_loss"] is None and running["version"] == RECORD_VERSION


def test_reading_refuses_malformed_records_and_peek_tolerates_them(tmp_path):
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(StageError, match="not a run record"):
        RunRecord.read(tmp_path / "run.json")
    assert RunRecord.peek(tmp_path / "run.json") == RunRecord(version=0)
    assert RunRecord.peek(tmp_path / "absent.json").status is None


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A one-run sweep trained to the end (no benchmarks: its scores are written by the tests)."""
    root = tmp_path_factory.mktemp("record_sweep")
    make_units_dir(root / "units", utterances={"train": 30, "valid": 5, "test": 5})
    data = {"variants": [{"name": "raw", "units": "units", "corpus": "all", "tokenizer": "raw"}],
            "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [512]}],
            "train": TRAIN}
    (root / "sweep.yaml").write_text(yaml.safe_dump(data))
    prepare(root / "sweep.yaml", root / "sweep")
    assert run_one(root / "sweep", RUN_ID, threads=1) == "done"
    return root / "sweep"


def _results(sweep: Path) -> str:
    path, _ = write_results(sweep)
    return path.read_text()


def test_results_csv_joins_eval_json_and_reads_old_run_dirs_the_same(sweep):
    run_dir = sweep / "runs" / RUN_ID
    trained = json.loads((run_dir / "run.json").read_text())
    assert trained["version"] == RECORD_VERSION and "downstream" not in trained
    metrics = {"sblimp": 0.625, "sblimp_n": 12.345, "swuggy": 0.5, "kn5_sblimp": 0.55}
    (run_dir / "eval.json").write_text(json.dumps({"run_fingerprint": trained["fingerprint"], "metrics": metrics}))
    try:
        joined = _results(sweep)
        header, row = joined.splitlines()
        cells = dict(zip(header.split(","), row.split(",")))
        assert {name: cells[name] for name in metrics} == {name: str(value) for name, value in metrics.items()}
        assert header.split(",")[-4:] == sorted(metrics)
        # The old kind: evaluation also copied the metrics into run.json (no `version`).
        old = {k: v for k, v in trained.items() if k != "version"}
        (run_dir / "run.json").write_text(json.dumps({**old, "downstream": metrics}, indent=2) + "\n")
        assert _results(sweep) == joined
        (run_dir / "eval.json").unlink()  # its copy alone still gives the columns
        assert _results(sweep) == joined
        # The old record is still this run: not retrained (nor refused) once the sweep marker goes.
        stamp = (run_dir / "run.json").stat().st_mtime_ns
        done = (run_dir / DONE_FILE).read_text()
        (run_dir / DONE_FILE).unlink()
        assert run_one(sweep, RUN_ID, threads=1) == "done"
        assert (run_dir / "run.json").stat().st_mtime_ns == stamp and (run_dir / DONE_FILE).read_text() != ""
        assert json.loads((run_dir / DONE_FILE).read_text())["stamp"] == json.loads(done)["stamp"]
        # An eval.json of another run is not this run's scores.
        (run_dir / "run.json").write_text(json.dumps(trained, indent=2) + "\n")
        (run_dir / "eval.json").write_text(json.dumps({"run_fingerprint": "another", "metrics": metrics}))
        assert "sblimp" not in _results(sweep).splitlines()[0].split(",")
    finally:
        (run_dir / "run.json").write_text(json.dumps(trained, indent=2) + "\n")
        (run_dir / "eval.json").unlink(missing_ok=True)
