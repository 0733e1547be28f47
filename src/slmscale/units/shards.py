"""The units dir format every LM stage reads (docs/DESIGN.md §4.5).

    UNITS/<split>.bin   uint16 token stream, every utterance ended by EOS
    UNITS/<split>.idx   int64 offsets of utterance starts, plus the total length last
    UNITS/<split>.ids   the utterance ids, one per line, in stream order
    UNITS/<split>.dur   (optional) uint16 run lengths of deduplicated units, in frames,
                        aligned with .bin (0 for EOS)
    UNITS/meta.json     vocab_size, eos_id, pad_id, per-split token/utterance counts,
                        audio seconds, tokenizer fingerprint, diagnostics

Memory-mapped reads: an LM stage samples random windows from `<split>.bin`
without loading it. Vocabulary: units 0..k-1, then EOS = k and PAD = k+1 as in
the paper (docs/PAPER.md §1), so vocab_size = k + 2.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.files import StageError, read_json, temporary_path, write_json

META = "meta.json"
TOKEN_DTYPE = np.uint16
OFFSET_DTYPE = np.int64


class ShardWriter:
    """Streams utterances of one split to `<split>.bin/.idx/.ids/.dur` under temporary
    names; `close()` renames them into place, `abort()` removes them."""

    def __init__(self, units_dir: str | Path, split: str, eos_id: int, with_durations: bool = False):
        self.dir, self.split, self.eos_id = Path(units_dir), split, eos_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self._tmp = {ext: temporary_path(self.dir / f"{split}.{ext}") for ext in
                     (("bin", "idx", "ids", "dur") if with_durations else ("bin", "idx", "ids"))}
        self._bin = open(self._tmp["bin"], "wb")
        self._dur = open(self._tmp["dur"], "wb") if with_durations else None
        self._offsets: list[int] = []
        self._ids: list[str] = []
        self.tokens = 0

    def add(self, utterance_id: str, units: Sequence[int] | np.ndarray,
            durations: Sequence[int] | np.ndarray | None = None) -> None:
        """Append one utterance (without EOS: it is added here)."""
        units = np.asarray(units, dtype=np.int64)
        if units.size == 0:
            raise StageError(f"utterance {utterance_id!r}: no units (empty utterance)")
        if units.min() < 0 or units.max() >= self.eos_id:
            raise StageError(f"utterance {utterance_id!r}: unit ids must lie in [0, {self.eos_id}), "
                             f"got [{units.min()}, {units.max()}]")
        self._offsets.append(self.tokens)
        self._ids.append(utterance_id)
        self._bin.write(np.append(units, self.eos_id).astype(TOKEN_DTYPE).tobytes())
        if self._dur is not None:
            if durations is None or len(durations) != units.size:
                raise StageError(f"utterance {utterance_id!r}: durations must align with the units")
            self._dur.write(np.append(np.minimum(durations, 65535), 0).astype(TOKEN_DTYPE).tobytes())
        self.tokens += units.size + 1

    def close(self) -> dict[str, int]:
        self._bin.close()
        if self._dur is not None:
            self._dur.close()
        np.asarray(self._offsets + [self.tokens], dtype=OFFSET_DTYPE).tofile(self._tmp["idx"])
        with open(self._tmp["ids"], "w", encoding="utf-8") as handle:
            handle.writelines(f"{i}\n" for i in self._ids)
        for ext, tmp in self._tmp.items():
            os.replace(tmp, self.dir / f"{self.split}.{ext}")
        return {"tokens": self.tokens, "utterances": len(self._ids)}

    def abort(self) -> None:
        for handle in (self._bin, self._dur):
            if handle is not None:
                handle.close()
        for tmp in self._tmp.values():
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Split:
    """One split of a units dir, memory-mapped."""
    tokens: np.ndarray
    """uint16 stream (memory map)."""
    offsets: np.ndarray
    """int64 utterance starts plus the total length last."""
    ids: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def utterance(self, index: int, with_eos: bool = False) -> np.ndarray:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return np.asarray(self.tokens[start:end if with_eos else end - 1])


SHARD_DTYPES = {"tokens": np.dtype(TOKEN_DTYPE).name, "offsets": np.dtype(OFFSET_DTYPE).name,
                "durations": np.dtype(TOKEN_DTYPE).name}
"""The binary layout of the shards, recorded in meta.json (`shard_dtypes`) so that a reader
never guesses it."""


def read_meta(units_dir: str | Path) -> dict[str, Any]:
    path = Path(units_dir) / META
    if not path.is_file():
        raise StageError(f"{units_dir}: not a units dir (no {META})")
    meta = read_json(path)
    recorded = meta.get("shard_dtypes", SHARD_DTYPES)  # units dirs from before the key: this layout
    if recorded != SHARD_DTYPES:
        raise StageError(f"{path}: shard_dtypes {recorded} are not the {SHARD_DTYPES} this version reads")
    return meta


def open_split(units_dir: str | Path, split: str) -> Split:
    """Memory-map one split; a missing or inconsistent file is a StageError naming it."""
    units_dir = Path(units_dir)
    paths = {ext: units_dir / f"{split}.{ext}" for ext in ("bin", "idx", "ids")}
    for path in paths.values():
        if not path.is_file():
            raise StageError(f"{path}: missing")
    size = paths["bin"].stat().st_size
    if size % np.dtype(TOKEN_DTYPE).itemsize:
        raise StageError(f"{paths['bin']}: {size} bytes is not a whole number of {np.dtype(TOKEN_DTYPE).name} "
                         "tokens (a truncated copy?)")
    tokens = (np.memmap(paths["bin"], dtype=TOKEN_DTYPE, mode="r") if size
              else np.zeros(0, dtype=TOKEN_DTYPE))
    offsets = np.fromfile(paths["idx"], dtype=OFFSET_DTYPE)
    ids = paths["ids"].read_text(encoding="utf-8").splitlines()
    if len(offsets) != len(ids) + 1 or (len(offsets) and offsets[-1] != len(tokens)):
        raise StageError(f"{units_dir}: {split}.idx, {split}.ids and {split}.bin disagree "
                         f"({len(offsets)} offsets, {len(ids)} ids, {len(tokens)} tokens)")
    return Split(tokens, offsets, ids)


def check_units_dir(units_dir: str | Path) -> dict[str, Any]:
    """Validate a units dir completely; returns per-split counts. Errors name the file and value."""
    meta = read_meta(units_dir)
    for key in ("vocab_size", "eos_id", "splits"):
        if key not in meta:
            raise StageError(f"{Path(units_dir) / META}: missing key {key!r}")
    eos, vocab = int(meta["eos_id"]), int(meta["vocab_size"])
    report = {}
    for split, counts in meta["splits"].items():
        data = open_split(units_dir, split)
        tokens = np.asarray(data.tokens)
        if len(tokens) and int(tokens.max()) >= vocab:
            raise StageError(f"{units_dir}/{split}.bin: token {int(tokens.max())} >= vocab_size {vocab}")
        ends = data.offsets[1:] - 1
        if len(data) and not (tokens[ends] == eos).all():
            bad = int(np.flatnonzero(tokens[ends] != eos)[0])
            raise StageError(f"{units_dir}/{split}.bin: utterance {data.ids[bad]!r} does not end with EOS {eos}")
        if int((tokens == eos).sum()) != len(data):
            raise StageError(f"{units_dir}/{split}.bin: EOS {eos} inside an utterance")
        if counts.get("tokens") != len(tokens) or counts.get("utterances") != len(data):
            raise StageError(f"{Path(units_dir) / META}: counts of split {split!r} do not match its files")
        report[split] = {"tokens": len(tokens), "utterances": len(data)}
    return report


def write_units_meta(units_dir: str | Path, meta: dict[str, Any]) -> None:
    """Write meta.json; `meta` gets the shard layout (`shard_dtypes`) added, as written."""
    meta["shard_dtypes"] = SHARD_DTYPES
    write_json(Path(units_dir) / META, meta)


def unit_diagnostics(counts: np.ndarray) -> dict[str, float]:
    """Usage entropy (bits) and perplexity of a unit histogram, and how many units are used."""
    total = counts.sum()
    p = counts[counts > 0] / max(total, 1)
    entropy = float(-(p * np.log2(p)).sum()) if total else 0.0
    return {"entropy_bits": round(entropy, 4), "perplexity": round(2 ** entropy, 2),
            "units_used": int((counts > 0).sum()), "units": int(len(counts))}


def iter_utterances(units_dir: str | Path, split: str) -> Iterable[tuple[str, np.ndarray]]:
    data = open_split(units_dir, split)
    for i, utt_id in enumerate(data.ids):
        yield utt_id, data.utterance(i)
