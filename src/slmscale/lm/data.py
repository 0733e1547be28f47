"""Training and evaluation windows over a unit stream.

Training windows follow the paper's nanoGPT-style loader (docs/PAPER.md §2.5): windows
of context + 1 tokens from the concatenated stream, utterances separated by EOS, no
padding. The windows of update `u` are a pure function of (seed, u), so a resumed
run and a run split over DDP ranks draw exactly the same data as an uninterrupted
single-process run, and the data position to save is just the update index.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from slmscale.lm.model import next_token_loss


class TrainWindows:
    """Windows from the first `unique_tokens` tokens of a stream."""

    def __init__(self, stream: np.ndarray, context: int, unique_tokens: int, sampling: str, seed: int):
        if unique_tokens > len(stream):
            raise ValueError(f"unique_tokens {unique_tokens} > {len(stream)} tokens in the split")
        if unique_tokens < context + 1:
            raise ValueError(f"unique_tokens {unique_tokens} is shorter than one window "
                             f"(context {context} + 1)")
        self.stream, self.context, self.sampling, self.seed = stream, context, sampling, seed
        self.unique_tokens = unique_tokens
        # `epochs`: non-overlapping windows sharing one boundary token, a new order each epoch.
        self.windows_per_epoch = (unique_tokens - 1) // context
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def starts(self, update: int, sequences: int) -> np.ndarray:
        """Start offsets of the `sequences` windows of one update."""
        if self.sampling == "random":
            rng = np.random.default_rng([self.seed, update])
            return rng.integers(0, self.unique_tokens - self.context, size=sequences)
        first = update * sequences
        return np.array([self._epoch_start(first + j) for j in range(sequences)], dtype=np.int64)

    def _epoch_start(self, index: int) -> int:
        epoch, position = divmod(index, self.windows_per_epoch)
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            order = np.random.default_rng([self.seed, 1_000_003, epoch]).permutation(self.windows_per_epoch)
            self._epoch_order = (epoch, order)
        return int(self._epoch_order[1][position]) * self.context

    def batch(self, update: int, sequences: int, rows: slice = slice(None)) -> torch.Tensor:
        """(sequences, context + 1) int64 token windows of one update, or only `rows` of them
        (a DDP process reads just its share; the draws are the same in every process)."""
        starts = self.starts(update, sequences)[rows]
        offsets = starts[:, None] + np.arange(self.context + 1)
        return torch.from_numpy(np.asarray(self.stream[offsets], dtype=np.int64))


def eval_windows(stream: np.ndarray, context: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Consecutive windows of up to context + 1 tokens sharing one boundary token, so every
    token after the first of the (capped) stream is predicted exactly once."""
    length = len(stream) if max_tokens is None else min(len(stream), max_tokens)
    return [np.asarray(stream[start:min(start + context + 1, length)], dtype=np.int64)
            for start in range(0, length - 1, context)]


def batches_of_windows(windows: list[np.ndarray], batch_size: int) -> list[torch.Tensor]:
    """Group equal-length windows into (batch, length) tensors; the short last window alone."""
    full = [w for w in windows if len(w) == len(windows[0])]
    rest = [w for w in windows if len(w) != len(windows[0])]
    batches = [torch.from_numpy(np.stack(full[i:i + batch_size])) for i in range(0, len(full), batch_size)]
    return batches + [torch.from_numpy(w[None]) for w in rest]


def split_loss(model: torch.nn.Module, stream: np.ndarray, context: int, batch_size: int,
               device: torch.device, max_tokens: int | None = None) -> tuple[float, int]:
    """Mean next-token loss (nats) over a stream, in fp32, and how many tokens it predicted."""
    total, count = split_loss_sum(model, stream, context, batch_size, device, max_tokens)
    return total / max(count, 1), count


@torch.no_grad()
def split_loss_sum(model: torch.nn.Module, stream: np.ndarray, context: int, batch_size: int,
                   device: torch.device, max_tokens: int | None = None,
                   shard: tuple[int, int] = (0, 1)) -> tuple[float, int]:
    """The summed next-token loss (nats) over a stream and how many tokens it predicted, so that the
    losses of several streams pool exactly (a mixture's test sets).

    `shard=(rank, world_size)` takes every world_size-th window from `rank` on: the processes of a
    data-parallel run split one evaluation and sum their parts (lm/trainer.py), instead of rank 0
    evaluating while the other GPUs wait. Matmuls run in fp32; on CUDA with TF32 tensor cores (10
    mantissa bits, against bf16's 7; faster than bf16 autocast for forward-only passes on an H200,
    docs/LOG.md 2026-12-04), the loss itself always in fp32. The sum stays on the device until the
    end: one host read per split, not one per batch."""
    rank, world_size = shard
    was_training = model.training
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    windows = eval_windows(stream, context, max_tokens)[rank::world_size]
    with tf32_matmuls(device):
        for batch in batches_of_windows(windows, batch_size) if windows else []:
            batch = batch.to(device)
            total += next_token_loss(model(batch[:, :-1]), batch[:, 1:])
            count += batch.shape[0] * (batch.shape[1] - 1)
    model.train(was_training)
    return float(total), count


@contextlib.contextmanager
def tf32_matmuls(device: torch.device) -> Iterator[None]:
    """TF32 matmuls on CUDA for the block, the process-wide setting restored after it."""
    if device.type != "cuda":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)
