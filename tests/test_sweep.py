"""Sweeps: grid expansion, local and Slurm (submitit local executor) launchers, results.csv, failures,
locks; the kill-and-rerun and two-driver checks are integration tests."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slmscale.cli import main
from slmscale.config import ConfigError, load_config
from slmscale.sweep.config import SweepConfig
from slmscale.sweep.grid import expand, short_count
from slmscale.sweep.sweep import plan_table, run_sweep
from slmscale.sweep.worker import BUSY, run_lock, run_one
from slmscale.units.fixtures import make_units_dir

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["context=32", "tokens_per_update=256", "eval_every=0", "lr=0.01", "checkpoint_every=2"]


def _config(tmp_path: Path, grids: list[dict], **extra) -> Path:
    units = tmp_path / "units"
    if not units.exists():
        make_units_dir(units)
    data = {"variants": [{"name": "raw", "units": "units", "corpus": "all", "tokenizer": "raw"}],
            "grids": grids, "train": TRAIN, **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _rows(sweep: Path) -> list[dict]:
    with (sweep / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_expansion_ids_budgets_epochs_caps_and_errors(tmp_path):
    path = _config(tmp_path, [
        {"name": "main", "variants": ["raw"], "sizes": ["tiny-L1", "tiny-L2"], "tokens": [2000, 4000],
         "epochs": [1, 4]},
        {"name": "ratio", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens_per_param": [0.1], "max_flops": 1e9},
        {"name": "again", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [2000]}])
    cfg = load_config(SweepConfig, path)
    specs = {s.run_id: s for s in expand(cfg, tmp_path)}
    assert "raw-tiny-L1-d2k" in specs and specs["raw-tiny-L1-d2k"].grids == ["main", "again"]
    assert specs["raw-tiny-L2-d4k-u1k"].unique_tokens == 1000
    assert specs["raw-tiny-L2-d4k"].flops == 6 * specs["raw-tiny-L2-d4k"].params * 4000
    ratio = [s for s in specs.values() if s.grids == ["ratio"]]
    assert len(ratio) == 1 and ratio[0].tokens == round(0.1 * ratio[0].params)
    assert len(specs) == 9
    assert short_count(2_000_000) == "2M" and short_count(250_000) == "250k" and short_count(1_234_567) == "1234567"
    assert short_count(1_500_000) == "1.5M"
    bad = _config(tmp_path, [{"name": "x", "variants": ["nope"], "sizes": ["tiny-L1"], "tokens": [100]}])
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        expand(load_config(SweepConfig, bad), tmp_path)
    bad = _config(tmp_path, [{"name": "x", "variants": ["raw"], "sizes": ["huge"], "tokens": [100]}])
    with pytest.raises(ConfigError, match="size 'huge'"):
        expand(load_config(SweepConfig, bad), tmp_path)


def test_local_sweep_runs_records_failures_and_resumes(tmp_path):
    path = _config(tmp_path, [
        {"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [1024, 2048]},
        # More unique tokens than the train split holds: a config error, recorded as failed.
        {"name": "bad", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [10 ** 8], "epochs": [2]}])
    sweep = tmp_path / "sweep"
    summary = run_sweep(path, sweep, workers=2)
    assert summary["status"] == {"completed": 2, "failed": 1}
    rows = {row["run_id"]: row for row in _rows(sweep)}
    good = rows["raw-tiny-L1-d1024"]
    assert float(good["loss"]) > 0 and int(good["params"]) > 0 and good["corpus"] == "all"
    failed = rows["raw-tiny-L1-d100M-u50M"]
    assert failed["status"] == "failed" and failed["loss"] == "" and "unique" in failed["error"]
    # One precision for the sweep, chosen by the driver before any worker started, and each run's own.
    chosen = json.loads((sweep / "precision.json").read_text())["precision"]
    assert summary["precision"] == chosen == good["precision"] and failed["precision"] == ""
    before = (sweep / "runs" / "raw-tiny-L1-d1024" / "run.json").read_text()
    again = run_sweep(path, sweep, workers=2)
    assert again["this_call"] == {} and again["status"] == summary["status"]
    assert (sweep / "runs" / "raw-tiny-L1-d1024" / "run.json").read_text() == before
    assert run_sweep(path, sweep, workers=1, retry_failed=True)["this_call"] == {"raw-tiny-L1-d100M-u50M": "failed"}


def test_a_held_lock_makes_the_run_busy(tmp_path):
    path = _config(tmp_path, [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [512]}])
    sweep = tmp_path / "sweep"
    from slmscale.sweep.sweep import prepare
    prepare(path, sweep)
    with run_lock(sweep / "runs" / "raw-tiny-L1-d512") as locked:
        assert locked
        assert run_one(sweep, "raw-tiny-L1-d512") == BUSY
    assert run_one(sweep, "raw-tiny-L1-d512", threads=1) == "done"


def test_sweep_evaluations_use_evals_shared_cache_unless_the_eval_overrides_name_one(tmp_path, monkeypatch,
                                                                                     private_cache):
    """Benchmark units are keyed by tokenizer fingerprint and files, so every sweep shares eval's
    default cache ($SLMSCALE_CACHE, the test session's here) instead of extracting into its own."""
    import slmscale.evaluate.evaluate as evaluate
    from slmscale.sweep.sweep import prepare
    from slmscale.sweep.worker import _evaluate, load_sweep
    seen = []
    monkeypatch.setattr(evaluate, "evaluate_run", lambda run_dir, benchmarks, cfg: seen.append(cfg.cache()))
    grids = [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [512]}]
    (tmp_path / "bench").mkdir()  # never read: evaluate_run is replaced
    for name, overrides in (("shared", []), ("own", [f"cache_dir={tmp_path / 'mine'}"])):
        prepare(_config(tmp_path, grids, benchmarks=["bench"], eval=overrides, train=["context=32"]), tmp_path / name)
        cfg, specs = load_sweep(tmp_path / name)
        spec = specs["raw-tiny-L1-d512"]
        _evaluate(tmp_path / name, tmp_path / name / "runs" / spec.run_id, spec, cfg, 1)
    assert seen == [private_cache, tmp_path / "mine"]


def test_slurm_path_with_submitits_local_executor(tmp_path):
    pytest.importorskip("submitit")
    path = _config(tmp_path, [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [512, 768]}],
                   launcher="slurm", slurm={"cluster": "local", "cpus_per_run": 1, "time_minutes": 10})
    summary = run_sweep(path, tmp_path / "sweep")
    assert summary["status"] == {"completed": 2} and set(summary["this_call"].values()) == {"done"}
    assert any((tmp_path / "sweep" / "slurm").rglob("*.out"))


def test_slurm_without_slurm_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))  # no sbatch anywhere
    path = _config(tmp_path, [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [512]}],
                   launcher="slurm", slurm={"time_minutes": 10})
    assert main(["sweep", str(path), "--out", str(tmp_path / "sweep")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.splitlines()[-1].startswith("slmscale sweep: error: launcher slurm")
    assert "no Slurm" in err and "--launcher local" in err
    assert not (tmp_path / "sweep" / "slurm").exists()  # it used to run here and leave this


def test_plan_prints_flops_and_a_measured_estimate(tmp_path):
    path = _config(tmp_path, [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1", "tiny-L2"],
                               "tokens": [10 ** 6]}])
    lines, totals = plan_table(path, workers=1)
    assert totals["runs"] == 2 and totals["train_seconds"] > 0
    assert "raw-tiny-L2-d1M" in "\n".join(lines) and "FLOPs in all" in lines[-1]
    # Estimated peak memory per process (GPU) beside each run, from the planner's micro-batch.
    assert "mem/GPU" in lines[0]
    row = next(line for line in lines if line.startswith("raw-tiny-L2-d1M")).split()
    assert any(cell.endswith("G") and 0 < float(cell[:-1]) < 1 for cell in row)


def _driver(config: Path, sweep: Path, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "slmscale", "sweep", str(config), "--out", str(sweep),
                             "--workers", str(workers)], start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _updates(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["update"] for row in rows if "loss" in row]


@pytest.mark.integration
def test_killed_driver_and_workers_lose_nothing_and_train_nothing_twice(tmp_path):
    grid = {"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [2048 * k for k in range(1, 7)]}
    path = _config(tmp_path, [grid], train=TRAIN + ["log_every=1"])
    sweep = tmp_path / "sweep"
    driver = _driver(path, sweep)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(sweep.glob("runs/*/sweep_done.json"))) < 2:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its workers, mid-sweep
    driver.wait()
    finished = {p.parent.name: p.read_text() for p in sweep.glob("runs/*/sweep_done.json")}
    assert finished, "nothing finished before the kill"
    summary = run_sweep(path, sweep, workers=2)
    assert summary["status"] == {"completed": 6}
    for run_id, marker in finished.items():  # completed results were kept, not redone
        assert (sweep / "runs" / run_id / "sweep_done.json").read_text() == marker
        assert run_id not in summary["this_call"]
    for run_dir in sweep.glob("runs/*"):
        updates = _updates(run_dir)
        assert updates == sorted(set(updates)), f"{run_dir.name} trained some updates twice"


@pytest.mark.integration
def test_two_drivers_never_train_the_same_run_at_once(tmp_path):
    grid = {"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [1536 * k for k in range(1, 7)]}
    path = _config(tmp_path, [grid], train=TRAIN + ["log_every=1", "threads=1"])
    sweep = tmp_path / "sweep"
    drivers = [_driver(path, sweep, workers=1) for _ in range(2)]
    for driver in drivers:
        driver.wait(timeout=300)
    summary = run_sweep(path, sweep, workers=1)  # whatever one driver found busy is finished here
    assert summary["status"] == {"completed": 6}
    for run_dir in sweep.glob("runs/*"):
        updates = _updates(run_dir)
        assert len(updates) == len(set(updates)), f"{run_dir.name} was trained by two processes"


def test_a_variants_own_train_overrides_reach_its_runs_only(tmp_path):
    from dataclasses import asdict

    from slmscale.config import fingerprint
    from slmscale.sweep.worker import run_stamp, train_config
    path = _config(tmp_path, [{"name": "main", "variants": ["raw", "small"], "sizes": ["tiny-L1"], "tokens": [512]}])
    data = yaml.safe_load(path.read_text())
    data["variants"].append({"name": "small", "units": "units", "corpus": "all", "tokenizer": "raw",
                             "train": ["tokens_per_update=64"]})
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(SweepConfig, path)
    specs = {s.variant: s for s in expand(cfg, tmp_path)}
    assert train_config(specs["small"], cfg, "fp32").tokens_per_update == 64
    assert train_config(specs["raw"], cfg, "fp32").tokens_per_update == 256  # the sweep's TRAIN
    # A run of a variant without overrides keeps the stamp it had before variants could have them (or
    # a mixture), so no finished sweep retrains.
    raw = specs["raw"]
    old = fingerprint({"spec": {k: v for k, v in asdict(raw).items() if k not in ("grids", "train", "mixture")},
                       "train": list(cfg.train), "eval": list(cfg.eval), "benchmarks": list(cfg.benchmarks),
                       "seed": cfg.seed})
    assert run_stamp(raw, cfg) == old and run_stamp(specs["small"], cfg) != run_stamp(raw, cfg)
    data["variants"][1]["train"] = ["precision=bf16"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="precision is chosen once per sweep"):
        load_config(SweepConfig, path)


def test_a_run_stopped_by_a_signal_is_interrupted_not_failed_and_the_next_call_finishes_it(tmp_path, monkeypatch):
    import os
    import signal

    import slmscale.lm.trainer as trainer
    from slmscale.sweep.sweep import prepare
    from slmscale.sweep.worker import EXIT_CODES, FAILURE_FILE, INTERRUPTED
    path = _config(tmp_path, [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [1024]}])
    sweep = tmp_path / "sweep"
    prepare(path, sweep)
    real, calls = trainer._update, []

    def update_then_signal(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGUSR1)  # Slurm's --signal before the time limit
        return out

    monkeypatch.setattr(trainer, "_update", update_then_signal)
    assert run_one(sweep, "raw-tiny-L1-d1024", threads=1) == INTERRUPTED and EXIT_CODES[INTERRUPTED] == 4
    assert not (sweep / "runs" / "raw-tiny-L1-d1024" / FAILURE_FILE).exists()
    monkeypatch.undo()
    assert run_one(sweep, "raw-tiny-L1-d1024", threads=1) == "done"  # no --retry-failed needed
