"""Scaling laws: results tables, parametric fits, compute-optimal allocation, downstream scaling."""
