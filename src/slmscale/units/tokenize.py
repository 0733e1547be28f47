"""`tokenize`: audio to units, one units dir per corpus or benchmark folder.

Feature extraction and nearest-centroid assignment run together in worker
processes (`units/extraction.py`); the parent deduplicates, writes the
shards in manifest order and the diagnostics. The whole units dir is built under
a temporary name and appears at once with its `.completed` marker, so a failed
run leaves nothing half-written and a rerun of a finished one is skipped. Finished
blocks of files are kept beside it until then (`units/blocks.py`): an interrupted
run resumes after the last finished block. A large corpus can also run as independent shards
merged afterwards into the same units dir (`units/tokenize_shards.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from slmscale.files import StageError, atomic_dir, check_output_dir, content_hash, mark_completed
from slmscale.log import get_logger
from slmscale.units.blocks import BLOCK_ITEMS, BlockResult, BlockStore
from slmscale.units.dedup import dedup as collapse
from slmscale.units.extraction import Item, corpus_items, extract, folder_items
from slmscale.units.shards import ShardWriter, read_meta, unit_diagnostics, write_units_meta
from slmscale.units.tokenizer import load_tokenizer

log = get_logger(__name__)


def stage_fingerprint(tokenizer_fp: str, dedup: bool, items: list[Item]) -> str:
    return content_hash(f"{tokenizer_fp}|dedup={dedup}\n", "".join(f"{i.split}\t{i.id}\t{i.path}\n" for i in items))


def _block_results(items: list[Item], tok: Any, workers: int, store: BlockStore, device: str,
                   batch_seconds: float | None) -> Iterator[BlockResult]:
    """Every item's result in order: saved blocks loaded, the others extracted and saved."""
    blocks = [items[start:start + BLOCK_ITEMS] for start in range(0, len(items), BLOCK_ITEMS)]
    todo = {index for index, block in enumerate(blocks) if not store.has(index, [item.path for item in block])}
    if len(todo) < len(blocks):
        log.info("%s: resuming, %d of %d blocks of files already done", store.dir, len(blocks) - len(todo),
                 len(blocks))
    fresh = extract([item for index in sorted(todo) for item in blocks[index]], tok.spec, tok.centroids, workers,
                    device=device, batch_seconds=batch_seconds) \
        if todo else iter(())
    try:
        for index, block in enumerate(blocks):
            if index not in todo:
                yield from store.load(index)
                continue
            done = [BlockResult(r.id, r.values, r.seconds, r.problem) for r in (next(fresh) for _ in block)]
            store.save(index, done, [item.path for item in block])
            yield from done
    finally:
        if todo:
            fresh.close()  # stops the worker pool at once, not when garbage-collected


def tokenize_items(items: list[Item], tokenizer_dir: str | Path, out_dir: str | Path, dedup: bool | None,
                   skip_bad: bool, workers: int, source: str, hubert_path: str | Path | None = None,
                   shard: dict[str, Any] | None = None, device: str = "cpu",
                   batch_seconds: float | None = 0.0) -> dict[str, Any]:
    """Units of `items` into `out_dir`; `hubert_path`: where the tokenizer's HuBERT model lies now, if
    it moved (the same weights; the units and their fingerprint do not change). `device` and
    `batch_seconds`: where and how HuBERT runs (TokenizeConfig); they do not enter the fingerprint. `shard`: `out_dir` is one
    shard of a larger run (units/tokenize_shards.py): a split may be empty, and what the merge needs to
    give the unsharded run's meta.json exactly is kept (`<split>.sec`, meta.json `shard`)."""
    tok = load_tokenizer(tokenizer_dir, hubert_path)
    dedup = tok.dedup if dedup is None else dedup
    out_dir = Path(out_dir)
    stage_fp = stage_fingerprint(tok.fingerprint, dedup, items)
    if check_output_dir(out_dir, stage_fp):
        log.info("%s is already complete; skipping", out_dir)
        return read_meta(out_dir)
    splits = list(dict.fromkeys(item.split for item in items))
    counts = {split: np.zeros(tok.k, dtype=np.int64) for split in splits}
    stats = {split: {"frames": 0, "seconds": 0.0} for split in splits}
    seconds: dict[str, list[float]] = {split: [] for split in splits}
    skipped: list[dict[str, str]] = []
    store = BlockStore(out_dir, stage_fp)
    with atomic_dir(out_dir) as tmp:
        writers = {split: ShardWriter(tmp, split, tok.eos_id, with_durations=dedup) for split in splits}
        results = _block_results(items, tok, workers, store, device, batch_seconds)
        try:
            for item, result in zip(items, results):
                if result.problem:
                    if not skip_bad:
                        # The hint names the command that has the option, so it is true from a study
                        # too; eval reads `problem` and `path` and gives its own.
                        error = StageError(f"{result.problem} (`slmscale tokenize ... --skip-bad` leaves such "
                                           "files out)")
                        error.problem, error.path = result.problem, item.path  # type: ignore[attr-defined]
                        raise error
                    skipped.append({"id": item.id, "path": item.path, "problem": result.problem})
                    continue
                units, durations = collapse(result.units) if dedup else (result.units, None)
                writers[item.split].add(item.id, units, durations)
                counts[item.split] += np.bincount(units, minlength=tok.k)
                stats[item.split]["frames"] += len(result.units)
                stats[item.split]["seconds"] += result.seconds
                if shard is not None:
                    seconds[item.split].append(result.seconds)
            closed = {split: writer.close() for split, writer in writers.items()}
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        finally:
            results.close()
        if shard is not None:
            for split, values in seconds.items():
                np.asarray(values, dtype=np.float64).tofile(tmp / f"{split}.sec")
            shard = {**shard, "frames": {split: stats[split]["frames"] for split in splits}}
        meta = finish_units_dir(tmp, tok, tokenizer_dir, dedup, skip_bad, source, closed, counts, stats, skipped,
                                stage_fp, shard)
    store.remove()
    return meta


def finish_units_dir(tmp: Path, tok: Any, tokenizer_dir: str | Path, dedup: bool, skip_bad: bool, source: str,
                     closed: dict[str, dict[str, int]], counts: dict[str, np.ndarray], stats: dict[str, dict[str, Any]],
                     skipped: list[dict[str, str]], stage_fp: str, shard: dict[str, Any] | None = None) -> dict[str, Any]:
    """meta.json, config.yaml and the `.completed` marker of a units dir whose split files `tmp` holds, from
    each split's counts (`closed`), unit histograms and frames and seconds; returns the meta. An empty
    split is an error unless the dir is one `shard` of a larger run (recorded in meta.json)."""
    empty = [split for split, c in closed.items() if c["utterances"] == 0]
    if empty and shard is None:
        raise StageError(f"{source}: split {empty[0]!r} has no usable utterance left")
    meta = {"vocab_size": tok.vocab_size, "eos_id": tok.eos_id, "pad_id": tok.pad_id, "k": tok.k,
            "dedup": dedup, "frame_rate": tok.spec.frame_rate, "tokenizer_fingerprint": tok.fingerprint,
            "tokenizer": str(Path(tokenizer_dir).resolve()), "source": source, "splits": {},
            "diagnostics": unit_diagnostics(sum(counts.values())), "skipped": skipped}
    for split, c in closed.items():
        units = c["tokens"] - c["utterances"]  # EOS is not a unit of speech
        seconds = stats[split]["seconds"]
        meta["splits"][split] = {
            **c, "audio_seconds": round(seconds, 3),
            "tokens_per_second": round(units / seconds, 3) if seconds else 0.0,
            "dedup_ratio": round(stats[split]["frames"] / units, 4) if units else 0.0,
            "diagnostics": unit_diagnostics(counts[split])}
    if shard is not None:
        meta["shard"] = shard
    write_units_meta(tmp, meta)
    # Absolute, like meta.json's `tokenizer`: a relative one would name another dir from another
    # working directory. Nothing hashes config.yaml, so no fingerprint changes.
    (tmp / "config.yaml").write_text(yaml.safe_dump(
        {"source": source, "tokenizer": str(Path(tokenizer_dir).resolve()), "dedup": dedup,
         "skip_bad": skip_bad}, sort_keys=False))
    mark_completed(tmp, stage_fp, tokenizer_fingerprint=tok.fingerprint)
    return meta


def ordered_corpus_items(corpus_dir: str | Path, tokenizer_dir: str | Path) -> list[Item]:
    """A corpus dir's items in the order its units are written: manifest order within each split."""
    items = corpus_items(corpus_dir, load_tokenizer(tokenizer_dir).sample_rate)
    if not items:
        raise StageError(f"{corpus_dir}: the manifest lists no utterances")
    order = {split: n for n, split in enumerate(dict.fromkeys(i.split for i in items))}
    items.sort(key=lambda i: order[i.split])
    return items


def tokenize_corpus(corpus_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path,
                    dedup: bool | None = True, skip_bad: bool = False, workers: int = 0,
                    hubert_path: str | Path | None = None, device: str = "cpu",
                    batch_seconds: float | None = 0.0) -> dict[str, Any]:
    """Tokenize every split of a corpus dir; returns meta.json's contents. `dedup=None`
    uses the tokenizer's default."""
    return tokenize_items(ordered_corpus_items(corpus_dir, tokenizer_dir), tokenizer_dir, out_dir, dedup, skip_bad,
                          workers, str(Path(corpus_dir).resolve()), hubert_path, device=device,
                          batch_seconds=batch_seconds)


def tokenize_audio_folder(folder: str | Path, tokenizer_dir: str | Path, out_dir: str | Path,
                          dedup: bool | None = True, skip_bad: bool = False, workers: int = 0,
                          hubert_path: str | Path | None = None, device: str = "cpu",
                          batch_seconds: float | None = 0.0) -> dict[str, Any]:
    """Tokenize a benchmark folder of audio files (no manifest): one split named after
    the folder, ids = file stems. The same code path as a corpus."""
    return tokenize_items(folder_items(folder), tokenizer_dir, out_dir, dedup, skip_bad, workers,
                          str(Path(folder).resolve()), hubert_path, device=device, batch_seconds=batch_seconds)
