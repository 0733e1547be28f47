"""The results table that scaling fits read: one row per training run (docs/DESIGN.md §4.10).

Required: `params` (total parameters N) and `tokens` (training tokens D) or `flops`
(then D = C/6N, as Epoch AI does for the digitised Chinchilla points). Optional: `loss`,
`unique_tokens` (U; epochs = D/U; an empty cell is D/epochs where an `epochs` column
gives them, else one pass, U = D), `flops` (default 6ND),
`run_id`, and any other numeric column, kept as a metric (sblimp, ssc, ...). A `status`
column (a sweep's results.csv) keeps the completed runs only. Published tables use other names for the same
columns; the aliases below read them as they are, so the reference files need no editing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from slmscale.files import StageError, read_csv_rows

ALIASES = {
    "params": ("params", "params_N", "Model Size", "N"),
    "tokens": ("tokens", "tokens_D", "D"),
    "loss": ("loss", "val_loss", "test_loss"),
    "unique_tokens": ("unique_tokens", "unique_tokens_U", "U"),
    "flops": ("flops", "Training FLOP", "C"),
    "run_id": ("run_id", "run_name", "model", "name"),
}
"""Column -> the header names it is read from, first match wins."""
POSITIVE = ("params", "tokens", "loss", "unique_tokens", "flops")


@dataclass
class ResultsTable:
    params: np.ndarray
    """Total parameters N per run (float64)."""
    tokens: np.ndarray
    """Training tokens D per run, repeats counted."""
    flops: np.ndarray
    """Training compute C per run: the file's column, or 6ND."""
    loss: np.ndarray | None = None
    unique_tokens: np.ndarray | None = None
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    """Other numeric columns (NaN where a cell is empty)."""
    run_ids: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.params)

    @property
    def epochs(self) -> np.ndarray:
        return self.tokens / self.unique_tokens if self.unique_tokens is not None else np.ones(len(self))

    def subset(self, keep: np.ndarray) -> ResultsTable:
        """The rows where `keep` (a boolean mask or index array) selects."""
        def pick(values):
            return None if values is None else values[keep]
        index = np.arange(len(self))[keep]
        return replace(self, params=self.params[keep], tokens=self.tokens[keep], flops=self.flops[keep],
                       loss=pick(self.loss), unique_tokens=pick(self.unique_tokens),
                       metrics={k: v[keep] for k, v in self.metrics.items()},
                       run_ids=[self.run_ids[i] for i in index] if self.run_ids else [])

    def require_loss(self, law: str) -> np.ndarray:
        if self.loss is None:
            raise StageError(f"{self.source}: the {law} law needs a loss column (loss, val_loss or test_loss)")
        return self.loss


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise StageError(f"{path}:{line}: column {column!r} has {text!r}, not a number") from None
    return value


def _unique_from(row: dict[str, str], tokens: str | None, path: Path, line: int) -> str:
    if tokens is None:
        return ""
    epochs = (row.get("epochs") or "").strip()
    if epochs:
        return repr(_number(row[tokens], path, line, tokens) / _number(epochs, path, line, "epochs"))
    return row[tokens]


def read_table(path: str | Path, drop_highest_loss: int = 0) -> ResultsTable:
    """Read a results CSV; `drop_highest_loss` removes that many highest-loss rows (Epoch AI
    drops 5 of the 245 Chinchilla points)."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: results table not found")
    header, rows = read_csv_rows(path)
    if "status" in header:  # a sweep's results.csv: runs that failed or are not done carry no numbers
        rows = [row for row in rows if row["status"] == "completed"]
    if not rows:
        raise StageError(f"{path}: no rows" + (" with status completed" if "status" in header else ""))
    found = {key: next((name for name in names if name in header), None) for key, names in ALIASES.items()}
    if found["params"] is None or (found["tokens"] is None and found["flops"] is None):
        raise StageError(f"{path}: needs a params column and a tokens or flops column (has {', '.join(header)})")
    columns: dict[str, np.ndarray] = {}
    for key in POSITIVE:
        if found[key] is None:
            continue
        cells = [row[found[key]] for row in rows]
        if key == "unique_tokens":  # empty: D/epochs where an epochs column says, else one pass (U = D)
            cells = [cell if cell.strip() else _unique_from(row, found["tokens"], path, line)
                     for line, (cell, row) in enumerate(zip(cells, rows), 2)]
        values = np.array([_number(cell, path, line, found[key]) for line, cell in enumerate(cells, 2)])
        bad = np.flatnonzero(~(values > 0) | ~np.isfinite(values))
        if bad.size:
            raise StageError(f"{path}:{bad[0] + 2}: column {found[key]!r} must be a positive number, "
                             f"got {values[bad[0]]}")
        columns[key] = values
    params = columns["params"]
    tokens = columns.get("tokens", columns.get("flops", params) / (6 * params))
    used = {name for name in found.values() if name}
    metrics = {}
    for name in header:
        if name in used:
            continue
        cells = [row[name].strip() for row in rows]
        try:
            metrics[name] = np.array([float(c) if c else math.nan for c in cells])
        except ValueError:
            continue  # a text column (colours, notes): not a metric
    table = ResultsTable(params=params, tokens=tokens, flops=columns.get("flops", 6 * params * tokens),
                         loss=columns.get("loss"), unique_tokens=columns.get("unique_tokens"), metrics=metrics,
                         run_ids=[row[found["run_id"]] for row in rows] if found["run_id"] else [],
                         source=str(path))
    if drop_highest_loss:
        loss = table.require_loss("drop_highest_loss")
        if drop_highest_loss >= len(table):
            raise StageError(f"{path}: cannot drop {drop_highest_loss} of {len(table)} rows")
        table = table.subset(np.sort(np.argsort(loss, kind="stable")[:len(table) - drop_highest_loss]))
    return table


REFERENCE = Path(__file__).resolve().parent / "reference"
"""Reference data shipped with the package: pythia/downstream.csv, slm_scaling/results.csv."""
