"""Test-wide settings."""

import os

import torch

# `make test` runs two pytest workers on two cores: one torch thread each avoids
# oversubscription (spinning OpenMP threads slow small ops down many times over).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
