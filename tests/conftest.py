"""Test-wide settings."""

import os
from pathlib import Path

import pytest
import torch

# `make test` runs two pytest workers on two cores: one torch thread and one BLAS thread each
# avoids oversubscription (spinning OpenMP threads slow small ops down many times over; scipy's
# L-BFGS-B was measured 30x slower per call with threaded OpenBLAS on the loaded machine).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Point $SLMSCALE_CACHE, eval's and sweeps' default cache, at a dir of this test session
    (subprocesses inherit it): tests must never write into the user's ~/.cache/slmscale, nor
    into a cache the user's own $SLMSCALE_CACHE names."""
    before = os.environ.get("SLMSCALE_CACHE")
    os.environ["SLMSCALE_CACHE"] = str(tmp_path_factory.mktemp("slmscale-cache"))
    yield Path(os.environ["SLMSCALE_CACHE"])
    if before is None:
        os.environ.pop("SLMSCALE_CACHE", None)
    else:
        os.environ["SLMSCALE_CACHE"] = before
