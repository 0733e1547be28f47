"""results.csv rows of the completed runs a sweep takes from outside (SweepConfig.with_runs,
`sweep --with RUN`): the paper's released models imported with `slmscale import-checkpoint`, or runs
trained by hand, drawn and fitted beside the sweep's own.

A row reads as a sweep run's does (sweep/results.py): numbers from the run's run.json, scores from
its eval.json, the variant's labels. Its `grids` is "with" and `run_dir` names the run dir, which
the report reads per-pair outcomes from. Such a run must say what a fit needs: parameters, tokens
seen and a test loss (an import whose name gives no tokens needs `--tokens D`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmscale.config import ConfigError
from slmscale.evaluate.eval_file import headline_metrics
from slmscale.evaluate.inputs import completed_record
from slmscale.files import StageError
from slmscale.lm.record import RECORD, RunRecord
from slmscale.sweep.config import SweepConfig, Variant, WithRun

GRID = "with"
"""The `grids` cell of a row taken from outside the sweep."""


def _variant(item: WithRun, record: RunRecord, cfg: SweepConfig, where: str) -> Variant:
    variants = {v.name: v for v in cfg.variants}
    if item.variant:
        if item.variant not in variants:
            raise ConfigError(f"{where}.variant: unknown variant {item.variant!r} (have {', '.join(variants)})")
        return variants[item.variant]
    units = (record.units or {}).get("path")
    found = next((v for v in cfg.variants if units and Path(v.units).resolve() == Path(units).resolve()), None)
    if found is None:
        raise ConfigError(f"{where}: {item.run} was made on units {units}, which no variant of the sweep uses; "
                          "name the variant it joins (with_runs[].variant)")
    return found


def with_run_row(item: WithRun, cfg: SweepConfig, where: str) -> dict[str, Any]:
    """The results.csv row of one run from outside the sweep; what a fit cannot use is a StageError."""
    run_dir = Path(item.run)
    record = completed_record(run_dir, "added to a results table")
    missing = [key for key in ("params", "tokens", "test_loss") if getattr(record, key) is None]
    if missing:
        raise StageError(f"{run_dir / RECORD}: no {missing[0]}; a results table needs parameters, tokens seen and a "
                         "test loss (import the checkpoint again with --tokens D)")
    variant = _variant(item, record, cfg, where)
    params, tokens = record.params or {}, int(record.tokens or 0)
    unique = record.unique_tokens or tokens
    flops = record.flops or 6 * params["total"] * tokens
    return {"run_id": record.run_id or run_dir.name, "status": "completed", "grids": GRID, "variant": variant.name,
            "corpus": variant.corpus, "tokenizer": variant.tokenizer,
            "modality": "text" if (Path(variant.units) / "vocab.json").is_file() else "audio",
            "size": record.size or "", "precision": record.precision or "", "params": params["total"],
            "non_embedding": params.get("non_embedding"), "tokens": tokens, "unique_tokens": unique,
            "epochs": f"{tokens / unique:.6g}", "flops": f"{flops:.6g}",
            "flops_with_attention": f"{record.flops_with_attention or flops:.6g}", "loss": record.test_loss,
            "loss_bits_per_second": record.test_bits_per_second or "", "valid_loss": record.valid_loss,
            "wall_seconds": record.wall_seconds, "run_dir": str(run_dir.resolve()),
            **headline_metrics(run_dir, record.fingerprint, record.copied_metrics)}


def with_run_rows(cfg: SweepConfig, sweep_ids: set[str]) -> list[dict[str, Any]]:
    """The rows of every run of `cfg.with_runs`; a run id the sweep (or another such run) has is refused."""
    rows, seen = [], set(sweep_ids)
    for index, item in enumerate(cfg.with_runs):
        row = with_run_row(item, cfg, f"with_runs[{index}]")
        if row["run_id"] in seen:
            raise ConfigError(f"with_runs[{index}]: run id {row['run_id']!r} ({item.run}) is taken by another run of "
                              "the sweep; rename the run dir")
        seen.add(row["run_id"])
        rows.append(row)
    return rows
