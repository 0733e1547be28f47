"""Data parallelism under torchrun: gloo on CPU, NCCL on GPUs.

Every process draws the same windows of an update (a function of seed and update
index) and takes its own slice of the sequences, so N processes compute the same
global batch as one; DDP averages the gradients. Rank 0 alone writes files.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def sum_floats(self, *values: float) -> list[float]:
        """Each value summed over the processes, in float64, with one all-reduce."""
        if not self.distributed:
            return list(values)
        return self.sum(torch.tensor(values, dtype=torch.float64, device=self.device)).tolist()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            # Free the garbage of the run (DDP's reducer and gloo work objects in reference cycles)
            # while the group and the interpreter are alive: left to interpreter shutdown, gloo's
            # threads could abort the process after a completed run ("terminate called without an
            # active exception"; 4 of 27 two-process runs on a loaded 2-core machine, 0 of 60 with
            # this; docs/LOG.md 2026-12-07).
            gc.collect()
            dist.destroy_process_group()


def start(device_choice: str) -> Processes:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); a plain run is rank 0 of 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    if device_choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but torch sees no CUDA device")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        # Long timeout: rank 0 evaluates the test split while the others wait.
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(hours=2))
    return Processes(rank, world_size, device)
