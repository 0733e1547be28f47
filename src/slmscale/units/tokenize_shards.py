"""`tokenize ... --shard I/N` and `tokenize ... --merge`: a large corpus tokenized as N independent
shards (the tasks of a Slurm array, run in any order and at once), then merged into the units dir an
unsharded `tokenize` writes, byte for byte.

Shard I of N takes the I-th of N contiguous slices of the items in their written order (manifest order
within each split) and is an ordinary `tokenize` of them into `UNITS.shards/shard-I-of-N/` (atomic,
resumable after its last finished block, skipped once complete), plus what the merge needs to write
meta.json exactly: each utterance's audio seconds (`<split>.sec`, float64, summed in the same order
as an unsharded run sums them) and each split's frame count (meta.json `shard`). The merge checks
that every shard is complete and was made from this corpus and tokenizer (its fingerprint over its
slice), concatenates the splits' files in shard order (offsets shifted), recomputes the unit
histograms from the merged tokens, and writes the units dir with the unsharded run's fingerprint, so
a later unsharded `tokenize` of the same inputs skips it. The shards are deleted once it is complete.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.files import StageError, atomic_dir, check_output_dir, is_completed, read_json
from slmscale.log import get_logger
from slmscale.units.extraction import Item
from slmscale.units.shards import META, OFFSET_DTYPE, TOKEN_DTYPE, read_meta
from slmscale.units.tokenize import finish_units_dir, stage_fingerprint, tokenize_items
from slmscale.units.tokenizer import load_tokenizer

log = get_logger(__name__)
SHARD_NAME = re.compile(r"^shard-(\d+)-of-(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" -> (I, N), 0 <= I < N (a Slurm array's `$SLURM_ARRAY_TASK_ID/N` with --array=0-(N-1))."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not int(match[1]) < int(match[2]):
        raise StageError(f"--shard {text!r}: give I/N with 0 <= I < N (e.g. 0/8 ... 7/8)")
    return int(match[1]), int(match[2])


def shards_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}.shards"


def shard_dir(out_dir: str | Path, index: int, count: int) -> Path:
    return shards_dir(out_dir) / f"shard-{index}-of-{count}"


def shard_items(items: list[Item], index: int, count: int) -> list[Item]:
    """The index-th of `count` contiguous slices of the items (sizes differing by at most one)."""
    return items[index * len(items) // count:(index + 1) * len(items) // count]


def _job(items: list[Item], tokenizer_dir: str | Path, dedup: bool | None) -> tuple[Any, bool, str]:
    """The tokenizer, the resolved dedup and the unsharded run's fingerprint."""
    tok = load_tokenizer(tokenizer_dir)
    dedup = tok.dedup if dedup is None else dedup
    return tok, dedup, stage_fingerprint(tok.fingerprint, dedup, items)


def tokenize_shard(items: list[Item], tokenizer_dir: str | Path, out_dir: str | Path, index: int, count: int,
                   dedup: bool | None, skip_bad: bool, workers: int, source: str,
                   hubert_path: str | Path | None = None, device: str = "cpu",
                   batch_seconds: float | None = 0.0) -> dict[str, Any]:
    """Tokenize shard `index` of `count` of `items` (see the module doc); returns its meta.json."""
    tok, dedup, job = _job(items, tokenizer_dir, dedup)
    if check_output_dir(out_dir, job):
        log.info("%s is already merged and complete; skipping shard %d/%d", out_dir, index, count)
        return read_meta(out_dir)
    if count > len(items):
        raise StageError(f"--shard {index}/{count}: {source} has only {len(items)} utterances; use at most "
                         f"{len(items)} shards")
    return tokenize_items(shard_items(items, index, count), tokenizer_dir, shard_dir(out_dir, index, count), dedup,
                          skip_bad, workers, source, hubert_path, shard={"index": index, "count": count, "job": job},
                          device=device, batch_seconds=batch_seconds)


def _shard_count(out_dir: Path) -> int:
    found = {int(m[2]) for m in (SHARD_NAME.match(p.name) for p in shards_dir(out_dir).glob("shard-*")) if m}
    if len(found) != 1:
        raise StageError(f"{shards_dir(out_dir)}: " + (f"holds shards of {sorted(found)} shards each; keep those of one "
                                                      "run" if found else "no shards; run `slmscale tokenize ... "
                                                      "--shard I/N` for I = 0 .. N-1 first"))
    return found.pop()


def merge_shards(items: list[Item], tokenizer_dir: str | Path, out_dir: str | Path, dedup: bool | None,
                 skip_bad: bool, source: str) -> dict[str, Any]:
    """Merge the complete shards of `out_dir` into it (see the module doc); returns its meta.json."""
    out_dir = Path(out_dir)
    tok, dedup, job = _job(items, tokenizer_dir, dedup)
    if check_output_dir(out_dir, job):
        log.info("%s is already complete; skipping", out_dir)
        return read_meta(out_dir)
    count = _shard_count(out_dir)
    dirs = [shard_dir(out_dir, index, count) for index in range(count)]
    missing = [str(index) for index, d in enumerate(dirs) if not is_completed(
        d, stage_fingerprint(tok.fingerprint, dedup, shard_items(items, index, count)))]
    if missing:
        raise StageError(f"{shards_dir(out_dir)}: shard(s) {', '.join(missing)} of {count} are not complete for these "
                         f"inputs; run `slmscale tokenize ... --shard I/{count}` for each")
    metas = [read_json(d / META) for d in dirs]
    splits = list(dict.fromkeys(split for meta in metas for split in meta["splits"]))
    closed, counts, stats = {}, {}, {}
    with atomic_dir(out_dir) as tmp:
        for split in splits:
            parts = [d for d, meta in zip(dirs, metas) if split in meta["splits"]]
            closed[split], counts[split], stats[split] = _merge_split(parts, tmp, split, tok.k, dedup)
            stats[split]["frames"] = sum(meta["shard"]["frames"].get(split, 0) for meta in metas)
        skipped = [entry for meta in metas for entry in meta["skipped"]]
        meta = finish_units_dir(tmp, tok, tokenizer_dir, dedup, skip_bad, source, closed, counts, stats, skipped, job)
    shutil.rmtree(shards_dir(out_dir), ignore_errors=True)
    return meta


def _merge_split(parts: list[Path], tmp: Path, split: str, k: int,
                 dedup: bool) -> tuple[dict[str, int], np.ndarray, dict[str, Any]]:
    """One split's files concatenated in shard order; its counts, unit histogram and audio seconds."""
    offsets, tokens, histogram, seconds = [], 0, np.zeros(k, dtype=np.int64), 0.0
    exts = ("bin", "ids", "dur") if dedup else ("bin", "ids")
    handles = {ext: open(tmp / f"{split}.{ext}", "wb") for ext in exts}
    try:
        for part in parts:
            for ext, handle in handles.items():
                with open(part / f"{split}.{ext}", "rb") as source:
                    shutil.copyfileobj(source, handle)
            stream = np.fromfile(part / f"{split}.bin", dtype=TOKEN_DTYPE)
            histogram += np.bincount(stream, minlength=k + 1)[:k]  # EOS (= k) is not a unit
            offsets.append(np.fromfile(part / f"{split}.idx", dtype=OFFSET_DTYPE)[:-1] + tokens)
            tokens += len(stream)
            for value in np.fromfile(part / f"{split}.sec", dtype=np.float64):
                seconds += float(value)  # one at a time, in order: the unsharded run's float sum exactly
    finally:
        for handle in handles.values():
            handle.close()
    starts = np.concatenate([*offsets, np.array([tokens], dtype=OFFSET_DTYPE)]).astype(OFFSET_DTYPE)
    starts.tofile(tmp / f"{split}.idx")
    return {"tokens": tokens, "utterances": len(starts) - 1}, histogram, {"seconds": seconds}
