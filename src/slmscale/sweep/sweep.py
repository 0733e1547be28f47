"""`run_sweep(config, out)`: expand a sweep config, run what is not done, rebuild results.csv.

The sweep dir holds the resolved config (`sweep.yaml`, every path absolute) and the expanded
runs (`runs.json`); workers read those, never the user's file. Rerunning the same command
skips finished runs, resumes interrupted ones from their checkpoints and leaves failed ones
recorded (`--retry-failed` runs them again). Editing the config (more sizes, budgets) and
rerunning extends the sweep: ids name what a run is, so finished runs are kept. Runs from outside
(`with_runs`, `--with RUN`) only join results.csv: they are neither trained nor evaluated here. Every run
trains in the sweep's one precision, chosen when it starts and kept (`slmscale.sweep.precision`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import yaml

from slmscale.config import ConfigError, apply_overrides, load_config, to_dict
from slmscale.files import StageError, atomic_file, write_text
from slmscale.log import get_logger
from slmscale.sweep.config import SweepConfig, WithRun
from slmscale.sweep.grid import RunSpec, expand, train_tokens_of, unique_and_epochs
from slmscale.sweep.launchers import run_local, run_slurm, slurm_dry_run, split_cores
from slmscale.sweep.precision import (PRECISION_FILE, check_override, grid_widths, machine_precision, read_choice,
                                      requested_precision, run_device, stale_precision, sweep_precision)
from slmscale.sweep.results import write_results
from slmscale.sweep.with_runs import with_run_rows
from slmscale.sweep.worker import CONFIG_FILE, DONE, RUNS_FILE, load_sweep, run_stamp, run_state, spec_rows

log = get_logger(__name__)


def _absolute(paths: tuple[str, ...], base: Path) -> tuple[str, ...]:
    return tuple(str(p if Path(p).is_absolute() else (base / p).resolve()) for p in paths)


def resolve(config: str | Path, overrides: list[str] | tuple[str, ...] = (),
            with_runs: tuple[str, ...] = ()) -> tuple[SweepConfig, list[RunSpec]]:
    """Load, make every path absolute (relative to the config file; `with_runs`, the run dirs of `--with`,
    relative to the current directory), check the runs taken from outside, and expand."""
    config = Path(config)
    if not config.is_file():
        raise StageError(f"{config}: sweep config not found")
    cfg = load_config(SweepConfig, config, list(overrides))
    base = config.resolve().parent
    variants = tuple(v.resolved(base) for v in cfg.variants)
    taken = tuple(dataclasses.replace(w, run=_absolute((w.run,), base)[0]) for w in cfg.with_runs)
    cfg = dataclasses.replace(cfg, variants=variants, benchmarks=_absolute(cfg.benchmarks, base),
                              text_benchmarks=_absolute(cfg.text_benchmarks, base),
                              with_runs=taken + tuple(WithRun(str(Path(run).resolve())) for run in with_runs))
    for path in (*cfg.benchmarks, *cfg.text_benchmarks):
        if not Path(path).exists():
            raise ConfigError(f"{config}: benchmark {path} does not exist")
    specs = expand(cfg, base)
    with_run_rows(cfg, {spec.run_id for spec in specs})  # a run that cannot join the table fails here, not at the end
    return cfg, specs


def prepare(config: str | Path, sweep_dir: Path, overrides: list[str] | tuple[str, ...] = (),
            with_runs: tuple[str, ...] = ()) -> list[RunSpec]:
    """Write sweep.yaml and runs.json into the sweep dir (atomically); returns the runs."""
    cfg, specs = resolve(config, overrides, with_runs)
    check_override(sweep_dir, cfg, read_choice(sweep_dir))  # before anything of the sweep dir changes
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_text(sweep_dir / CONFIG_FILE, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    with atomic_file(sweep_dir / RUNS_FILE) as handle:
        json.dump(spec_rows(specs), handle, indent=1)
    return specs


def pending(sweep_dir: Path, retry_failed: bool = False) -> list[RunSpec]:
    """The runs still to do, and the finished ones trained in a precision other than the sweep's
    recorded one (a sweep from before it recorded one): the worker moves those aside and retrains."""
    cfg, specs = load_sweep(sweep_dir)
    choice = read_choice(sweep_dir)
    todo = []
    for spec in specs.values():
        run_dir = sweep_dir / "runs" / spec.run_id
        state = run_state(run_dir, run_stamp(spec, cfg))
        stale = choice is not None and stale_precision(run_dir, choice["precision"]) is not None
        if state is None or (state != DONE and retry_failed) or stale:
            todo.append(spec)
    return todo


def record_precision(sweep_dir: Path, launcher: str | None = None) -> str | None:
    """Choose and record the sweep's one precision now when its runs train on this machine (the
    local launcher), so that `pending` already sees runs trained in another one; a Slurm sweep's
    first task chooses on its own node. Returns the recorded precision, None when not chosen yet."""
    cfg, specs = load_sweep(sweep_dir)
    if (launcher or cfg.launcher) == "local":
        precision = sweep_precision(sweep_dir, cfg, list(specs.values()))
        log.info("%s: every run trains in %s (%s)", sweep_dir, precision, sweep_dir / PRECISION_FILE)
    return (read_choice(sweep_dir) or {}).get("precision")


def run_sweep(config: str | Path, sweep_dir: str | Path, launcher: str | None = None, workers: int | None = None,
              retry_failed: bool = False, overrides: list[str] | tuple[str, ...] = (),
              with_runs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run every unfinished run of the sweep; returns a summary (counts by status, results path).
    `with_runs`: completed run dirs from outside the sweep whose rows join results.csv (`--with`)."""
    sweep_dir = Path(sweep_dir)
    started = time.perf_counter()
    prepare(config, sweep_dir, overrides, with_runs)
    cfg, _ = load_sweep(sweep_dir)
    launcher = launcher or cfg.launcher
    record_precision(sweep_dir, launcher)
    todo = pending(sweep_dir, retry_failed)
    log.info("%s: %d runs to do", sweep_dir, len(todo))

    def refresh(run_id: str, state: str) -> None:
        write_results(sweep_dir)

    if todo:
        if launcher == "local":
            states = run_local(sweep_dir, todo, cfg.workers if workers is None else workers, retry_failed, refresh)
        elif launcher == "slurm":
            states = run_slurm(sweep_dir, todo, cfg.slurm, retry_failed, refresh)
        else:
            raise ConfigError(f"launcher {launcher!r} is not local or slurm")
    else:
        states = {}
    path, rows = write_results(sweep_dir)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"results": str(path), "runs": len(rows), "status": counts, "this_call": states,
            "precision": (read_choice(sweep_dir) or {}).get("precision"),
            "wall_seconds": round(time.perf_counter() - started, 1)}


def measure_tokens_per_second(size: str, vocab_size: int, threads: int, train: tuple[str, ...] = (),
                              steps: int = 2, precision: str = "fp32") -> float:
    """Training tokens/s of one size on this CPU: `steps` timed updates after a warm-up one, with the
    sweep's train overrides (context, tokens per update, micro-batch) and its precision (bf16 autocast
    runs at a very different speed from fp32, faster or ten times slower by CPU)."""
    import torch
    from slmscale.lm.config import TrainConfig
    from slmscale.lm.model import Llama, next_token_loss
    from slmscale.lm.plan import plan_run
    cfg = apply_overrides(TrainConfig(size=size, tokens=10 ** 9), list(train))
    plan = plan_run(cfg, vocab_size, 10 ** 9)
    torch.set_num_threads(threads)
    model = Llama(plan.shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, vocab_size, (plan.micro_batch_size, plan.shape.context + 1))
    timings = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        for _ in range(plan.micro_batches):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = next_token_loss(model(batch[:, :-1]), batch[:, 1:])
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timings.append(time.perf_counter() - start)
    return plan.tokens_per_update / min(timings[1:])


def _epochs_cell(spec: RunSpec, train_tokens: int | None) -> tuple[str, str | None]:
    """The plan's epochs column for one run, and a warning when its data repeats unasked or
    cannot be planned (a run with D above its train split and no unique_tokens repeats the
    split D/U times; it is not a single-epoch run)."""
    unique, epochs = unique_and_epochs(spec, train_tokens)
    if epochs is None:
        return "?", f"{spec.run_id}: epochs unknown, no train split in {spec.units} yet"
    if train_tokens is not None and unique > train_tokens:
        return f"{epochs:.3g}!", (f"{spec.run_id}: unique_tokens {unique:,} > the {train_tokens:,} tokens of the "
                                  f"train split; the run will fail")
    if spec.unique_tokens is None and epochs > 1:
        return f"{epochs:.3g}!", (f"{spec.run_id}: D = {spec.tokens:,} > the {unique:,} tokens of the train "
                                  f"split: the data repeats, {epochs:.2f} epochs")
    return f"{epochs:.3g}", None  # 3 digits: a short run's 0.004 epochs is not 0.0


def _planned_precision(cfg: SweepConfig, specs: list[RunSpec]) -> tuple[str, str]:
    """The precision a new sweep of this config would train every run in here, and why."""
    requested = requested_precision(cfg)
    if requested != "auto":
        return requested, f"train override precision={requested}"
    return machine_precision(grid_widths(specs), run_device(cfg))


def _run_plan(spec: RunSpec, cfg: SweepConfig, precision: str, train_tokens: int | None):
    """The run's plan (lm.plan.plan_run) as the worker will make it; with the units dir not built yet,
    at the paper's 502-entry vocabulary; None when the plan itself is impossible (`sweep` names the key
    when it runs)."""
    from slmscale.lm.plan import plan_run
    from slmscale.lm.sizes import PAPER_VOCAB
    from slmscale.sweep.worker import train_config
    from slmscale.units.shards import read_meta
    vocab = PAPER_VOCAB
    if train_tokens is not None:
        vocab = int(read_meta(spec.units)["vocab_size"])
    processes = cfg.slurm.gpus_per_run if cfg.launcher == "slurm" else 1
    try:
        return plan_run(train_config(spec, cfg, precision), vocab, train_tokens or spec.tokens, processes)
    except ConfigError:
        return None


def _memory_cell(plan) -> str:
    """Estimated peak GB per process (GPU) at the run's micro-batch (lm.plan.memory_estimate)."""
    if plan is None:
        return "?"
    gb = plan.memory_bytes / 1e9
    return f"{gb:.1f}G" if gb >= 1 else f"{gb:.2g}G"


def _gpu_estimate(gpu, spec: RunSpec, cfg: SweepConfig, plan):
    """The run's estimated time on `gpu` (sweep.gpu_throughput), None when its plan is impossible."""
    from slmscale.sweep.gpu_throughput import estimate_run
    from slmscale.sweep.worker import train_config
    if plan is None:
        return None
    compiled = train_config(spec, cfg, "bf16").compile
    return estimate_run(gpu, spec.size, plan.shape, spec.tokens, plan.updates, compiled)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def plan_table(config: str | Path, workers: int = 0, measure: bool = True,
               overrides: list[str] | tuple[str, ...] = (), launcher: str | None = None,
               sweep_dir: str | Path = "SWEEP", gpu: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """The grid as printable lines (run, grids, params, D, epochs, FLOPs, estimated memory per process
    (GPU), estimated hours) and totals;
    totals["warnings"] names the runs that repeat their data unasked or cannot be planned.
    `launcher` overrides the config's, as `sweep --launcher` does; with slurm the lines end with what
    the sweep would submit to Slurm (a dry run, `launchers.slurm_dry_run`), its paths under `sweep_dir`.
    `gpu` names a GPU of sweep.gpu_throughput: each run's time is estimated from its measured bf16
    throughput instead of measured here (nothing is trained)."""
    from slmscale.sweep.gpu_throughput import get_gpu, gpu_wall_seconds
    card = get_gpu(gpu) if gpu is not None else None  # an unknown name fails before anything is read
    cfg, specs = resolve(config, overrides)
    if launcher is not None:
        cfg = dataclasses.replace(cfg, launcher=launcher)  # the memory column counts its GPUs per run too
    workers, threads = split_cores(workers or cfg.workers)
    train_tokens = train_tokens_of(specs, cfg.train)
    speed: dict[tuple[str, str], float] = {}
    if card is not None:
        if requested_precision(cfg) == "fp32":
            raise ConfigError(f"--gpu {card.name}: its throughput table is bf16; this sweep trains in fp32 "
                              "(train override precision=fp32)")
        precision, why = "bf16", f"the bf16 throughput of --gpu {card.name}"
        measure = False
    else:
        precision, why = _planned_precision(cfg, specs)
    if measure:
        from slmscale.units.shards import read_meta
        for spec in specs:
            key = (spec.size, spec.units)
            if key not in speed:
                speed[key] = measure_tokens_per_second(spec.size, int(read_meta(spec.units)["vocab_size"]), threads,
                                                       cfg.train, precision=precision)
    lines = [f"{'run':<36} {'grids':<16} {'params':>9} {'tokens':>11} {'epochs':>7} {'FLOPs':>9} {'mem/GPU':>8} {'train':>8}"]
    total_seconds = 0.0
    warnings: list[str] = []
    estimates = []
    for spec in sorted(specs, key=lambda s: s.flops):
        plan = _run_plan(spec, cfg, precision, train_tokens[spec.run_id])
        seconds = spec.tokens / speed[(spec.size, spec.units)] if measure else None
        if card is not None:
            estimate = _gpu_estimate(card, spec, cfg, plan)
            seconds = None if estimate is None else estimate.seconds
            estimates += [estimate] if estimate is not None else []
            if plan is not None and plan.memory_bytes > card.memory_gb * 1e9:
                warnings.append(f"{spec.run_id}: {plan.memory_bytes / 1e9:.0f} GB planned per process, more than "
                                f"the {card.memory_gb:g} GB of one {card.name} (lower memory_gb or micro_batch_size)")
        total_seconds += seconds or 0.0
        epochs, warning = _epochs_cell(spec, train_tokens[spec.run_id])
        warnings += [warning] if warning else []
        lines.append(f"{spec.run_id:<36} {','.join(spec.grids):<16} {spec.params:>9,} {spec.tokens:>11,} "
                     f"{epochs:>7} {spec.flops:>9.2e} {_memory_cell(plan):>8} {'' if seconds is None else f'{seconds / 60:7.1f}m':>8}")
    timed = measure or card is not None
    wall = (gpu_wall_seconds(estimates, workers) if card is not None else total_seconds / workers) if timed else None
    totals = {"runs": len(specs), "flops": sum(s.flops for s in specs), "workers": workers, "threads": threads,
              "train_seconds": total_seconds if timed else None, "wall_seconds": wall, "warnings": warnings,
              "precision": precision, "gpu": card.name if card is not None else None,
              "compute_seconds": sum(e.compute_seconds for e in estimates) if card is not None else None}
    lines += [f"warning: {w}" for w in warnings]
    where = f"on one {card.name}" if card is not None else "on this machine"
    lines.append(f"precision: every run in {precision} {where} ({why}); a sweep records its choice in "
                 "SWEEP/precision.json when it starts and keeps it")
    if card is not None:
        bound = sum(e.seconds for e in estimates if e.bound == "overhead")
        lines.append(f"{len(specs)} runs, {totals['flops']:.3g} FLOPs in all; on one {card.description}: training "
                     f"about {_duration(total_seconds)} run after run ({_duration(totals['compute_seconds'])} of it "
                     f"GPU compute, {_duration(bound)} in overhead-bound runs), {_duration(wall)} wall on {workers} "
                     f"worker{'s' if workers > 1 else ''} sharing it (evaluation not included; throughput: {card.source})")
    else:
        lines.append(f"{len(specs)} runs, {totals['flops']:.3g} FLOPs in all" + (
            f"; training about {total_seconds / 60:.1f} worker-minutes, {wall / 60:.1f} min wall on "
            f"{workers} workers x {threads} threads (measured tokens/s per size here; evaluation not included)"
            if measure else ""))
    if cfg.launcher == "slurm":
        lines += slurm_dry_run(Path(sweep_dir), specs, cfg.slurm)
    return lines, totals
