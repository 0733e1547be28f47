"""Worker processes that each use one thread.

A pool of N single-job workers already fills N cores; BLAS/OpenMP thread pools
inside each worker only oversubscribe them. Measured before the project started
(docs/DESIGN.md §5.1): two workers with default OpenBLAS threading ran 5-7x slower
on the 2-core machine. The limits must be in the environment before a worker imports
numpy, so they are set around the pool's start-up and the parent's own values restored
at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextmanager
def one_thread_workers() -> Iterator[None]:
    """Processes started inside this block inherit one-thread BLAS/OpenMP limits."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def worker_count(requested: int = 0) -> int:
    """`requested` processes, or one per core this process may run on when 0."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
