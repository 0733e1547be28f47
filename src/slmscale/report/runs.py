"""A sweep's results.csv as the report needs it: completed runs grouped by data variant.

`slmscale.scaling.table.read_table` keeps only the completed rows of one table, while the
report needs the failed rows too (its list of errors) and one `ResultsTable` per data variant,
so this module splits the rows itself and builds each variant's table directly from its
completed rows (no temporary CSV). Columns as written by `slmscale.sweep.results`.

Each run's training precision (the `precision` column, blank in tables from before it) and the
sweep's recorded choice (SWEEP/precision.json) are kept: one law must not mix precisions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slmscale.files import StageError, read_csv_rows, read_json_object
from slmscale.scaling.table import ResultsTable

RESULTS_FILE = "results.csv"
REQUIRED = ("run_id", "status", "variant", "params", "tokens", "loss")
DESCRIPTIVE = ("run_id", "status", "grids", "variant", "corpus", "tokenizer", "modality", "size", "precision",
               "params", "non_embedding", "tokens", "unique_tokens", "epochs", "flops", "flops_with_attention", "loss",
               "loss_bits_per_second", "valid_loss", "wall_seconds", "error", "run_dir")
"""The columns of results.csv that are not zero-shot metrics (slmscale.sweep.results.BASE_COLUMNS)."""
BASELINE = re.compile(r"^kn\d+_")
"""Prefix of the n-gram baseline's copy of each metric (kn5_sblimp beside sblimp)."""
SINGLE_EPOCH = 1.0 + 1e-9
PRECISION_FILE = "precision.json"
"""The sweep's one training precision (slmscale.sweep.precision), beside results.csv."""


@dataclass
class VariantRuns:
    """The completed runs of one data variant."""
    name: str
    modality: str
    corpus: str
    tokenizer: str
    grids: set[str]
    sizes: list[str]
    """Size preset per run, aligned with `table`."""
    table: ResultsTable
    bits_per_second: np.ndarray
    """Test loss in bits per second of audio per run (NaN where not measured, e.g. text)."""
    precisions: list[str] = field(default_factory=list)
    """Training precision per run, aligned with `table` ("" where results.csv does not record it)."""

    def precision_counts(self) -> dict[str, int]:
        """Runs per recorded precision (runs without one are left out)."""
        counts: dict[str, int] = {}
        for precision in self.precisions:
            if precision:
                counts[precision] = counts.get(precision, 0) + 1
        return counts

    @property
    def speech(self) -> bool:
        return self.modality != "text"

    def single_epoch(self) -> ResultsTable:
        return self.table.subset(self.table.epochs <= SINGLE_EPOCH)

    def metric_table(self, metric: str) -> ResultsTable:
        """The runs that have `metric` (a run evaluated on fewer benchmarks has NaN there)."""
        values = self.table.metrics.get(metric)
        return self.table.subset(np.isfinite(values) if values is not None else np.zeros(len(self.table), bool))


@dataclass
class Sweep:
    path: Path
    variants: dict[str, VariantRuns]
    failed: list[dict[str, str]]
    status_counts: dict[str, int]
    metrics: list[str]
    """Headline metric columns (no n-gram copies, no `_sum` scoring variants)."""
    rows: list[dict[str, str]] = field(default_factory=list)
    """Every completed row as read, for the runs table."""
    precision_choice: dict | None = None
    """The sweep's recorded precision choice (precision.json beside results.csv), if any."""

    def speech(self) -> list[VariantRuns]:
        return [v for v in self.variants.values() if v.speech]

    def text(self) -> list[VariantRuns]:
        return [v for v in self.variants.values() if not v.speech]


def headline_metric(name: str) -> bool:
    """A score to scale: not the n-gram's copy, not the summed-likelihood variant, not an item count."""
    return not BASELINE.match(name) and not name.endswith(("_sum", "_n"))


def _number(row: dict[str, str], column: str, path: Path, line: int, positive: bool = True) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise StageError(f"{path}:{line}: completed run {row.get('run_id')!r} has {column}={text!r}, "
                         f"not a number") from None
    if positive and not (math.isfinite(value) and value > 0):
        raise StageError(f"{path}:{line}: completed run {row.get('run_id')!r} has {column}={value}, "
                         f"not a positive number")
    return value


def _optional(row: dict[str, str], column: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        return float(text) if text else math.nan
    except ValueError:
        return math.nan


def _unique_tokens(row: dict[str, str], tokens: float, path: Path, line: int) -> float:
    """U, the pool a run drew from: its unique_tokens cell, else D/epochs. A run that records
    neither is not read as one pass: a run that repeated its data would enter the single-epoch fit."""
    if (row.get("unique_tokens") or "").strip():
        return _number(row, "unique_tokens", path, line)
    if (row.get("epochs") or "").strip():
        return tokens / _number(row, "epochs", path, line)
    raise StageError(f"{path}:{line}: completed run {row.get('run_id')!r} records neither unique_tokens nor epochs; "
                     f"rebuild results.csv with `slmscale sweep`")


def _variant(name: str, rows: list[tuple[int, dict[str, str]]], metrics: list[str], path: Path) -> VariantRuns:
    params = np.array([_number(r, "params", path, i) for i, r in rows])
    tokens = np.array([_number(r, "tokens", path, i) for i, r in rows])
    flops = np.array([_number(r, "flops", path, i) if (r.get("flops") or "").strip() else 6 * n * d
                      for (i, r), n, d in zip(rows, params, tokens)])
    unique = np.array([_unique_tokens(r, d, path, i) for (i, r), d in zip(rows, tokens)])
    table = ResultsTable(params=params, tokens=tokens, flops=flops,
                         loss=np.array([_number(r, "loss", path, i) for i, r in rows]), unique_tokens=unique,
                         metrics={m: np.array([_optional(r, m) for _, r in rows]) for m in metrics},
                         run_ids=[r["run_id"] for _, r in rows], source=f"{path} (variant {name})")
    first = rows[0][1]
    return VariantRuns(name=name, modality=first.get("modality") or "audio", corpus=first.get("corpus") or "",
                       tokenizer=first.get("tokenizer") or "",
                       grids={g for _, r in rows for g in (r.get("grids") or "").split(";") if g},
                       sizes=[r.get("size") or "" for _, r in rows], table=table,
                       bits_per_second=np.array([_optional(r, "loss_bits_per_second") for _, r in rows]),
                       precisions=[(r.get("precision") or "").strip() for _, r in rows])


def read_precision_choice(results: Path) -> dict | None:
    """SWEEP/precision.json beside a results table, or None (absent, unreadable: a sweep from before it)."""
    return read_json_object(results.parent / PRECISION_FILE) or None


def read_sweep(sweep_dir: str | Path) -> Sweep:
    """Read SWEEP/results.csv (or a results CSV given directly)."""
    path = Path(sweep_dir)
    path = path / RESULTS_FILE if path.is_dir() else path
    if not path.is_file():
        raise StageError(f"{path}: no results table (run `slmscale sweep` first)")
    header, rows = read_csv_rows(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise StageError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(header)})")
    completed = [(line, row) for line, row in enumerate(rows, 2) if row["status"] == "completed"]
    if not completed:
        raise StageError(f"{path}: no completed runs ({len(rows)} rows)")
    extra = [c for c in header if c not in DESCRIPTIVE]
    metrics = [c for c in extra if any(np.isfinite(_optional(r, c)) for _, r in completed)]
    by_variant: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, row in completed:
        by_variant.setdefault(row["variant"] or "default", []).append((line, row))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    failed = [{"run_id": r["run_id"], "variant": r["variant"], "size": r.get("size", ""),
               "tokens": r.get("tokens", ""), "error": (r.get("error") or "").strip() or "(no error recorded)"}
              for r in rows if r["status"] == "failed"]
    return Sweep(path=path, variants={name: _variant(name, group, metrics, path) for name, group in by_variant.items()},
                 failed=failed, status_counts=counts, metrics=[m for m in metrics if headline_metric(m)],
                 rows=[r for _, r in completed], precision_choice=read_precision_choice(path))
