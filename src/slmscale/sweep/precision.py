"""One training precision per sweep, chosen once and recorded in SWEEP/precision.json.

A single run's `precision=auto` picks bf16 on a CPU with native bf16 only from width 128
(`slmscale.lm.plan.resolve_precision`, a speed rule). Inside a grid that rule trained the
largest sizes in bf16 and the rest in fp32: one grid, two precisions, a confound in the fitted
law. So a sweep resolves `auto` once for all its runs, writes the choice here, and hands it to
every run explicitly. A resumed sweep, on this machine or another, reuses the recorded choice;
an explicit `precision=` train override that disagrees with it is an error.

Sweeps from before this file have none: their choice is the precision all their completed
runs share, or, when those are mixed, a fresh one, and the runs trained in the other
precision are moved to SWEEP/superseded/ and retrained (`stale_precision`, `supersede`).
"""

from __future__ import annotations

import fcntl
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from slmscale.config import ConfigError, apply_overrides
from slmscale.files import read_json_object, write_json
from slmscale.lm.record import RECORD, RunRecord
from slmscale.provenance import utc_now
from slmscale.sweep.config import SweepConfig
from slmscale.sweep.grid import RunSpec

PRECISION_FILE = "precision.json"
LOCK_FILE = ".precision.lock"
SUPERSEDED = "superseded"
RUN_LOCK = ".lock"
"""The worker's flock file inside a run dir: it stays where it is when a run is superseded."""


def _train_defaults(cfg: SweepConfig):
    """The sweep's train overrides over TrainConfig's defaults (SweepConfig checked that they parse)."""
    from slmscale.lm.config import TrainConfig
    return apply_overrides(TrainConfig(), list(cfg.train))


def requested_precision(cfg: SweepConfig) -> str:
    """The `precision` of the sweep's train overrides (`auto` when they do not set it)."""
    return _train_defaults(cfg).precision


def run_device(cfg: SweepConfig) -> str:
    """"cuda" or "cpu": where this machine would train the sweep's runs (the trainer's rule)."""
    import torch
    device = _train_defaults(cfg).device
    return "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"


def grid_widths(specs: Iterable[RunSpec]) -> list[int]:
    from slmscale.lm.sizes import get_preset
    return sorted({get_preset(spec.size).width for spec in specs})


def machine_precision(widths: list[int], device: str) -> tuple[str, str]:
    """(precision, why) for every run of a grid with these model widths on this machine: bf16 only
    where it is supported, and on a CPU only where it pays for every width of the grid."""
    import torch
    from slmscale.lm import plan  # looked up at call time, so tests can stand in for the CPU check
    if device == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "the GPU supports bf16"
        return "fp32", "the GPU does not support bf16"
    if not plan.cpu_has_native_bf16():
        return "fp32", "this CPU has no native bf16 (AVX512-BF16/AMX), where bf16 autocast is about 10x slower"
    narrowest = min(widths) if widths else 0
    if narrowest < plan.CPU_BF16_MIN_WIDTH:
        return "fp32", (f"this CPU has native bf16, but it pays only from width {plan.CPU_BF16_MIN_WIDTH} and the "
                        f"grid has width {narrowest}; every run trains in one precision")
    return "bf16", f"this CPU has native bf16 and every width of the grid is at least {plan.CPU_BF16_MIN_WIDTH}"


def trained_precisions(sweep_dir: Path, specs: Iterable[RunSpec]) -> dict[str, str]:
    """run_id -> precision of the sweep's runs that completed training."""
    out = {}
    for spec in specs:
        record = RunRecord.peek(sweep_dir / "runs" / spec.run_id / RECORD)
        if record.status == "completed" and record.precision:
            out[spec.run_id] = str(record.precision)
    return out


def choose(sweep_dir: Path, cfg: SweepConfig, specs: list[RunSpec]) -> dict[str, Any]:
    """The sweep's precision and why, before it is recorded."""
    requested = requested_precision(cfg)
    base = {"requested": requested, "device": run_device(cfg), "widths": grid_widths(specs)}
    if requested != "auto":
        return {"precision": requested, **base, "reason": f"set by the sweep's train override precision={requested}"}
    trained = trained_precisions(sweep_dir, specs)
    kinds = sorted(set(trained.values()))
    if len(kinds) == 1:  # a sweep from before this file: keep what its runs trained in
        return {"precision": kinds[0], **base,
                "reason": f"the precision the {len(trained)} run(s) already completed trained in"}
    precision, why = machine_precision(base["widths"], base["device"])
    if kinds:
        other = sorted(run for run, kind in trained.items() if kind != precision)
        why += f"; {len(other)} run(s) trained before in another precision are retrained"
    return {"precision": precision, **base, "reason": why}


def read_choice(sweep_dir: Path) -> dict[str, Any] | None:
    path = sweep_dir / PRECISION_FILE
    if not path.is_file():
        return None
    choice = read_json_object(path)
    if choice.get("precision") not in ("fp32", "bf16"):
        raise ConfigError(f"{path}: precision {choice.get('precision')!r} is not fp32 or bf16; fix or delete the file")
    return choice


def check_override(sweep_dir: Path, cfg: SweepConfig, choice: dict[str, Any] | None) -> None:
    """An explicit precision that disagrees with the one the sweep's runs train in is an error."""
    if choice is None:
        return
    requested = requested_precision(cfg)
    if requested not in ("auto", choice["precision"]):
        raise ConfigError(f"train: precision={requested} conflicts with precision {choice['precision']}, which this "
                          f"sweep's runs train in ({sweep_dir / PRECISION_FILE}); drop the override or use a new --out")


def sweep_precision(sweep_dir: Path, cfg: SweepConfig, specs: list[RunSpec]) -> str:
    """The sweep's precision: the recorded one, else chosen now and recorded. Under a lock, so
    workers starting together (local, Slurm, torchrun ranks) record one choice and all read it."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        choice = read_choice(sweep_dir)
        if choice is None:
            choice = {**choose(sweep_dir, cfg, specs), "host": socket.gethostname(), "when": utc_now()}
            write_json(sweep_dir / PRECISION_FILE, choice)
        check_override(sweep_dir, cfg, choice)
    return choice["precision"]


def stale_precision(run_dir: Path, precision: str) -> str | None:
    """The precision a run dir's run was trained (or started) in, when it is not the sweep's."""
    trained = RunRecord.peek(run_dir / RECORD).precision
    return str(trained) if trained and trained != precision else None


def supersede(sweep_dir: Path, run_dir: Path, old: str) -> Path:
    """Move a run trained in another precision out of the way (kept, never deleted) so that it
    trains again; the run's lock file stays, since the caller holds it."""
    target = sweep_dir / SUPERSEDED / f"{run_dir.name}-{old}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = sweep_dir / SUPERSEDED / f"{run_dir.name}-{old}-{suffix}"
    target.mkdir(parents=True)
    for entry in run_dir.iterdir():
        if entry.name != RUN_LOCK:
            entry.rename(target / entry.name)
    return target
