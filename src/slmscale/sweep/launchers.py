"""Where the runs of a sweep execute: local worker processes, or Slurm job arrays via submitit.

Either way each run is `python -m slmscale.sweep.worker SWEEP RUN_ID` (or `run_one` in a
Slurm task), which takes the run's lock, so launchers need no bookkeeping of their own and
any mix of them, killed or not, converges on the same finished sweep. A Slurm task is a submitit
`Checkpointable` (sweep/slurm_task.py): a time-out or a preemption checkpoints the run and requeues
the task, which resumes it.

Local: N processes at once, the largest runs first (longest-processing-time order shortens
the sweep), the CPU cores split evenly between them: on this 2-core machine two 1-thread
runs give 1.15x the tokens/s of one 2-thread run, and two 2-thread runs oversubscribe the
cores and slow both several-fold (benchmarks/RESULTS.md, LM training speed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from slmscale.files import StageError
from slmscale.log import get_logger
from slmscale.sweep.config import SlurmConfig
from slmscale.sweep.grid import RunSpec
from slmscale.sweep.worker import BUSY, DONE, EXIT_CODES, FAILED, INTERRUPTED

log = get_logger(__name__)
EXIT_STATES = {code: state for state, code in EXIT_CODES.items()}


def split_cores(workers: int) -> tuple[int, int]:
    """(workers, threads per worker) for this machine; 0 workers = one per core."""
    cores = os.cpu_count() or 1
    workers = workers or cores
    return workers, max(1, cores // workers)


def run_local(sweep_dir: Path, specs: list[RunSpec], workers: int = 0, retry_failed: bool = False,
              on_finish: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """Run `specs` in worker processes; returns run_id -> state."""
    workers, threads = split_cores(workers)
    queue = sorted(specs, key=lambda s: -s.flops)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    logs = sweep_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[subprocess.Popen, tuple[str, float]] = {}
    states: dict[str, str] = {}
    total = len(queue)
    log.info("%d runs on %d local workers x %d threads", total, workers, threads)
    try:
        while queue or running:
            while queue and len(running) < workers:
                spec = queue.pop(0)
                command = [sys.executable, "-m", "slmscale.sweep.worker", str(sweep_dir), spec.run_id,
                           "--threads", str(threads)] + (["--retry-failed"] if retry_failed else [])
                with open(logs / f"{spec.run_id}.log", "a") as out:
                    running[subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)] = (
                        spec.run_id, time.perf_counter())
            time.sleep(0.2)
            for process in [p for p in running if p.poll() is not None]:
                run_id, started = running.pop(process)
                state = EXIT_STATES.get(process.returncode, INTERRUPTED)
                states[run_id] = state
                log.info("[%d/%d] %s: %s in %.0f s%s", len(states), total, run_id, state,
                         time.perf_counter() - started, f" (see {logs / run_id}.log)" if state != DONE else "")
                if on_finish is not None:
                    on_finish(run_id, state)
    finally:
        for process in running:  # the driver is stopping: its workers stop too (they resume later)
            process.terminate()
    return states


def _executor(sweep_dir: Path, slurm: SlurmConfig, dry_run: bool = False):
    """The submitit executor of a sweep's array job. `dry_run`: one that can only render the sbatch
    script it would submit (`slurm_dry_run`), built by this same code so the two cannot differ; it
    needs no Slurm on this machine."""
    import submitit
    cluster = slurm.cluster or "slurm"
    if cluster == "slurm" and shutil.which("sbatch") is None and not dry_run:
        # submitit would fall back to running the jobs here, which is not what `slurm` asked for.
        raise StageError("launcher slurm: this machine has no Slurm (no `sbatch` on PATH); run with "
                         "--launcher local, or set slurm.cluster=local to try the Slurm path with "
                         "submitit's local executor")
    folder = str(sweep_dir / "slurm" / "%j")
    # One task per node; a run over several nodes is one task on each (torchrun on each, slurm_task.py).
    generic: dict[str, object] = {"timeout_min": slurm.time_minutes, "cpus_per_task": slurm.cpus_per_run,
                                  "mem_gb": slurm.mem_gb, "gpus_per_node": slurm.gpus_per_node,
                                  "nodes": slurm.nodes_per_run, "tasks_per_node": 1}
    if cluster == "slurm":
        # The Slurm executor itself rather than AutoExecutor (which wraps it the same way) because its
        # dry-run subclass can be put in its place; the generic names are translated as AutoExecutor does.
        executor = (_script_only_executor() if dry_run else submitit.SlurmExecutor)(
            folder, max_num_timeout=slurm.max_timeouts)
        own: dict[str, object] = {"array_parallelism": slurm.array_parallelism}
        if slurm.partition:
            own["partition"] = slurm.partition
        executor.update_parameters(**executor._convert_parameters(generic), **own)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster, **{f"{cluster}_max_num_timeout": slurm.max_timeouts})
    # submitit's local executor takes the generic options only, on this one node
    executor.update_parameters(**{**generic, "nodes": 1, "gpus_per_node": 0 if not _has_gpu() else slurm.gpus_per_node})
    return executor


def _script_only_executor():
    """submitit's Slurm executor minus its check for `srun`: `sweep plan` renders with it the sbatch
    script a sweep would submit, on any machine. It never submits (only `run_slurm` does)."""
    import submitit

    class ScriptOnlySlurmExecutor(submitit.SlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 2  # what SlurmExecutor answers where `srun` exists

    return ScriptOnlySlurmExecutor


def _submission_order(specs: list[RunSpec]) -> list[str]:
    """Run ids in array-task order: the largest runs first, so the longest start soonest."""
    return [spec.run_id for spec in sorted(specs, key=lambda s: -s.flops)]


def slurm_dry_run(sweep_dir: Path, specs: list[RunSpec], slurm: SlurmConfig) -> list[str]:
    """What `run_slurm` would submit for `specs`, as printable lines, submitting nothing: the job
    array (one task per run, in submission order), each task's resources and command, and the sbatch
    script, rendered by submitit from the executor `run_slurm` builds (`_executor`)."""
    from slmscale.sweep.slurm_task import torchrun_command  # submitit, imported only where it is used
    run_ids = _submission_order(specs)
    cluster = slurm.cluster or "slurm"
    if not run_ids:
        return ["launcher slurm (dry run): no runs to submit"]
    torchrun = torchrun_command(sweep_dir, slurm)
    task = ("on each node: " if slurm.nodes_per_run > 1 else "") + (
        " ".join(torchrun) if torchrun else f"slmscale.sweep.worker.run_one({str(sweep_dir)!r}, RUN_ID)") + (
        " (in a pickled submitit Checkpointable: a time-out or preemption checkpoints and requeues it)")
    tasks = [f"  task {i}: {run_id}" for i, run_id in enumerate(run_ids)]
    if cluster != "slurm":  # no executor built: submitit's local one makes its folder at once
        return [f"launcher slurm with slurm.cluster={cluster} (dry run, nothing started): {len(run_ids)} tasks "
                f"that submitit's {cluster} executor would run on this machine, no sbatch",
                f"each task runs: {task}"] + tasks
    executor = _executor(sweep_dir, slurm, dry_run=True)
    # As SlurmExecutor submits: several runs as one array (its parameters plus map_count = the task
    # count), a single run as a plain job.
    if len(run_ids) > 1:
        executor.parameters["map_count"] = len(run_ids)
    script = executor._make_submission_file_text(executor._submitit_command_str, "dry-run")
    params = executor.parameters
    resources = ", ".join(f"{name} {params[key]}{unit}" for name, key, unit in (
        ("time", "time", " min"), ("nodes", "nodes", ""), ("cpus", "cpus_per_task", ""),
        ("gpus", "gpus_per_node", " per node" if slurm.nodes_per_run > 1 else ""), ("mem", "mem", ""),
        ("partition", "partition", "")) if key in params and (key != "nodes" or slurm.nodes_per_run > 1))
    array = [line.split("=", 1)[1] for line in script.splitlines() if line.startswith("#SBATCH --array=")]
    lines = ["launcher slurm (dry run, nothing submitted): " + (
                 f"1 job array of {len(run_ids)} tasks, --array={array[0]} (at most "
                 f"{min(len(run_ids), slurm.array_parallelism)} at once)" if array else
                 "1 job (submitit sends a single run as a plain job, not an array)"),
             f"each task: {resources}" + ("" if "partition" in params else ", the cluster's default partition"),
             f"each task runs: {task}", *tasks]
    lines += ["the sbatch script (`sbatch` of this file, one per sweep call):"]
    lines += ["  " + line if line else "" for line in script.rstrip("\n").splitlines()]
    return lines


def _has_gpu() -> bool:
    import torch
    return torch.cuda.is_available()


def run_slurm(sweep_dir: Path, specs: list[RunSpec], slurm: SlurmConfig, retry_failed: bool = False,
              on_finish: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """One array task per run through submitit (a `SweepTask`: requeued on time-out or preemption, so
    `job.results()` waits across requeues); waits for them. With several GPUs per run the task runs
    torchrun over the worker (DDP inside the job)."""
    from slmscale.sweep.slurm_task import SweepTask
    executor = _executor(sweep_dir, slurm)
    run_ids = _submission_order(specs)
    jobs = executor.map_array(SweepTask(sweep_dir, slurm, retry_failed), run_ids)
    log.info("submitted %d runs to %s (job %s)", len(jobs), slurm.cluster or "slurm",
             jobs[0].job_id if jobs else "-")
    states: dict[str, str] = {}
    for run_id, job in zip(run_ids, jobs):
        try:
            # a run over several nodes is a task per node (submitit sub-jobs): the first node's result counts
            result = job.result() if slurm.nodes_per_run == 1 else job.results()[0]
            states[run_id] = result if result in (DONE, FAILED, BUSY, INTERRUPTED) else DONE
        except Exception as err:  # a task that crashed, was cancelled, or timed out too many times
            log.warning("%s: %s", run_id, err)
            states[run_id] = FAILED
        if on_finish is not None:
            on_finish(run_id, states[run_id])
    return states
