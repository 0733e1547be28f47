"""Measured GPU training throughput, and the time a run takes on a named GPU (`sweep plan --gpu NAME`).

Each GPU has the tokens/s measured per size preset (bf16 autocast, compiled blocks, fused AdamW, the
planner's micro-batch for 80 GB, context 2050, vocabulary 502), and where each number came from.
A run's time is estimated from those numbers, never from the CPU the plan runs on:

- compute: the run's FLOPs per token (6N plus attention, at its own shape and context) over the
  MFU its size reached (measured tokens/s x FLOPs per token / peak), times its tokens D. A size that
  was not measured takes the MFU of the measured sizes interpolated in log N (clamped at the ends):
  the 155m between 85m and 309m, every tiny size at the 20m's, the smallest measured;
- a floor: at most one update per `update_seconds`, measured on the tiny ladder, whose runs are
  bound by the per-update overhead (kernel launches, Python, the optimizer step), not by FLOPs;
- the fixed cost of a run: start, compilation, validations, checkpoints and the test loss.

A run takes max(compute, floor) + fixed. Evaluation (GPU scoring and the CPU n-gram baseline) is not
included. Runs sharing one GPU (local workers) share its compute: `gpu_wall_seconds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from slmscale.config import ConfigError
from slmscale.lm.model import ModelShape
from slmscale.lm.sizes import PAPER_VOCAB, count_params, flops_per_token, get_preset

H200_SOURCE = ("benchmarks/results/gpu_check_h200_2026-12-04.json (benchmarks/gpu_check.sh on one NVIDIA H200, "
               "torch 2.11.0+cu130; benchmarks/RESULTS.md, GPU check)")


@dataclass(frozen=True)
class GpuThroughput:
    """One GPU's measured (or derived) training throughput."""
    name: str
    """What `--gpu` calls it."""
    description: str
    """The card, in words."""
    peak_tflops: float
    """bf16 dense peak of the datasheet (TFLOP/s), the MFU denominator."""
    memory_gb: float
    """Memory of the card; a run planned above it is flagged."""
    tokens_per_second: dict[str, float] = field(default_factory=dict)
    """Preset -> training tokens/s at the preset's shape (vocabulary 502, context 2050), bf16."""
    update_seconds: float = 0.030
    """Least seconds per update: a run's floor where it is overhead-bound."""
    run_seconds: float = 29.0
    """Fixed seconds per run that compiles the model (start, compilation, validations, test loss)."""
    eager_run_seconds: float = 0.6
    """Fixed seconds per run without compilation."""
    source: str = ""
    """Where the numbers come from; "estimate" in it when they were not measured on this card."""

    def measured_mfu(self, size: str) -> float:
        """Measured tokens/s x FLOPs per token (with attention, at vocabulary 502) / peak."""
        return self.tokens_per_second[size] * _flops(size) / (self.peak_tflops * 1e12)

    def mfu(self, size: str) -> float:
        """The MFU of `size`: measured, or interpolated in log N between the measured sizes (clamped)."""
        if size in self.tokens_per_second:
            return self.measured_mfu(size)
        measured = sorted((math.log(_params(name)), self.measured_mfu(name)) for name in self.tokens_per_second)
        x = math.log(_params(size))
        if x <= measured[0][0]:
            return measured[0][1]
        for (x0, m0), (x1, m1) in zip(measured, measured[1:]):
            if x <= x1:
                return m0 + (x - x0) / (x1 - x0) * (m1 - m0)
        return measured[-1][1]


def _params(size: str) -> int:
    return count_params(get_preset(size).shape(PAPER_VOCAB)).total


def _flops(size: str) -> int:
    return flops_per_token(get_preset(size).shape(PAPER_VOCAB), with_attention=True)


# One NVIDIA H200 (141 GB HBM3e, 4.8 TB/s), 2026-12-04: the slmscale rows of the training section.
H200 = GpuThroughput(
    name="h200", description="NVIDIA H200 SXM (141 GB)", peak_tflops=989.0, memory_gb=141.0,
    tokens_per_second={"20m": 2_082_612, "85m": 623_636, "309m": 204_861, "823m": 98_529},
    # Per update: the slope of wall seconds over updates of the 16 tiny-L4..L7 runs of
    # benchmarks/results/gpu_pilot_ladder_batch4096_bf16_2026-12-04.csv (4,096 tokens per update, bf16,
    # eager, about 1.4 runs at once): 29.6 ms, its intercept 0.6 s the eager fixed cost. Per compiled run:
    # the trainer check of the same session, 20 updates of the 85m (1.31M tokens, 2.2 s at its 605k
    # tokens/s) in 31.0 s wall with whole-model compilation, two validations and the test loss.
    update_seconds=0.030, run_seconds=29.0, eager_run_seconds=0.6,
    source=H200_SOURCE)

# An H100 SXM (80 GB HBM3, 3.35 TB/s) was not measured. Its bf16 dense peak is the H200's (989 TFLOP/s,
# both datasheets), and the measured micro-batches were planned for 80 GB (measured peaks 19-69 GB), so
# they fit it: the compute-bound throughput is taken equal to the H200's (ratio of peaks 1.0). The H200's
# 1.43x memory bandwidth makes the memory-bound share (norms, elementwise ops, the optimizer step; the 20m
# and the tiny sizes most) slower on an H100, by at most that ratio: an estimate, not a measurement.
H100 = GpuThroughput(
    name="h100", description="NVIDIA H100 SXM (80 GB)", peak_tflops=989.0, memory_gb=80.0,
    tokens_per_second={size: tps * 989.0 / H200.peak_tflops for size, tps in H200.tokens_per_second.items()},
    update_seconds=H200.update_seconds, run_seconds=H200.run_seconds, eager_run_seconds=H200.eager_run_seconds,
    source="estimate: the H200's numbers x the ratio of bf16 dense peaks (989/989 TFLOP/s); " + H200_SOURCE)

GPUS: dict[str, GpuThroughput] = {gpu.name: gpu for gpu in (H100, H200)}


def get_gpu(name: str) -> GpuThroughput:
    """The table of `name` (case-insensitive); an unknown name is a one-line ConfigError naming the known ones."""
    gpu = GPUS.get(name.lower())
    if gpu is None:
        raise ConfigError(f"--gpu {name!r}: no measured throughput for it; known GPUs: {', '.join(GPUS)}")
    return gpu


@dataclass(frozen=True)
class RunEstimate:
    """The estimated seconds of one training run on one GPU."""
    compute_seconds: float
    """D x FLOPs per token / (MFU x peak): the time the GPU's compute is busy."""
    floor_seconds: float
    """updates x update_seconds: the overhead-bound least time."""
    fixed_seconds: float
    """Start, compilation, validations, test loss."""

    @property
    def seconds(self) -> float:
        return max(self.compute_seconds, self.floor_seconds) + self.fixed_seconds

    @property
    def bound(self) -> str:
        return "compute" if self.compute_seconds >= self.floor_seconds else "overhead"


def estimate_run(gpu: GpuThroughput, size: str, shape: ModelShape, tokens: int, updates: int,
                 compiled: bool) -> RunEstimate:
    """A run of `size` at `shape` (its vocabulary and context), D = `tokens` in `updates` updates."""
    compute = tokens * flops_per_token(shape, with_attention=True) / (gpu.mfu(size) * gpu.peak_tflops * 1e12)
    return RunEstimate(compute, updates * gpu.update_seconds, gpu.run_seconds if compiled else gpu.eager_run_seconds)


def gpu_wall_seconds(estimates: list[RunEstimate], workers: int) -> float:
    """The sweep's wall time on one GPU with `workers` runs at once: one worker runs them in turn (the
    sum); several overlap at best what is not GPU compute, so never less than the summed compute."""
    total = sum(e.seconds for e in estimates)
    if workers <= 1:
        return total
    return max(sum(e.compute_seconds for e in estimates), total / workers)
