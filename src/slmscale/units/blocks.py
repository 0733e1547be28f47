"""Finished blocks of a `tokenize` run, kept so that an interrupted run resumes.

A units dir appears only when complete (`files.atomic_dir`), so without these a run killed
after hours of HuBERT features started again from the first file. The items are cut into
blocks of `BLOCK_ITEMS` in their fixed order; each finished block's units (not deduplicated),
audio seconds and problems are saved in `.<out name>.partial-<stage fingerprint>/` beside the
output, one atomic file per block, with each file's size and modification time. A rerun with the
same fingerprint loads the saved blocks whose files are unchanged and extracts only the rest; the shards are then written from all blocks in order, so a resumed
run's units dir is byte-identical to an uninterrupted one. The folder is deleted with the
run's success, and a folder of another fingerprint (the inputs or tokenizer changed) is stale
and deleted when the next run starts.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmscale.files import atomic_file

BLOCK_ITEMS = 64
"""Files per block: a lost block costs seconds of MFCC or about a minute of HuBERT on a CPU."""


@dataclass(frozen=True)
class BlockResult:
    """One file's outcome, as `tokenize` uses it."""
    id: str
    units: np.ndarray
    seconds: float
    problem: str | None


class BlockStore:
    """The saved blocks of one run (`out` and stage fingerprint `stage_fp`)."""

    def __init__(self, out: Path, stage_fp: str):
        self.dir = out.parent / f".{out.name}.partial-{stage_fp}"
        for stale in out.parent.glob(f"{glob.escape(f'.{out.name}.partial-')}*"):
            if stale != self.dir:
                shutil.rmtree(stale, ignore_errors=True)

    def _path(self, index: int) -> Path:
        return self.dir / f"block-{index:06d}.npz"

    def has(self, index: int, paths: list[str]) -> bool:
        """Whether block `index` was saved from these very files (same sizes and times)."""
        if not self._path(index).is_file():
            return False
        try:
            return self._header(index)["files"] == _signature(paths)
        except (OSError, ValueError, KeyError):
            return False  # unreadable: extracted again

    def _header(self, index: int) -> dict:
        with np.load(self._path(index), allow_pickle=False) as data:
            return json.loads(data["header"].tobytes().decode())

    def save(self, index: int, results: list[BlockResult], paths: list[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"ids": [r.id for r in results], "problems": [r.problem for r in results],
                             "files": _signature(paths)})
        with atomic_file(self._path(index), "wb") as handle:
            np.savez(handle, header=np.frombuffer(header.encode(), dtype=np.uint8),
                     units=np.concatenate([r.units for r in results]).astype(np.int64),
                     lengths=np.array([len(r.units) for r in results], dtype=np.int64),
                     seconds=np.array([r.seconds for r in results], dtype=np.float64))

    def load(self, index: int) -> list[BlockResult]:
        with np.load(self._path(index), allow_pickle=False) as data:
            header = json.loads(data["header"].tobytes().decode())
            pieces = np.split(data["units"], np.cumsum(data["lengths"])[:-1])
            return [BlockResult(i, units, float(s), p) for i, units, s, p in
                    zip(header["ids"], pieces, data["seconds"], header["problems"])]

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _signature(paths: list[str]) -> list[list]:
    """Size and modification time of each file (a missing one: None)."""
    out = []
    for path in paths:
        try:
            stat = os.stat(path)
            out.append([stat.st_size, stat.st_mtime_ns])
        except OSError:
            out.append(None)
    return out
