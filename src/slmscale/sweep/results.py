"""SWEEP/results.csv, rebuilt from the run records every time (never appended to).

One row per run of the sweep, whatever its state: the fits read `params`, `tokens`, `loss`,
`unique_tokens`, `flops` and the metric columns (docs/DESIGN.md §4.10); a run that failed or is not done
has its status and error and empty results, never a guessed value.

`unique_tokens` is always the U a run draws its windows from: its own unique_tokens, else the
whole train split of its units dir, never blank for "one pass", because a run without
unique_tokens whose D exceeds the split repeats it. `epochs` is D/U, below 1 for a run that
used part of its pool (it then saw at most D distinct tokens; the data-constrained law takes
min(U, D) itself). A completed run's numbers come from its run record (what the trainer used);
the others' from the plan, blank only when the units dir is not built yet.

`precision` is what the trainer used (run.json), blank for a run that has not started: the
report checks that the runs it fits share one.

The runs a sweep takes from outside (`with_runs`, `sweep --with`) follow, in rows of grid "with"
whose `run_dir` names their run dir (sweep/with_runs.py); the sweep's own leave it blank
(SWEEP/runs/<run_id>).

The metric columns come from the run's eval.json, joined here with its run record (run.json is
the trainer's alone). A run dir evaluated before that rule also has them copied into run.json
(`downstream`), the same numbers as its eval.json: they are the fallback, so such a sweep's
results.csv reads as it did.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from slmscale.evaluate.eval_file import headline_metrics
from slmscale.files import read_json_object, write_text
from slmscale.lm.record import RECORD, RunRecord
from slmscale.sweep.config import SweepConfig
from slmscale.sweep.grid import RunSpec, train_split_tokens, unique_and_epochs
from slmscale.sweep.with_runs import with_run_rows
from slmscale.sweep.worker import DONE, FAILURE_FILE, load_sweep, run_stamp, run_state

RESULTS_FILE = "results.csv"
BASE_COLUMNS = ("run_id", "status", "grids", "variant", "corpus", "tokenizer", "modality", "size", "precision",
                "params", "non_embedding", "tokens", "unique_tokens", "epochs", "flops", "flops_with_attention", "loss",
                "loss_bits_per_second", "valid_loss", "wall_seconds", "error", "run_dir")


def _recorded_unique(record: RunRecord) -> int | None:
    """U from a run record; a record from before `unique_tokens` was written gives its config's
    U or the size of the train split it names."""
    if record.unique_tokens:
        return int(record.unique_tokens)
    config = record.config or {}
    split = (record.units or {}).get("splits", {}).get(config.get("train_split", "train"), {})
    return config.get("unique_tokens") or split.get("tokens")


def _data_columns(spec: RunSpec, record: RunRecord, done: bool,
                  train_tokens: int | None) -> dict[str, Any]:
    """unique_tokens and epochs: the trainer's for a completed run, else the plan's."""
    unique = _recorded_unique(record) if done else None
    if unique is None:
        unique, _ = unique_and_epochs(spec, train_tokens)
    return {"unique_tokens": unique or "", "epochs": f"{spec.tokens / unique:.6g}" if unique else ""}


def run_row(sweep_dir: Path, spec: RunSpec, stamp: str, train_tokens: int | None = None) -> dict[str, Any]:
    """One row; `train_tokens` is the size of the run's train split (None: not known)."""
    run_dir = sweep_dir / "runs" / spec.run_id
    record = RunRecord.peek(run_dir / RECORD)
    state = run_state(run_dir, stamp)
    status = {DONE: "completed", None: record.status or "pending"}.get(state, "failed")
    if state is None and status == "completed":
        status = "evaluating"  # trained; its zero-shot scores are not in yet
    row: dict[str, Any] = {"run_id": spec.run_id, "status": status, "grids": ";".join(spec.grids),
                           "variant": spec.variant, "corpus": spec.corpus, "tokenizer": spec.tokenizer,
                           "modality": spec.modality, "size": spec.size, "precision": record.precision or "",
                           "params": spec.params,
                           "tokens": spec.tokens, **_data_columns(spec, record, state == DONE, train_tokens),
                           "flops": f"{spec.flops:.6g}", "flops_with_attention": f"{spec.flops_with_attention:.6g}"}
    if status == "failed":
        failure = read_json_object(run_dir / FAILURE_FILE)
        row["error"] = failure.get("error") or record.error or ""
    if state == DONE:
        # The spec's attention FLOPs assume the preset's context; the record has the context trained.
        with_attention = record.flops_with_attention or spec.flops_with_attention
        row.update(non_embedding=(record.params or {})["non_embedding"], flops_with_attention=f"{with_attention:.6g}",
                   loss=record.test_loss, loss_bits_per_second=record.test_bits_per_second or "",
                   valid_loss=record.valid_loss, wall_seconds=record.wall_seconds)  # None: csv's blank
        row.update(headline_metrics(run_dir, record.fingerprint, record.copied_metrics))
    return row


def _train_tokens(cfg: SweepConfig, specs) -> dict[str, int | None]:
    """Train split size per units dir (read once each)."""
    return {units: train_split_tokens(units, cfg.train) for units in dict.fromkeys(s.units for s in specs)}


def write_results(sweep_dir: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """Rebuild SWEEP/results.csv from the records; returns its path and rows."""
    sweep_dir = Path(sweep_dir)
    cfg, specs = load_sweep(sweep_dir)
    splits = _train_tokens(cfg, specs.values())
    rows = [run_row(sweep_dir, spec, run_stamp(spec, cfg), splits[spec.units]) for spec in specs.values()]
    rows += with_run_rows(cfg, set(specs))
    metrics = sorted({key for row in rows for key in row} - set(BASE_COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*BASE_COLUMNS, *metrics], lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / RESULTS_FILE
    write_text(path, buffer.getvalue())
    return path, rows
