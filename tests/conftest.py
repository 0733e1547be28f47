"""Test-wide settings."""

import os

import torch

# `make test` runs two pytest workers on two cores: one torch thread and one BLAS thread each
# avoids oversubscription (spinning OpenMP threads slow small ops down many times over; scipy's
# L-BFGS-B was measured 30x slower per call with threaded OpenBLAS on the loaded machine).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
