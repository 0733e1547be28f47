"""One run of a sweep, start to finish: train to its exact D, then evaluate it zero-shot.

Whoever executes a run (a local worker process, a Slurm array task, torchrun inside one)
calls `run_one(SWEEP, RUN_ID)`. It takes the run's lock first, a `flock` on
runs/<id>/.lock that the kernel drops when the process dies, so two drivers never train the
same run at once and a SIGKILLed worker leaves no stale lock. A run ends with
`sweep_done.json` (its stamp: spec and configs) or `failure.json` (the error, never a
number); interrupted work resumes from the trainer's checkpoint on the next call. Every run
trains in the sweep's recorded precision (SWEEP/precision.json), passed to the trainer explicitly.
A run dir trained with other train settings than the sweep now gives it (an edited `train`
override, a study's `unigram_train`) is moved to SWEEP/superseded/ and trained again, as a run of
another precision is: its old results are kept, never mixed with the new ones.

    python -m slmscale.sweep.worker SWEEP RUN_ID [--threads T] [--retry-failed] [--state-file F]

`--state-file`: rank 0 also writes its state there as JSON, for a caller that cannot see the exit
code (torchrun exits 1 whatever code a worker exited with; sweep/slurm_task.py).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slmscale.config import apply_overrides, fingerprint, load_config, to_dict
from slmscale.files import StageError, read_json, write_json
from slmscale.lm.record import RECORD, RunRecord
from slmscale.log import get_logger
from slmscale.provenance import utc_now
from slmscale.sweep.config import SweepConfig
from slmscale.sweep.grid import RunSpec, training_data
from slmscale.sweep.precision import stale_precision, supersede, sweep_precision

CONFIG_FILE = "sweep.yaml"
RUNS_FILE = "runs.json"
DONE_FILE = "sweep_done.json"
FAILURE_FILE = "failure.json"
BUSY, DONE, FAILED, INTERRUPTED = "busy", "done", "failed", "interrupted"
EXIT_CODES = {DONE: 0, FAILED: 1, BUSY: 3, INTERRUPTED: 4}
"""The worker process's exit code per state (INTERRUPTED: stopped by a signal with a checkpoint saved;
the next call resumes it, it is not a failure)."""
log = get_logger(__name__)


def load_sweep(sweep_dir: Path) -> tuple[SweepConfig, dict[str, RunSpec]]:
    """The resolved config and expanded runs a driver wrote into the sweep dir."""
    for name in (CONFIG_FILE, RUNS_FILE):
        if not (sweep_dir / name).is_file():
            raise StageError(f"{sweep_dir}: no {name}; start the sweep with `slmscale sweep CONFIG --out {sweep_dir}`")
    cfg = load_config(SweepConfig, sweep_dir / CONFIG_FILE)
    specs = {row["run_id"]: RunSpec(**row) for row in read_json(sweep_dir / RUNS_FILE)}
    return cfg, specs


def run_stamp(spec: RunSpec, cfg: SweepConfig) -> str:
    """What a finished run depends on: its spec and the sweep's train and eval settings."""
    benchmarks = cfg.benchmarks if spec.modality == "audio" else cfg.text_benchmarks
    # The variant's overrides count with the sweep's (so a run without any keeps its old stamp); an empty
    # mixture (one units dir) is left out for the same reason.
    spec_items = {k: v for k, v in asdict(spec).items() if k not in ("grids", "train") and (k != "mixture" or v)}
    return fingerprint({"spec": spec_items,
                        "train": [*cfg.train, *spec.train], "eval": list(cfg.eval), "benchmarks": list(benchmarks),
                        "seed": cfg.seed})


def run_state(run_dir: Path, stamp: str) -> str | None:
    """DONE when finished with this stamp, FAILED when it failed, None when still to do."""
    done = run_dir / DONE_FILE
    if done.is_file() and read_json(done).get("stamp") == stamp:
        return DONE
    return FAILED if (run_dir / FAILURE_FILE).is_file() else None


def stale_config(run_dir: Path, spec: RunSpec, cfg: SweepConfig) -> bool:
    """True when `run_dir` holds a run (finished or not) whose train config is not the one the sweep
    now gives it. Threads and precision are left out: threads say how a run executes, not what it
    is, and a run of another precision is `stale_precision`'s (a sweep's runs once recorded `auto`)."""
    trained = RunRecord.peek(run_dir / RECORD).config
    if not isinstance(trained, dict):
        return False
    wanted = to_dict(train_config(spec, cfg, "auto"))
    return any(trained.get(key) != value for key, value in wanted.items() if key not in ("threads", "precision"))


@contextmanager
def run_lock(run_dir: Path) -> Iterator[bool]:
    """Yield True holding the run's exclusive lock, or False when another process holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / ".lock", "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield True
    finally:
        handle.close()  # closing releases the flock


def train_config(spec: RunSpec, cfg: SweepConfig, precision: str, threads: int | None = None):
    """The run's TrainConfig: spec, the sweep's train overrides, its variant's, and the sweep's one
    precision (never `auto`, whose per-width rule would mix precisions inside the grid)."""
    from slmscale.lm.config import TrainConfig
    train_cfg = TrainConfig(size=spec.size, tokens=spec.tokens, unique_tokens=spec.unique_tokens, seed=cfg.seed)
    train_cfg = apply_overrides(train_cfg, [*cfg.train, *spec.train, f"precision={precision}"])
    return apply_overrides(train_cfg, [f"threads={threads}"]) if threads else train_cfg


def _evaluate(sweep_dir: Path, run_dir: Path, spec: RunSpec, cfg: SweepConfig, threads: int | None) -> None:
    from slmscale.evaluate.config import EvalConfig
    from slmscale.evaluate.evaluate import evaluate_run
    benchmarks = cfg.benchmarks if spec.modality == "audio" else cfg.text_benchmarks
    if not benchmarks:
        return
    # cache_dir stays eval's default unless the sweep's eval overrides set it: benchmark units are
    # keyed by tokenizer fingerprint and files, so every sweep, study and `slmscale eval` of a
    # tokenizer shares one copy (a per-sweep SWEEP/cache extracted the same features again per sweep).
    eval_cfg = apply_overrides(EvalConfig(workers=1), list(cfg.eval))
    if threads:
        eval_cfg = apply_overrides(eval_cfg, [f"threads={threads}"])
    evaluate_run(run_dir, list(benchmarks), eval_cfg)


def _execute(sweep_dir: Path, run_dir: Path, spec: RunSpec, cfg: SweepConfig, stamp: str,
             threads: int | None, precision: str) -> str:
    from slmscale.lm.stop_signals import TrainingStopped
    from slmscale.lm.trainer import train
    try:
        record = train(training_data(spec), run_dir, train_config(spec, cfg, precision, threads))
        if os.environ.get("RANK", "0") != "0":
            return DONE  # under torchrun rank 0 evaluates and writes the markers
        _evaluate(sweep_dir, run_dir, spec, cfg, threads)
    except TrainingStopped as err:  # a time limit or preemption: resumed by the next call, not failed
        log.warning("%s: %s", spec.run_id, err)
        return INTERRUPTED
    except Exception as err:  # recorded, never turned into a number
        if os.environ.get("RANK", "0") == "0":
            write_json(run_dir / FAILURE_FILE, {"status": "failed", "run_id": spec.run_id, "error": str(err),
                                                "type": type(err).__name__, "when": utc_now(),
                                                "traceback": traceback.format_exc(limit=6)[-4000:]})
        return FAILED
    write_json(run_dir / DONE_FILE, {"stamp": stamp, "run_id": spec.run_id, "finished": utc_now(),
                                     "test_loss": record.get("test_loss")})
    (run_dir / FAILURE_FILE).unlink(missing_ok=True)
    return DONE


def run_one(sweep_dir: str | Path, run_id: str, threads: int | None = None, retry_failed: bool = False) -> str:
    """Train and evaluate one run; returns DONE, FAILED or BUSY (another process holds it)."""
    sweep_dir = Path(sweep_dir)
    cfg, specs = load_sweep(sweep_dir)
    if run_id not in specs:
        raise StageError(f"{sweep_dir}: no run {run_id!r} in {RUNS_FILE}")
    spec, run_dir = specs[run_id], sweep_dir / "runs" / run_id
    stamp = run_stamp(spec, cfg)
    precision = sweep_precision(sweep_dir, cfg, list(specs.values()))
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and os.environ.get("RANK", "0") != "0":
        return _execute(sweep_dir, run_dir, spec, cfg, stamp, threads, precision)  # rank 0 holds the lock
    with run_lock(run_dir) as locked:
        if not locked:
            return BUSY
        old = stale_precision(run_dir, precision)
        if old:  # trained before the sweep fixed its precision: kept aside, trained again
            moved = supersede(sweep_dir, run_dir, old)
            log.warning("%s: trained in %s, the sweep trains in %s; moved to %s", run_id, old, precision, moved)
        elif stale_config(run_dir, spec, cfg):  # the sweep's train settings changed since: kept aside
            moved = supersede(sweep_dir, run_dir, "config")
            log.warning("%s: trained with other train settings than the sweep's now; moved to %s", run_id, moved)
        state = run_state(run_dir, stamp)
        if state == DONE or (state == FAILED and not retry_failed):
            return state
        return _execute(sweep_dir, run_dir, spec, cfg, stamp, threads, precision)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slmscale.sweep.worker", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("run_id")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--retry-failed", action="store_true")
    parser.add_argument("--state-file", type=Path)
    args = parser.parse_args(argv)
    from slmscale.log import setup_logging
    setup_logging(0)
    state = run_one(args.sweep_dir, args.run_id, args.threads, args.retry_failed)
    print(json.dumps({"run_id": args.run_id, "state": state}), flush=True)
    if args.state_file is not None and os.environ.get("RANK", "0") == "0":
        write_json(args.state_file, {"run_id": args.run_id, "state": state})
    return EXIT_CODES[state]


def spec_rows(specs: list[RunSpec]) -> list[dict[str, Any]]:
    return [asdict(spec) for spec in specs]


if __name__ == "__main__":
    sys.exit(main())
