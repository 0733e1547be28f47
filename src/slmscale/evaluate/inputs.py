"""A run's vocabulary, and benchmark inputs turned into its token sequences (cached).

A run names its units dir (run.json `units.path`), and the units dir names what made it:
- speech units: `meta.json` `tokenizer` (the tokenizer dir) and `dedup`;
- unigram pieces: `meta.json` `unigram.model` and `source.dir`, the raw units dir (which
  names the tokenizer); benchmark audio is tokenized to units, then encoded to pieces;
- text arm: `vocab.json` beside the shards; benchmark texts are encoded with it.

Units of benchmark audio are cached under CACHE/units/<tokenizer fingerprint>-<dedup>/<files
hash>/, a units dir of its own: feature extraction runs once per tokenizer and set of
files (path, size, mtime), whichever run, sweep or size is evaluated.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from slmscale.evaluate.layouts import Task
from slmscale.files import StageError, content_hash
from slmscale.lm.record import RECORD, RunRecord
from slmscale.units.shards import open_split, read_meta

SPLIT = "bench"
"""The one split of a cached benchmark units dir."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("SLMSCALE_CACHE") or Path.home() / ".cache" / "slmscale")


@dataclass(frozen=True)
class RunVocabulary:
    """How a run's token ids were made from audio or text."""
    modality: Literal["audio", "text"]
    units_dir: Path
    eos_id: int
    vocab_size: int
    fingerprint: str
    """The units dir's tokenizer fingerprint (unigram and text ones name their own vocabulary)."""
    tokenizer_dir: Path | None = None
    dedup: bool = True
    unigram_dir: Path | None = None
    text_vocab: Path | None = None


def _existing(path: Any, where: str, what: str) -> Path:
    if not path or not Path(path).exists():
        raise StageError(f"{where}: {what} {path!r} does not exist (moved or deleted?)")
    return Path(path)


def completed_record(run_dir: Path, purpose: str) -> RunRecord:
    """run.json of a completed run; anything else is an error saying why it cannot be `purpose`."""
    path = run_dir / RECORD
    if not run_dir.is_dir():
        raise StageError(f"{run_dir}: no such run dir")
    if not path.is_file():
        raise StageError(f"{run_dir}: no {RECORD}; not a run dir (train one with `slmscale train`)")
    record = RunRecord.read(path)
    if record.status != "completed":
        raise StageError(f"{path}: status is {record.status!r}; only a completed run can be {purpose}")
    return record


def run_vocabulary(run_dir: Path, record: RunRecord) -> RunVocabulary:
    units = record.units or {}
    units_dir = _existing(units.get("path"), f"{run_dir / RECORD} units.path", "units dir")
    meta = read_meta(units_dir)
    where = str(units_dir / "meta.json")
    common = {"units_dir": units_dir, "eos_id": int(meta["eos_id"]), "vocab_size": int(meta["vocab_size"]),
              "fingerprint": str(meta.get("tokenizer_fingerprint", ""))}
    if (units_dir / "vocab.json").is_file():
        return RunVocabulary("text", text_vocab=units_dir / "vocab.json", **common)
    source_meta, unigram_dir = meta, None
    if "unigram" in meta:
        unigram_dir = _existing(meta["unigram"].get("model"), f"{where} unigram.model", "unigram model dir")
        source_dir = _existing(meta.get("source", {}).get("dir"), f"{where} source.dir", "source units dir")
        source_meta, where = read_meta(source_dir), str(source_dir / "meta.json")
    if "tokenizer" not in source_meta:  # packed units imported without --tokenizer
        raise StageError(f"{where}: names no tokenizer, so audio cannot be turned into this run's units; import the "
                         "units again with `slmscale units import-packed ... --tokenizer TOK` (a tokenizer dir of "
                         "their k-means)")
    tokenizer_dir = _existing(source_meta.get("tokenizer"), f"{where} tokenizer", "tokenizer dir")
    from slmscale.units.tokenizer import load_tokenizer
    found = load_tokenizer(tokenizer_dir).fingerprint
    if found != source_meta.get("tokenizer_fingerprint"):
        raise StageError(f"{tokenizer_dir}: its fingerprint {found} is not the {source_meta.get('tokenizer_fingerprint')} "
                         f"that made {where}; the tokenizer changed since")
    return RunVocabulary("audio", tokenizer_dir=tokenizer_dir, dedup=bool(source_meta.get("dedup", True)),
                         unigram_dir=unigram_dir, **common)


def _files_hash(inputs: dict[str, str]) -> str:
    lines = []
    for key, path in sorted(inputs.items()):
        stat = Path(path).stat()
        lines.append(f"{key}\t{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n")
    return content_hash(*lines)


def _read_split(units_dir: Path, split: str) -> dict[str, np.ndarray]:
    data = open_split(units_dir, split)
    return {key: data.utterance(i).astype(np.int64) for i, key in enumerate(data.ids)}


@contextmanager
def cache_entry_lock(entry: Path) -> Iterator[None]:
    """Hold an exclusive lock while a cache entry is made: the runs of a sweep evaluate in
    parallel processes, and the first one fills the cache while the others wait for it."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.with_name(entry.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _bad_file(task: Task, path: str, problem: str) -> StageError:
    """The error for a benchmark file that cannot be tokenized. eval has no --skip-bad: leaving a
    file out would silently score a different benchmark, so the user fixes the file or takes its
    pair out of the benchmark, where the layout lists it."""
    where = {"lexical": f"its rows from {Path(task.source) / 'gold.csv'}",
             "syntactic": f"its rows from {Path(task.source) / 'gold.csv'}",
             "storycloze": f"both files of its story from {task.source}"}.get(task.kind,
                                                                             f"its pair from {task.source}")
    named = "" if path in problem else f" {path}"  # most problems name the file already
    return StageError(f"benchmark {task.name}: {problem}; fix or replace the file{named}, or remove {where}")


def audio_units(task: Task, vocab: RunVocabulary, cache_dir: Path, workers: int = 0,
                device: str = "cpu") -> dict[str, np.ndarray]:
    """The raw units of every audio input of `task`: from its `units_dir` when it names one, else
    from the cache, tokenized into it first when absent (HuBERT on `device`, in padded batches on
    CUDA: TokenizeConfig `batch_seconds` null)."""
    if task.units_dir:  # checked to hold every input by units_benchmark.read_units_benchmark
        split = next(iter(read_meta(task.units_dir)["splits"]))
        return {key: units for key, units in _read_split(Path(task.units_dir), split).items() if key in task.inputs}
    from slmscale.units.extraction import Item
    from slmscale.units.tokenize import tokenize_items
    from slmscale.units.tokenizer import load_tokenizer
    tok = load_tokenizer(vocab.tokenizer_dir)
    out = cache_dir / "units" / f"{tok.fingerprint[:16]}-{'dedup' if vocab.dedup else 'frames'}" / _files_hash(task.inputs)
    items = [Item(key, path, SPLIT) for key, path in task.inputs.items()]
    with cache_entry_lock(out):
        try:
            tokenize_items(items, vocab.tokenizer_dir, out, vocab.dedup, skip_bad=False, workers=workers,
                           source=task.source or task.name, device=device, batch_seconds=None)
        except StageError as err:
            if not hasattr(err, "problem"):  # not one bad file: the error already says what to do
                raise
            raise _bad_file(task, err.path, err.problem) from None  # type: ignore[attr-defined]
    return _read_split(out, SPLIT)


def task_sequences(task: Task, vocab: RunVocabulary, cache_dir: Path, workers: int = 0,
                   device: str = "cpu") -> dict[str, np.ndarray]:
    """Token ids (no EOS) of every input of `task` in the run's vocabulary."""
    if vocab.modality == "text":
        from slmscale.units.text_units import encode_benchmark
        source = Path(task.source)
        digest = content_hash(source.read_bytes())
        out = cache_dir / "text" / f"{vocab.fingerprint[:16]}" / f"{source.stem}-{digest}"
        with cache_entry_lock(out):
            encode_benchmark(source, vocab.text_vocab, out)
        return _read_split(out, source.stem)
    units = audio_units(task, vocab, cache_dir, workers, device)
    if vocab.unigram_dir is None:
        return units
    from slmscale.units.unigram import UnigramModel
    model = UnigramModel(vocab.unigram_dir)
    keys = list(units)
    pieces = model.encode([units[k] for k in keys])
    return {key: np.asarray(p, dtype=np.int64) for key, p in zip(keys, pieces)}
