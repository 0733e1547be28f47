"""RUN/eval.json, where evaluation's numbers live, and its headline metrics read without torch.

Evaluation writes eval.json alone; run.json is the trainer's (lm/record.py). Whoever wants a run's
headline metrics beside its loss (results.csv, and through it the report, the study and the
downstream law's `<metric>_n` item counts) joins the two with `headline_metrics`. This module
imports nothing heavy, so the sweep's bookkeeping reads scores without loading torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slmscale.files import read_json_object

EVAL_FILE = "eval.json"


def headline_metrics(run_dir: str | Path, run_fingerprint: str | None,
                     copied: dict[str, Any] | None = None) -> dict[str, Any]:
    """The flat headline metrics (`metrics`) of `run_dir`'s eval.json when it scored the run of
    `run_fingerprint`, else `copied`: what an evaluation before eval.json's sole ownership copied
    into run.json (`RunRecord.copied_metrics`; it then wrote the same numbers to both files), or {}.
    An eval.json of another run (retrained in place) is not this run's scores."""
    scores = read_json_object(Path(run_dir) / EVAL_FILE)
    metrics = scores.get("metrics")
    if isinstance(metrics, dict) and scores.get("run_fingerprint") == run_fingerprint:
        return metrics
    return dict(copied or {})
