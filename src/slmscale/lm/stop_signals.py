"""Stop training cleanly on a scheduler's signal.

Slurm ends a job that reaches its time limit (or is preempted) with SIGTERM, after the signal a
job asked for with `--signal` (e.g. SIGUSR1 some minutes before). Python's default for SIGTERM is
to die at once, losing every update since the last periodic checkpoint, and the run's record
stays `running`. Inside `StopSignals` the first such signal only sets a flag; the trainer checks
it after each update, saves a checkpoint there, records the run as `interrupted` and raises
`TrainingStopped`, so the same command (or a requeued job) resumes from that update.

A stop can also be asked for without a signal: where $SLMSCALE_STOP_FILE names a file, its
appearance stops training the same way (checked after each update). A Slurm task running torchrun
uses it (sweep/slurm_task.py): torchrun's workers sit in sessions of their own, where a signal to
the task does not reach them.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from slmscale.files import StageError

SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")
"""What Slurm and submitit send before a time limit or a preemption."""
STOP_FILE_ENV = "SLMSCALE_STOP_FILE"


class TrainingStopped(StageError):
    """Training stopped on a signal after saving a checkpoint; rerunning resumes."""


class StopSignals:
    """Within the block, SIGTERM/SIGUSR1/SIGUSR2 set `requested` (the signal's name) instead of
    ending the process; the previous handlers come back on exit. Outside the main thread, where
    Python cannot install handlers, it does nothing. `last` (class-wide) keeps the signal that stopped
    the latest block, for a caller in the same process (a Slurm task deciding whether to requeue)."""

    last: str | None = None

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}
        self._stop_file = os.environ.get(STOP_FILE_ENV) or None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is None:
            self.requested = StopSignals.last = signal.Signals(signum).name

    def check(self) -> str | None:
        """Why training should stop now (a signal's name, or the stop file), or None."""
        if self.requested is None and self._stop_file and os.path.exists(self._stop_file):
            self.requested = f"a stop request ({self._stop_file})"
        return self.requested

    def __enter__(self) -> "StopSignals":
        StopSignals.last = None
        if threading.current_thread() is threading.main_thread():
            for name in SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()
