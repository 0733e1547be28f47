"""Features, or units, of a list of audio files, in worker processes: what `tokenize`, `tokenizer
train` and `vocoder train` all run over their audio.

The items are a corpus dir's utterances (`corpus_items`) or the audio files of a folder
(`folder_items`). Each worker process builds its extractor once (`build_extractor`) and, given
centroids, assigns every frame to its nearest one, so a worker returns units instead of features;
results come back in item order. A file that cannot be used is a `Result` with a `problem`, which
the caller reports or skips.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slmscale.audio.io import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, load_audio
from slmscale.audio.manifest import read_manifest
from slmscale.files import StageError
from slmscale.lm.data import tf32_matmuls
from slmscale.log import progress
from slmscale.parallel import one_thread_workers, worker_count
from slmscale.units.features import FeatureSpec, build_extractor
from slmscale.units.kmeans import Assigner

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


CUDA_BATCH_SECONDS = 480.0
"""Audio per padded HuBERT batch on a GPU: 16 chunks of 30 s, the batch measured on the H200."""


def resolve_device(device: str) -> str:
    """`auto` -> cuda when torch sees one, else cpu; `cuda` without one is a StageError."""
    if device not in ("auto", "cpu", "cuda"):
        raise StageError(f"device: value {device!r} is not one of auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise StageError("device: cuda, but torch sees no CUDA device (use cpu or auto)")
    return "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)


def checked_extractor(spec: FeatureSpec, device: str = "cpu") -> Any:
    """`build_extractor(spec, device)`; an impossible spec (or HuBERT dir) is a StageError."""
    try:
        return build_extractor(spec, device)
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


def _load(item: Item) -> tuple[np.ndarray, float] | Result:
    """The item's samples and seconds, or the Result saying why it cannot be used."""
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
    return audio.samples, seconds


def _finish(item: Item, samples: np.ndarray, seconds: float, features: Any) -> Result:
    if len(features) == 0:
        return Result(item.id, np.zeros(0, dtype=np.int64), seconds, f"{item.path}: empty utterance "
                      f"({len(samples)} samples, too short for one feature frame)")
    assign = _STATE["assign"]
    return Result(item.id, assign(features) if assign is not None else features, seconds)


def _process(item: Item) -> Result:
    loaded = _load(item)
    if isinstance(loaded, Result):
        return loaded
    samples, seconds = loaded
    try:
        features = _STATE["extractor"](samples)
    except (ValueError, RuntimeError) as err:  # e.g. audio too short for the model's receptive field
        return Result(item.id, np.zeros(0, dtype=np.int64), seconds, f"{item.path}: feature extraction failed ({err})")
    return _finish(item, samples, seconds, features)


BATCH_ITEMS = 256
"""Files read per group of padded HuBERT batches: a fixed count, so groups depend on the item list alone."""


def _process_batched(items: list[Item], max_samples: int) -> Iterator[Result]:
    """`_process` of every item, HuBERT's chunks of BATCH_ITEMS files at a time padded into batches
    (units/hubert_batch.py). A group whose batched pass fails is redone a file at a time, so the
    error names its file."""
    from slmscale.units.hubert_batch import batched_utterance_frames
    frames = _STATE["extractor"].frames_fn  # a HubertFrames
    for start in range(0, len(items), BATCH_ITEMS):
        group = items[start:start + BATCH_ITEMS]
        loaded = [_load(item) for item in group]
        good = [i for i, entry in enumerate(loaded) if not isinstance(entry, Result)]
        try:
            features = batched_utterance_frames(frames, [loaded[i][0] for i in good], max_samples) if good else []
        except (ValueError, RuntimeError):
            yield from map(_process, group)
            continue
        by_index = dict(zip(good, features))
        for i, (item, entry) in enumerate(zip(group, loaded)):
            yield entry if isinstance(entry, Result) else \
                _finish(item, entry[0], entry[1], _STATE["extractor"].from_frames(by_index[i]))


def extract(items: list[Item], spec: FeatureSpec, centroids: np.ndarray | None, workers: int = 0,
            desc: str = "tokenize", device: str = "cpu", batch_seconds: float | None = 0.0) -> Iterator[Result]:
    """Features (or units, given centroids) of `items`, yielded in order. HuBERT runs on `device`
    (`auto`: CUDA when there is one); with `batch_seconds` > 0 (null: 480 on CUDA, 0 on a CPU) its
    chunks are padded into batches of that much audio, in this process. mfcc/logmel run on the CPU."""
    hubert = spec.kind == "hubert"
    hubert_device = resolve_device(device) if hubert else "cpu"
    if batch_seconds is None:
        batch_seconds = CUDA_BATCH_SECONDS if hubert_device == "cuda" else 0.0
    batched = hubert and batch_seconds > 0
    # Built here first so that a bad spec (or HuBERT dir) is one clear error, not a
    # pool whose workers die in their initializer and are restarted forever.
    extractor = checked_extractor(spec, hubert_device)
    if centroids is not None and centroids.shape[1] != extractor.dim:
        raise StageError(f"the tokenizer's centroids have dim {centroids.shape[1]} but its {spec.kind} "
                         f"features have dim {extractor.dim}")
    workers = min(worker_count(workers), len(items))
    # PCM16 at 16 kHz is 32 kB per second; compressed files are underestimated, which is harmless.
    audio_s = sum(os.path.getsize(item.path) for item in items if os.path.isfile(item.path)) / 32_000
    if (batched or hubert_device != "cpu" or workers <= 1
            or audio_s / REALTIME_FACTOR.get(spec.kind, 1.0) < POOL_MIN_SECONDS):
        import faiss
        _set_state(extractor, centroids, int(spec.sample_rate))
        # One utterance's search is too small to split over threads: OpenMP would only
        # spin (measured: twice the CPU time for the same wall time).
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            results = _process_batched(items, max(1, int(batch_seconds * spec.sample_rate))) if batched \
                else map(_process, items)
            with tf32_matmuls(torch.device(hubert_device)):
                yield from progress(results, desc, total=len(items), unit="file")
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
