"""torchrun for a Slurm task: `python -m slmscale.sweep.torchrun ARGS` is `torchrun ARGS` ignoring
SIGUSR1 and SIGUSR2.

Slurm signals every process of a job step, torchrun included, and torchrun neither handles nor
ignores SIGUSR2 unasked: it would die of submitit's time-out signal and leave its workers
mid-update. Ignored here, the signal reaches the workers' trainers instead (their `StopSignals`
takes it during the training loop; the ignore is inherited outside it), and the task's stop file
(sweep/slurm_task.py) reaches them where the signal does not. SIGTERM stays torchrun's: it passes
it on to its workers, which checkpoint and stop.
"""

from __future__ import annotations

import signal
import sys


def main(argv: list[str] | None = None) -> None:
    for name in ("SIGUSR1", "SIGUSR2"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    from torch.distributed.run import main as torchrun
    torchrun(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
