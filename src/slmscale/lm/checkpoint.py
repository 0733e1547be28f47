"""Resumable training checkpoints: `RUN/checkpoint/` holds

    model.safetensors  the fp32 weights (slmscale names)
    trainer.pt         optimizer state, update index, tokens seen, wall time, RNG state

The data position is the update index: training windows are a function of (seed,
update), and the LR schedule a function of the update, so restoring the weights,
the AdamW moments and the index reproduces the uninterrupted run exactly on CPU.
`trainer.pt` holds only tensors and plain values and is read with weights_only=True.
The directory is written beside the old one and swapped in, so a kill mid-save
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from slmscale.files import StageError, ordinary_permissions

CHECKPOINT = "checkpoint"


@dataclass
class TrainerState:
    update: int = 0
    """Updates completed."""
    tokens: int = 0
    """Training tokens predicted so far."""
    wall_seconds: float = 0.0
    """Training wall time before this process started."""


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: TrainerState) -> None:
    final = run_dir / CHECKPOINT
    tmp = run_dir / f".{CHECKPOINT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
              str(tmp / "model.safetensors"), metadata={"format": "pt"})
    ordinary_permissions(tmp / "model.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "update": state.update, "tokens": state.tokens,
                "wall_seconds": state.wall_seconds, "torch_rng": torch.get_rng_state()},
               tmp / "trainer.pt")
    old = run_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def has_checkpoint(run_dir: Path) -> bool:
    if not (run_dir / CHECKPOINT).is_dir() and (run_dir / f".{CHECKPOINT}.old").is_dir():
        # Killed between the two renames of save_checkpoint: the old one is complete.
        try:
            (run_dir / f".{CHECKPOINT}.old").rename(run_dir / CHECKPOINT)
        except FileNotFoundError:
            pass  # another process of the same run renamed it first
    return (run_dir / CHECKPOINT / "trainer.pt").is_file()


def load_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    device: torch.device) -> TrainerState:
    path = run_dir / CHECKPOINT
    try:
        weights = load_file(str(path / "model.safetensors"), device=str(device))
        model.load_state_dict(weights, strict=True)
        saved: dict[str, Any] = torch.load(path / "trainer.pt", map_location=device, weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise StageError(f"{path}: cannot resume from this checkpoint ({err}); "
                         f"delete the run dir to start over") from err
    torch.set_rng_state(saved["torch_rng"].cpu())
    return TrainerState(update=int(saved["update"]), tokens=int(saved["tokens"]),
                        wall_seconds=float(saved["wall_seconds"]))
