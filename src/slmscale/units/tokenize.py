"""`tokenize`: audio to units, one units dir per corpus or benchmark folder.

Feature extraction and nearest-centroid assignment run together in worker
processes (each builds its extractor once); the parent deduplicates, writes the
shards in manifest order and the diagnostics. The whole units dir is built under
a temporary name and appears at once with its `.completed` marker, so a failed
run leaves nothing half-written and a rerun of a finished one is skipped. Finished
blocks of files are kept beside it until then (`units/blocks.py`): an interrupted
run resumes after the last finished block.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from slmscale.audio.io import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, load_audio
from slmscale.audio.manifest import read_manifest
from slmscale.files import StageError, atomic_dir, check_output_dir, content_hash, mark_completed
from slmscale.log import get_logger, progress
from slmscale.parallel import one_thread_workers, worker_count
from slmscale.units.blocks import BLOCK_ITEMS, BlockResult, BlockStore
from slmscale.units.dedup import dedup as collapse
from slmscale.units.features import FeatureSpec, build_extractor
from slmscale.units.kmeans import Assigner
from slmscale.units.shards import ShardWriter, read_meta, unit_diagnostics, write_units_meta
from slmscale.units.tokenizer import load_tokenizer

log = get_logger(__name__)

REALTIME_FACTOR = {"mfcc": 900.0, "logmel": 900.0, "hubert": 10.0}
"""Rough audio seconds per CPU second of each feature kind in one process (mfcc measured
in benchmarks/RESULTS.md), to guess whether worker processes pay for their start-up."""
POOL_MIN_SECONDS = 10.0
"""Spawn workers only when one process would take longer than this: a spawned worker
spends about 3 s importing torch (measured on the 2-core machine), so below it a pool
is slower than working in this process."""


@dataclass(frozen=True)
class Item:
    """One audio file to featurize."""
    id: str
    path: str
    """Absolute path."""
    split: str


@dataclass(frozen=True)
class Result:
    id: str
    values: np.ndarray
    """Features [frames, dim] or, with centroids, units [frames] (not deduplicated)."""
    seconds: float
    problem: str | None = None
    """Why this file could not be used (then `values` is empty)."""


def corpus_items(corpus_dir: str | Path, sample_rate: int) -> list[Item]:
    """The manifest's utterances; one whose sample rate is not the tokenizer's is an error."""
    corpus_dir = Path(corpus_dir)
    items = []
    for utt in read_manifest(corpus_dir):
        if int(utt.sample_rate) != sample_rate:
            raise StageError(f"{corpus_dir}: utterance {utt.id!r} ({utt.path}) has sample rate {utt.sample_rate} Hz "
                             f"in the manifest; the tokenizer expects {sample_rate} Hz")
        items.append(Item(utt.id, str((corpus_dir / utt.path).resolve()), utt.split))
    return items


def folder_items(folder: str | Path) -> list[Item]:
    """The audio files directly inside `folder` (sorted), ids = file stems, split = folder name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StageError(f"{folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise StageError(f"{folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise StageError(f"{folder}: {stems[path.stem].name} and {path.name} share the id {path.stem!r}")
        stems[path.stem] = path
    return [Item(stem, str(path.resolve()), folder.resolve().name) for stem, path in stems.items()]


_STATE: dict[str, Any] = {}


def checked_extractor(spec: FeatureSpec) -> Any:
    """`build_extractor(spec)`; an impossible spec (or HuBERT dir) is a StageError."""
    try:
        return build_extractor(spec)
    except (ValueError, OSError) as err:
        raise StageError(f"feature spec {spec}: {err}") from err


def feature_dim(spec: FeatureSpec) -> int:
    return int(checked_extractor(spec).dim)


def _set_state(extractor: Any, centroids: np.ndarray | None, rate: int) -> None:
    _STATE.update(extractor=extractor, assign=Assigner(centroids) if centroids is not None else None, rate=rate)


def _init_worker(spec: FeatureSpec, centroids: np.ndarray | None) -> None:
    import faiss
    faiss.omp_set_num_threads(1)  # one thread per worker process, like BLAS (parallel.py)
    _set_state(build_extractor(spec), centroids, int(spec.sample_rate))


def _process(item: Item) -> Result:
    empty = np.zeros(0, dtype=np.int64)
    try:
        audio = load_audio(item.path)
    except AudioError as err:
        return Result(item.id, empty, 0.0, f"utterance {item.id!r}: {err}")
    if audio.original_rate != _STATE["rate"]:
        return Result(item.id, empty, 0.0, f"{item.path}: sample rate {audio.original_rate} Hz; the tokenizer "
                                           f"expects {_STATE['rate']} Hz (resample the corpus first)")
    seconds = len(audio.samples) / SAMPLE_RATE
    if len(audio.samples) < getattr(_STATE["extractor"], "min_samples", 1):
        return Result(item.id, empty, seconds, f"{item.path}: empty utterance ({len(audio.samples)} samples, "
                                               "too short for one feature frame)")
    try:
        features = _STATE["extractor"](audio.samples)
    except (ValueError, RuntimeError) as err:  # e.g. audio too short for the model's receptive field
        return Result(item.id, empty, seconds, f"{item.path}: feature extraction failed ({err})")
    if len(features) == 0:
        return Result(item.id, empty, seconds, f"{item.path}: empty utterance ({len(audio.samples)} samples, "
                                               "too short for one feature frame)")
    assign = _STATE["assign"]
    return Result(item.id, assign(features) if assign is not None else features, seconds)


def extract(items: list[Item], spec: FeatureSpec, centroids: np.ndarray | None, workers: int = 0,
            desc: str = "tokenize") -> Iterator[Result]:
    """Features (or units, given centroids) of `items`, yielded in order."""
    # Built here first so that a bad spec (or HuBERT dir) is one clear error, not a
    # pool whose workers die in their initializer and are restarted forever.
    extractor = checked_extractor(spec)
    if centroids is not None and centroids.shape[1] != extractor.dim:
        raise StageError(f"the tokenizer's centroids have dim {centroids.shape[1]} but its {spec.kind} "
                         f"features have dim {extractor.dim}")
    workers = min(worker_count(workers), len(items))
    # PCM16 at 16 kHz is 32 kB per second; compressed files are underestimated, which is harmless.
    audio_s = sum(os.path.getsize(item.path) for item in items if os.path.isfile(item.path)) / 32_000
    if workers <= 1 or audio_s / REALTIME_FACTOR.get(spec.kind, 1.0) < POOL_MIN_SECONDS:
        import faiss
        _set_state(extractor, centroids, int(spec.sample_rate))
        # One utterance's search is too small to split over threads: OpenMP would only
        # spin (measured: twice the CPU time for the same wall time).
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            yield from progress(map(_process, items), desc, total=len(items), unit="file")
        finally:
            faiss.omp_set_num_threads(threads)
        return
    # Spawned, not forked: torch/faiss thread pools do not survive a fork, and each
    # worker must import numpy under the one-thread limits.
    with one_thread_workers():
        pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (spec, centroids))
    try:
        chunksize = max(1, min(32, len(items) // (workers * 8)))
        yield from progress(pool.imap(_process, items, chunksize=chunksize), desc, total=len(items), unit="file")
    finally:
        pool.terminate()
        pool.join()


def _fingerprint(tokenizer_fp: str, dedup: bool, items: list[Item]) -> str:
    return content_hash(f"{tokenizer_fp}|dedup={dedup}\n", "".join(f"{i.split}\t{i.id}\t{i.path}\n" for i in items))


def _block_results(items: list[Item], tok: Any, workers: int, store: BlockStore) -> Iterator[BlockResult]:
    """Every item's result in order: saved blocks loaded, the others extracted and saved."""
    blocks = [items[start:start + BLOCK_ITEMS] for start in range(0, len(items), BLOCK_ITEMS)]
    todo = {index for index, block in enumerate(blocks) if not store.has(index, [item.path for item in block])}
    if len(todo) < len(blocks):
        log.info("%s: resuming, %d of %d blocks of files already done", store.dir, len(blocks) - len(todo),
                 len(blocks))
    fresh = extract([item for index in sorted(todo) for item in blocks[index]], tok.spec, tok.centroids, workers) \
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
                   skip_bad: bool, workers: int, source: str, hubert_path: str | Path | None = None) -> dict[str, Any]:
    """Units of `items` into `out_dir`; `hubert_path`: where the tokenizer's HuBERT model lies now, if
    it moved (the same weights; the units and their fingerprint do not change)."""
    tok = load_tokenizer(tokenizer_dir, hubert_path)
    dedup = tok.dedup if dedup is None else dedup
    out_dir = Path(out_dir)
    stage_fp = _fingerprint(tok.fingerprint, dedup, items)
    if check_output_dir(out_dir, stage_fp):
        log.info("%s is already complete; skipping", out_dir)
        return read_meta(out_dir)
    splits = list(dict.fromkeys(item.split for item in items))
    counts = {split: np.zeros(tok.k, dtype=np.int64) for split in splits}
    stats = {split: {"frames": 0, "seconds": 0.0} for split in splits}
    skipped: list[dict[str, str]] = []
    store = BlockStore(out_dir, stage_fp)
    with atomic_dir(out_dir) as tmp:
        writers = {split: ShardWriter(tmp, split, tok.eos_id, with_durations=dedup) for split in splits}
        results = _block_results(items, tok, workers, store)
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
            closed = {split: writer.close() for split, writer in writers.items()}
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        finally:
            results.close()
        empty = [split for split, c in closed.items() if c["utterances"] == 0]
        if empty:
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
                "dedup_ratio": round(stats[split]["frames"] / units, 4),
                "diagnostics": unit_diagnostics(counts[split])}
        write_units_meta(tmp, meta)
        # Absolute, like meta.json's `tokenizer`: a relative one would name another dir from another
        # working directory. Nothing hashes config.yaml, so no fingerprint changes.
        (tmp / "config.yaml").write_text(yaml.safe_dump(
            {"source": source, "tokenizer": str(Path(tokenizer_dir).resolve()), "dedup": dedup,
             "skip_bad": skip_bad}, sort_keys=False))
        mark_completed(tmp, stage_fp, tokenizer_fingerprint=tok.fingerprint)
    store.remove()
    return meta


def tokenize_corpus(corpus_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path,
                    dedup: bool | None = True, skip_bad: bool = False, workers: int = 0,
                    hubert_path: str | Path | None = None) -> dict[str, Any]:
    """Tokenize every split of a corpus dir; returns meta.json's contents. `dedup=None`
    uses the tokenizer's default."""
    tok = load_tokenizer(tokenizer_dir)
    items = corpus_items(corpus_dir, tok.sample_rate)
    if not items:
        raise StageError(f"{corpus_dir}: the manifest lists no utterances")
    # Manifest order within each split.
    order = {split: n for n, split in enumerate(dict.fromkeys(i.split for i in items))}
    items.sort(key=lambda i: order[i.split])
    return tokenize_items(items, tokenizer_dir, out_dir, dedup, skip_bad, workers, str(Path(corpus_dir).resolve()),
                          hubert_path)


def tokenize_audio_folder(folder: str | Path, tokenizer_dir: str | Path, out_dir: str | Path,
                          dedup: bool | None = True, skip_bad: bool = False, workers: int = 0,
                          hubert_path: str | Path | None = None) -> dict[str, Any]:
    """Tokenize a benchmark folder of audio files (no manifest): one split named after
    the folder, ids = file stems. The same code path as a corpus."""
    return tokenize_items(folder_items(folder), tokenizer_dir, out_dir, dedup, skip_bad, workers,
                          str(Path(folder).resolve()), hubert_path)
