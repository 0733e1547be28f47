"""Slurm time-outs and preemptions (issue 18 §1): an array task is a submitit Checkpointable that
checkpoints the run on submitit's signal and is requeued, resuming it; a failed run is not requeued,
BUSY is not FAILED, `--retry-failed` reaches torchrun, multi-node commands. submitit's local executor
stands in for Slurm (`job._interrupt()` sends the signal a time-out or a preemption sends); torchrun
runs on CPU with gloo in the integration test."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("submitit")

from slmscale.cli import main  # noqa: E402
from slmscale.config import ConfigError  # noqa: E402
from slmscale.sweep.config import SlurmConfig  # noqa: E402
from slmscale.sweep.slurm_task import SweepTask, torchrun_command  # noqa: E402
from slmscale.sweep.sweep import prepare  # noqa: E402
from slmscale.sweep.worker import BUSY, DONE, FAILED, FAILURE_FILE, INTERRUPTED, run_lock  # noqa: E402
from slmscale.units.fixtures import make_units_dir  # noqa: E402

TRAIN = ["context=32", "tokens_per_update=256", "eval_every=0", "lr=0.01", "log_every=1", "threads=1"]


def _sweep(tmp_path: Path, tokens: int, train: list[str] = TRAIN, **slurm) -> tuple[Path, str]:
    """A prepared sweep of one run (the sweep dir, the run id)."""
    make_units_dir(tmp_path / "units")
    data = {"variants": [{"name": "raw", "units": "units"}], "train": train, "launcher": "slurm",
            "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [tokens]}],
            "slurm": {"cluster": "local", "cpus_per_run": 1, **slurm}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(data))
    prepare(tmp_path / "sweep.yaml", tmp_path / "sweep")
    return tmp_path / "sweep", json.loads((tmp_path / "sweep" / "runs.json").read_text())[0]["run_id"]


def _updates(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["update"] for row in rows if "loss" in row]


@pytest.fixture
def submitit_handler():
    """A stand-in for the handler submitit installs in a task for its signal: records each call."""
    calls: list[int] = []
    before = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    yield calls
    signal.signal(signal.SIGUSR2, before)


def _signal_after(monkeypatch, update: int, signum: int) -> None:
    import slmscale.lm.trainer as trainer
    real, calls = trainer._update, []

    def update_then_signal(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)
        if len(calls) == update:
            os.kill(os.getpid(), signum)
        return out

    monkeypatch.setattr(trainer, "_update", update_then_signal)


def test_submitits_signal_checkpoints_then_hands_the_requeue_to_submitit(tmp_path, monkeypatch, submitit_handler):
    sweep, run_id = _sweep(tmp_path, 2560, [*TRAIN, "checkpoint_every=1000"])
    _signal_after(monkeypatch, 3, signal.SIGUSR2)
    task = SweepTask(sweep, SlurmConfig(cluster="local"))
    assert task(run_id) == INTERRUPTED
    assert submitit_handler == [signal.SIGUSR2]  # raised again once the checkpoint was saved
    run_dir = sweep / "runs" / run_id
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert (run_dir / "checkpoint").is_dir() and not (run_dir / FAILURE_FILE).exists()
    requeued = task.checkpoint(run_id)  # what submitit's handler pickles and requeues
    assert requeued.function is task and requeued.args == (run_id,)
    monkeypatch.undo()
    assert requeued.result() == DONE
    assert _updates(run_dir)[:4] == [1, 2, 3, 4]  # resumed after update 3, the checkpoint at the signal


def test_sigterm_is_interrupted_without_a_requeue_and_a_failure_is_never_requeued(tmp_path, monkeypatch,
                                                                                   submitit_handler):
    sweep, run_id = _sweep(tmp_path, 1024)
    task = SweepTask(sweep, SlurmConfig(cluster="local"))
    _signal_after(monkeypatch, 2, signal.SIGTERM)  # scancel: the next `slmscale sweep` resumes it
    assert task(run_id) == INTERRUPTED and submitit_handler == []
    monkeypatch.undo()
    import slmscale.lm.trainer as trainer

    def broken(*args, **kwargs):
        raise RuntimeError("a training error")

    monkeypatch.setattr(trainer, "_update", broken)
    assert task(run_id) == FAILED and submitit_handler == []
    assert (sweep / "runs" / run_id / FAILURE_FILE).is_file()
    assert task.checkpoint(run_id) is None  # a signal now would not requeue it either
    retrying = SweepTask(sweep, SlurmConfig(cluster="local"), retry_failed=True)
    assert retrying.checkpoint(run_id) is not None


def test_a_preempted_task_of_submitits_local_executor_is_requeued_and_finishes_the_run(tmp_path):
    """The real thing on one machine: submitit runs the task in its own process, which gets SIGUSR2
    mid-training, the trainer checkpoints, submitit requeues, the requeued task resumes."""
    from slmscale.sweep.launchers import _executor
    sweep, run_id = _sweep(tmp_path, 256 * 2000, [*TRAIN, "checkpoint_every=100000"], time_minutes=30)
    run_dir = sweep / "runs" / run_id
    executor = _executor(sweep, SlurmConfig(cluster="local", cpus_per_run=1, time_minutes=30))
    job = executor.submit(SweepTask(sweep, SlurmConfig(cluster="local")), run_id)
    deadline = time.time() + 120
    while not ((run_dir / "metrics.jsonl").is_file() and len(_updates(run_dir)) >= 20):
        assert time.time() < deadline and job.state != "FINISHED", job.stderr()
        time.sleep(0.2)
    # What Slurm sends the task on a preemption or before the time limit (--signal=USR2@90); the task
    # process holds the run's lock, which names it. (submitit's `job._interrupt()` signals the local
    # controller, which does not pass SIGUSR2 on.)
    os.kill(int((run_dir / ".lock").read_text()), signal.SIGUSR2)
    assert job.result() == DONE
    log = (job.stdout() or "") + (job.stderr() or "")
    assert "asking submitit to requeue" in log and "Requeued job" in log, log
    resumed = [int(n) for n in re.findall(r"resuming after update (\d+) of 2000", log)]
    assert len(resumed) == 1 and resumed[0] >= 20, log  # one resume, from the checkpoint at the signal
    assert _updates(run_dir) == list(range(1, 2001)) and json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_torchrun_commands_one_node_several_nodes_and_retry_failed():
    one = torchrun_command("SW", SlurmConfig(gpus_per_run=4), "r1", retry_failed=True, state_file="S")
    assert one[1:] == ["-m", "slmscale.sweep.torchrun", "--standalone", "--nproc-per-node", "4",
                       "-m", "slmscale.sweep.worker", "SW", "r1", "--retry-failed", "--state-file", "S"]
    two = torchrun_command("SW", SlurmConfig(gpus_per_run=16, nodes_per_run=2), "r1", state_file="S",
                           host="gpu017", node=1, job_id="4242_3")
    assert two[3:13] == ["--nnodes", "2", "--node-rank", "1", "--master-addr", "gpu017", "--master-port",
                         two[10], "--nproc-per-node", "8"]
    assert 29500 <= int(two[10]) < 30500 and "--retry-failed" not in two and "--standalone" not in two
    assert torchrun_command("SW", SlurmConfig(gpus_per_run=1)) is None


@pytest.mark.parametrize("slurm, message", [
    ({"nodes_per_run": 0}, "slurm.nodes_per_run: must be at least 1, got 0"),
    ({"nodes_per_run": 3, "gpus_per_run": 8}, "slurm.nodes_per_run: 3 nodes do not share gpus_per_run 8"),
    ({"max_timeouts": -1}, "slurm.max_timeouts: must be at least 0, got -1"),
])
def test_bad_slurm_settings_are_one_line_errors(slurm, message):
    with pytest.raises(ConfigError, match=message) as err:
        SlurmConfig(**slurm)
    assert "\n" not in str(err.value)


def test_a_multi_node_plan_prints_the_rendezvous_and_the_nodes(tmp_path, monkeypatch, capsys):
    make_units_dir(tmp_path / "units")
    data = {"variants": [{"name": "raw", "units": "units"}], "train": TRAIN,
            "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [512, 768]}],
            "slurm": {"gpus_per_run": 8, "nodes_per_run": 2, "time_minutes": 2880}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(data))
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["sweep", "plan", str(tmp_path / "sweep.yaml"), "--no-measure", "launcher=slurm"]) == 0
    out = capsys.readouterr().out
    assert "each task: time 2880 min, nodes 2, cpus 8, gpus 4 per node" in out
    assert ("on each node: " in out and "--nnodes 2 --node-rank NODE_RANK --master-addr FIRST_HOST "
            "--master-port PORT --nproc-per-node 4 -m slmscale.sweep.worker" in out)
    assert "Checkpointable" in out
    for flag in ("--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4", "--signal=USR2@90"):
        assert f"#SBATCH {flag}\n" in out.replace("\n  ", "\n")


@pytest.mark.integration
def test_torchrun_task_busy_then_stopped_by_submitits_signal_then_finished(tmp_path, submitit_handler):
    """Two CPU processes under torchrun (gloo): a held lock is BUSY, not FAILED; submitit's signal to
    the task stops both workers at one update through the stop file, rank 0 reports INTERRUPTED through
    the state file (torchrun itself exits 1), the task hands the requeue to submitit; the rerun finishes."""
    sweep, run_id = _sweep(tmp_path, 256 * 3000, [*TRAIN, "checkpoint_every=100000", "tokens_per_update=512"])
    run_dir = sweep / "runs" / run_id
    task = SweepTask(sweep, SlurmConfig(cluster="local", gpus_per_run=2))
    with run_lock(run_dir) as locked:
        assert locked and task(run_id) == BUSY
    assert not (run_dir / FAILURE_FILE).exists()

    def signal_mid_training():
        deadline = time.time() + 200
        while time.time() < deadline:
            if (run_dir / "metrics.jsonl").is_file() and len(_updates(run_dir)) >= 20:
                os.kill(os.getpid(), signal.SIGUSR2)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=signal_mid_training, daemon=True)
    watcher.start()
    assert task(run_id) == INTERRUPTED and submitit_handler == [signal.SIGUSR2]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and "stop request" in record["error"] and record["world_size"] == 2
    stopped = _updates(run_dir)[-1]
    assert task(run_id) == DONE and submitit_handler == [signal.SIGUSR2]
    updates = _updates(run_dir)
    assert updates[-1] == 1500 and updates.count(stopped + 1) == 1  # resumed after the stop, not before
