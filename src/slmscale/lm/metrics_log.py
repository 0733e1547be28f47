"""`metrics.jsonl`: one JSON row per logged update (training loss, LR, gradient norm,
throughput) or evaluation (validation loss), flushed as it is written so a running job
can be watched. A resumed run first drops the rows after its checkpoint, so the file
always describes one uninterrupted training curve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmscale.files import write_jsonl


class MetricsLog:
    def __init__(self, path: Path, keep_through_update: int = 0, enabled: bool = True):
        self.path, self.handle = path, None
        if not enabled:
            return
        kept = _rows_through(path, keep_through_update) if keep_through_update and path.is_file() else []
        write_jsonl(path, kept)
        self.handle = open(path, "a", encoding="utf-8")

    def write(self, **row: Any) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(row) + "\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _rows_through(path: Path, update: int) -> list[dict[str, Any]]:
    """Rows up to `update`; a line cut short by a killed process ends the read."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        if row.get("update", 0) <= update:
            rows.append(row)
    return rows
