"""The callable of one Slurm array task: a submitit `Checkpointable`, so a time-out or a preemption
requeues the run (which resumes from its checkpoint) instead of losing it.

How a stop travels (submitit 1.5). submitit's sbatch script asks Slurm for SIGUSR2 90 s before the
time limit (`--signal=USR2@90`), and Slurm sends the same signal to a preempted job. In the task
process submitit handles SIGUSR2 itself: it calls the callable's `checkpoint()`, pickles the
`DelayedSubmission` that returns, runs `scontrol requeue` (a time-out counts against
`max_num_timeout`, a preemption does not) and exits; SIGTERM it ignores. Left alone, that handler
would exit in the middle of an update, so each path defers it until the trainer has checkpointed:

* one GPU (`run_one` in the task process): during the training loop the trainer's `StopSignals`
  holds SIGUSR2; it finishes the update, saves a checkpoint, records the run `interrupted` and
  raises TrainingStopped, `run_one` returns INTERRUPTED and puts submitit's handler back. The task
  then raises SIGUSR2 again, and submitit's handler requeues. Outside the loop (setup, the final
  evaluation) submitit's handler acts at once: nothing unsaved is lost there.
* several GPUs (torchrun, started by the task; one per node, tasks_per_node=1, when a run spans
  several nodes): torchrun's workers run in sessions of their own,
  so for as long as torchrun runs the task holds SIGUSR2 and turns it into a stop file the workers'
  trainers look for after each update ($SLMSCALE_STOP_FILE); torchrun itself ignores SIGUSR1/2
  (`python -m slmscale.sweep.torchrun`). Rank 0's worker writes its state to a file, since torchrun
  exits 1 whatever code a worker exited with; then the task raises SIGUSR2 for submitit as above.

Only a run stopped by submitit's signal is requeued. A training error stays FAILED (and
`checkpoint()` refuses to requeue a failed run), BUSY (another driver holds the run) is BUSY, and a
stop by SIGTERM (`scancel`) is INTERRUPTED without a requeue: the next `slmscale sweep` resumes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path
from types import FrameType

from submitit.helpers import Checkpointable, DelayedSubmission

from slmscale.files import read_json
from slmscale.log import get_logger
from slmscale.sweep.config import SlurmConfig
from slmscale.sweep.worker import BUSY, DONE, FAILED, INTERRUPTED, load_sweep, run_one, run_stamp, run_state

log = get_logger(__name__)
MASTER_PORT = 29500
"""A multi-node run's rendezvous port is this plus a number from the job id (0-999), so array tasks
that share a first host do not meet at one port."""


def preempt_signal() -> signal.Signals:
    """The signal submitit requeues on (SIGUSR2 unless $SUBMITIT_PREEMPT_SIGNAL names another)."""
    from submitit import JobEnvironment
    return signal.Signals["SIG" + JobEnvironment.USR_SIG]


def torchrun_command(sweep_dir: str | Path, slurm: SlurmConfig, run_id: str = "RUN_ID", retry_failed: bool = False,
                     state_file: str | Path = "STATE_FILE", host: str = "FIRST_HOST", node: int | str = "NODE_RANK",
                     job_id: str = "JOB_ID") -> list[str] | None:
    """The command of a run with several GPUs (torchrun over the worker, DDP inside the job). One node:
    `--standalone`. Several: torchrun's static rendezvous at the job's first host, this task's node
    rank given, so ranks 0..G-1 run on the first node, beside the task that reads rank 0's state
    file (a c10d rendezvous numbers the nodes in the order they join). None: one GPU, the task calls
    `run_one` itself. The defaults are placeholders, for the dry-run print."""
    if slurm.gpus_per_run <= 1 and slurm.nodes_per_run == 1:
        return None
    if slurm.nodes_per_run == 1:
        where = ["--standalone"]
    else:
        port = MASTER_PORT + zlib.crc32(str(job_id).encode()) % 1000 if job_id != "JOB_ID" else "PORT"
        where = ["--nnodes", str(slurm.nodes_per_run), "--node-rank", str(node), "--master-addr", host,
                 "--master-port", str(port)]
    return [sys.executable, "-m", "slmscale.sweep.torchrun", *where, "--nproc-per-node", str(slurm.gpus_per_node),
            "-m", "slmscale.sweep.worker", str(sweep_dir), run_id, *(["--retry-failed"] if retry_failed else []),
            "--state-file", str(state_file)]


class SweepTask(Checkpointable):
    """`task(run_id)` trains and evaluates one run of the sweep and returns its state; on submitit's
    signal it checkpoints and has the task requeued (see the module's doc)."""

    def __init__(self, sweep_dir: str | Path, slurm: SlurmConfig, retry_failed: bool = False) -> None:
        self.sweep_dir = str(sweep_dir)
        self.slurm = slurm
        self.retry_failed = retry_failed

    def __call__(self, run_id: str) -> str:
        from slmscale.lm.stop_signals import StopSignals
        if os.environ.get("SUBMITIT_FOLDER"):  # a submitit job: slmscale's INFO lines go to its log, as a worker's
            from slmscale.log import setup_logging
            setup_logging(0)
        if torchrun_command(self.sweep_dir, self.slurm) is None:
            StopSignals.last = None
            state = run_one(self.sweep_dir, run_id, None, self.retry_failed)
            stopped_by = StopSignals.last
        else:
            state, stopped_by = self._torchrun(run_id)
        if state == INTERRUPTED and stopped_by == preempt_signal().name:
            self._requeue(run_id)
        return state

    def checkpoint(self, run_id: str) -> DelayedSubmission | None:  # type: ignore[override]
        """What submitit requeues: this same task; None (no requeue) for a run that failed, whose
        rerun would repeat the error unless asked to (`--retry-failed`)."""
        try:
            cfg, specs = load_sweep(Path(self.sweep_dir))
            failed = run_state(Path(self.sweep_dir) / "runs" / run_id, run_stamp(specs[run_id], cfg)) == FAILED
        except Exception as err:  # never let a bookkeeping error lose the requeue
            log.warning("%s: could not read its state (%s); requeueing", run_id, err)
            failed = False
        if failed and not self.retry_failed:
            log.warning("%s: failed; not requeued", run_id)
            return None
        log.warning("%s: checkpointed; requeueing its task", run_id)
        return DelayedSubmission(self, run_id)

    def _requeue(self, run_id: str) -> None:
        """Raise submitit's signal again, now that the run has checkpointed: submitit's handler (back in
        place) calls `checkpoint()`, requeues the job and exits the process. Outside a submitit job
        (no handler of its own) nothing happens and the state is returned."""
        number = preempt_signal()
        handler = signal.getsignal(number)
        if not callable(handler):
            log.warning("%s: interrupted, outside a submitit job: not requeued", run_id)
            return
        log.warning("%s: interrupted by %s after a checkpoint; asking submitit to requeue", run_id, number.name)
        signal.raise_signal(number)

    def _torchrun(self, run_id: str) -> tuple[str, str | None]:
        """Run torchrun over the worker; (rank 0's state, the signal that asked the task to stop)."""
        folder = Path(self.sweep_dir) / "slurm" / "tasks"
        folder.mkdir(parents=True, exist_ok=True)
        state_file, stop_file = folder / f"{run_id}.state.json", folder / f"{run_id}.stop"
        host, node, job_id = "localhost", 0, "local"
        try:
            from submitit import JobEnvironment
            job = JobEnvironment()
            host, node, job_id = job.hostnames[0], job.node, job.job_id
        except RuntimeError:  # not inside a submitit job (a test calling the task)
            pass
        first = node == 0
        if first:
            for path in (state_file, stop_file):
                path.unlink(missing_ok=True)
        command = torchrun_command(self.sweep_dir, self.slurm, run_id, self.retry_failed, state_file, host, node,
                                   job_id)
        from slmscale.lm.stop_signals import STOP_FILE_ENV
        env = {**os.environ, STOP_FILE_ENV: str(stop_file)}
        number, asked = preempt_signal(), []

        def stop(signum: int, frame: FrameType | None) -> None:
            asked.append(signal.Signals(signum).name)
            stop_file.touch()

        previous = signal.signal(number, stop)
        try:
            log.info("%s: %s", run_id, " ".join(command))
            code = subprocess.run(command, env=env).returncode
        finally:
            signal.signal(number, previous)
        state = read_json(state_file).get("state") if state_file.is_file() else None
        if state not in (DONE, FAILED, BUSY, INTERRUPTED):
            # No state from rank 0: a crash (or rank 0 runs on another node); a stop asked for is resumed.
            state = INTERRUPTED if asked else (DONE if code == 0 and not first else FAILED)
        return state, asked[0] if asked else None
