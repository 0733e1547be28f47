"""Sweeps: N x D grids of unit LMs, run records, launchers (local processes, Slurm)."""
