"""SWEEP/results.csv, rebuilt from the run records every time (never appended to).

One row per run of the sweep, whatever its state: the fits read `params`, `tokens`, `loss`,
`unique_tokens`, `flops` and the metric columns (DESIGN.md); a run that failed or is not done
has its status and error and empty numbers, never a guessed value.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from slmscale.files import write_text
from slmscale.sweep.grid import RunSpec
from slmscale.sweep.worker import DONE, FAILURE_FILE, load_sweep, run_stamp, run_state

RESULTS_FILE = "results.csv"
BASE_COLUMNS = ("run_id", "status", "grids", "variant", "corpus", "tokenizer", "modality", "size", "params",
                "non_embedding", "tokens", "unique_tokens", "epochs", "flops", "flops_with_attention", "loss",
                "loss_bits_per_second", "valid_loss", "wall_seconds", "error")


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def run_row(sweep_dir: Path, spec: RunSpec, stamp: str) -> dict[str, Any]:
    run_dir = sweep_dir / "runs" / spec.run_id
    record = _read(run_dir / "run.json")
    state = run_state(run_dir, stamp)
    status = {DONE: "completed", None: record.get("status", "pending")}.get(state, "failed")
    if state is None and status == "completed":
        status = "evaluating"  # trained; its zero-shot scores are not in yet
    row: dict[str, Any] = {"run_id": spec.run_id, "status": status, "grids": ";".join(spec.grids),
                           "variant": spec.variant, "corpus": spec.corpus, "tokenizer": spec.tokenizer,
                           "modality": spec.modality, "size": spec.size, "params": spec.params,
                           "tokens": spec.tokens, "unique_tokens": spec.unique_tokens or "",
                           "flops": f"{spec.flops:.6g}", "flops_with_attention": f"{spec.flops_with_attention:.6g}"}
    if status == "failed":
        failure = _read(run_dir / FAILURE_FILE)
        row["error"] = failure.get("error") or record.get("error", "")
    if state == DONE:
        row.update(non_embedding=record["params"]["non_embedding"], epochs=record.get("epochs", ""),
                   loss=record["test_loss"], loss_bits_per_second=record.get("test_bits_per_second") or "",
                   valid_loss=record.get("valid_loss", ""), wall_seconds=record.get("wall_seconds", ""))
        row.update(record.get("downstream", {}))
    return row


def write_results(sweep_dir: str | Path) -> tuple[Path, list[dict[str, Any]]]:
    """Rebuild SWEEP/results.csv from the records; returns its path and rows."""
    sweep_dir = Path(sweep_dir)
    cfg, specs = load_sweep(sweep_dir)
    rows = [run_row(sweep_dir, spec, run_stamp(spec, cfg)) for spec in specs.values()]
    metrics = sorted({key for row in rows for key in row} - set(BASE_COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*BASE_COLUMNS, *metrics], lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / RESULTS_FILE
    write_text(path, buffer.getvalue())
    return path, rows
