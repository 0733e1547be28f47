"""Where the runs of a sweep execute: local worker processes, or Slurm job arrays via submitit.

Either way each run is `python -m slmscale.sweep.worker SWEEP RUN_ID` (or `run_one` in a
Slurm task), which takes the run's lock, so launchers need no bookkeeping of their own and
any mix of them, killed or not, converges on the same finished sweep.

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
from slmscale.sweep.grid import RunSpec
from slmscale.sweep.sweep_config import SlurmConfig
from slmscale.sweep.worker import BUSY, DONE, EXIT_CODES, FAILED, INTERRUPTED, run_one

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


def _executor(sweep_dir: Path, slurm: SlurmConfig):
    import submitit
    cluster = slurm.cluster or "slurm"
    if cluster == "slurm" and shutil.which("sbatch") is None:
        # submitit would fall back to running the jobs here, which is not what `slurm` asked for.
        raise StageError("launcher slurm: this machine has no Slurm (no `sbatch` on PATH); run with "
                         "--launcher local, or set slurm.cluster=local to try the Slurm path with "
                         "submitit's local executor")
    executor = submitit.AutoExecutor(folder=str(sweep_dir / "slurm" / "%j"), cluster=cluster)
    options: dict[str, object] = {"timeout_min": slurm.time_minutes, "cpus_per_task": slurm.cpus_per_run,
                                  "mem_gb": slurm.mem_gb, "gpus_per_node": slurm.gpus_per_run,
                                  "slurm_array_parallelism": slurm.array_parallelism}
    if slurm.partition:
        options["slurm_partition"] = slurm.partition
    if executor.cluster != "slurm":  # submitit's local executor takes the generic options only
        options = {k: v for k, v in options.items() if not k.startswith("slurm_")}
        options["gpus_per_node"] = 0 if not _has_gpu() else slurm.gpus_per_run
    executor.update_parameters(**options)
    return executor


def _has_gpu() -> bool:
    import torch
    return torch.cuda.is_available()


def run_slurm(sweep_dir: Path, specs: list[RunSpec], slurm: SlurmConfig, retry_failed: bool = False,
              on_finish: Callable[[str, str], None] | None = None) -> dict[str, str]:
    """One array task per run through submitit; waits for them. With gpus_per_run > 1 the task
    runs torchrun over the worker (DDP inside the job)."""
    import submitit
    executor = _executor(sweep_dir, slurm)
    run_ids = [spec.run_id for spec in sorted(specs, key=lambda s: -s.flops)]
    if slurm.gpus_per_run > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                   str(slurm.gpus_per_run), "-m", "slmscale.sweep.worker", str(sweep_dir)]
        jobs = executor.map_array(submitit.helpers.CommandFunction(command), run_ids)
    else:
        jobs = executor.map_array(run_one, [str(sweep_dir)] * len(run_ids), run_ids, [None] * len(run_ids),
                                  [retry_failed] * len(run_ids))
    log.info("submitted %d runs to %s (job %s)", len(jobs), executor.cluster, jobs[0].job_id if jobs else "-")
    states: dict[str, str] = {}
    for run_id, job in zip(run_ids, jobs):
        try:
            result = job.result()
            states[run_id] = result if result in (DONE, FAILED, BUSY, INTERRUPTED) else DONE
        except Exception as err:  # a task that crashed or was cancelled
            log.warning("%s: %s", run_id, err)
            states[run_id] = FAILED
        if on_finish is not None:
            on_finish(run_id, states[run_id])
    return states
