"""Turn a list of source audio files into a corpus dir, validating first.

Shared by the LibriSpeech and folder importers, which only find the files and
their transcripts. Here every file's header is read (unreadable, empty and
zero-length files are problems), each is planned as referenced in place
(already 16 kHz mono, when the importer allows it) or converted to a 16 kHz mono
wav under `audio/<split>/<id>.wav`, and the conversions run over a process pool.
Each wav is written atomically, so an interrupted import resumes where it
stopped (a wav already at its path is kept: the source is taken to be unchanged
between the runs); the manifest, summary and marker are written only once every
file is in place.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile as sf

from slmscale.audio.import_common import (
    EXAMPLES, Problem, absolute, begin_import, finish_import, log_skipped, problem_report, removed_if_failed_empty,
    sorted_problems,
)
from slmscale.audio.io import SAMPLE_RATE, AudioError, conversion_notes, load_audio, write_wav
from slmscale.audio.io import read_header
from slmscale.audio.manifest import SPLITS, Utterance, write_manifest
from slmscale.files import StageError
from slmscale.log import get_logger, progress
from slmscale.parallel import one_thread_workers, worker_count

J = TypeVar("J")
R = TypeVar("R")

AUDIO_DIR = "audio"
MIN_JOBS_FOR_POOL = 32
"""Below this many files, starting worker processes costs more than it saves."""
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
"""Encodings that can hold NaN or infinite samples, which only decoding reveals; such files are
decoded while validating. Other damage a header hides (a truncated FLAC) shows only when a file is
converted, and is then reported the same way, though after some wavs have been written."""

log = get_logger(__name__)


@dataclass(frozen=True)
class SourceItem:
    """One utterance found by an importer, before its audio is checked."""
    id: str
    source: Path
    speaker: str
    split: str
    text: str


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, read without decoding the samples."""
    frames: int
    rate: int
    channels: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    @property
    def is_16k_mono(self) -> bool:
        return self.rate == SAMPLE_RATE and self.channels == 1

    def conversions(self) -> list[str]:
        """What making a 16 kHz mono PCM16 wav of this file changes."""
        notes = conversion_notes(self.rate, self.channels)
        if (self.format, self.subtype) != ("WAV", "PCM_16"):
            notes.append(f"{self.format} {self.subtype} -> WAV PCM_16")
        return notes


class Conversions:
    """How many files each kind of conversion touched, with a few of them, for import.json."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def note(self, kind: str, path: str) -> None:
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES:
            shown.append(path)

    def summary(self) -> dict[str, Any]:
        return {kind: {"count": n, "examples": self.examples[kind]}
                for kind, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))}


@dataclass(frozen=True)
class JobResult:
    duration_s: float | None = None
    error: str | None = None
    reused: bool = False
    """The wav was already written by an earlier, interrupted run."""


def probe_audio(path: str | Path) -> AudioInfo:
    """Read a file's header; unreadable, empty and zero-length files are an AudioError naming it."""
    info = read_header(path)
    return AudioInfo(int(info.frames), int(info.samplerate), int(info.channels), info.format, info.subtype)


def _reason(err: AudioError, path: str) -> str:
    """The AudioError's message without the file name, which the report prints once."""
    text = str(err)
    return text[len(path) + 2:] if text.startswith(f"{path}: ") else text


def _probe_job(path: str) -> AudioInfo | str:
    """The header, and for float encodings the samples too: NaN is a problem to report up front."""
    try:
        info = probe_audio(path)
    except AudioError as err:
        return _reason(err, path)
    if info.subtype in _FLOAT_SUBTYPES:
        try:
            samples, _ = sf.read(path, dtype="float32")
        except (sf.LibsndfileError, RuntimeError) as err:
            return f"not readable as audio ({err})"
        if not np.isfinite(samples).all():
            return "contains NaN or infinite samples"
    return info


def _written_wav_duration(target: str) -> float | None:
    """Duration of a wav an earlier run wrote (atomically, so complete if present), else None."""
    try:
        info = sf.info(target)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames <= 0:
        return None
    return info.frames / SAMPLE_RATE


def _convert_job(job: tuple[str, str | None]) -> JobResult:
    """Decode `source`; write it as a 16 kHz mono wav at `target`, or only check it when None."""
    source, target = job
    if target is not None:
        done = _written_wav_duration(target)
        if done is not None:
            return JobResult(done, reused=True)
    try:
        audio = load_audio(source)
        if target is not None:
            write_wav(target, audio.samples)
    except AudioError as err:
        return JobResult(error=_reason(err, source))
    return JobResult(len(audio.samples) / SAMPLE_RATE)


class WorkerPool:
    """Worker processes for one import, shared by its header and conversion passes.

    None are started when the import is too small to pay for them; then `map`
    runs in this process. Workers are spawned (not forked) so that numpy loads
    afresh in each under the one-thread environment in force when it starts.
    """

    def __init__(self, workers: int, jobs: int):
        self.workers = min(worker_count(workers), jobs)
        self.pool = None
        if self.workers > 1 and jobs >= MIN_JOBS_FOR_POOL:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def map(self, fn: Callable[[J], R], jobs: Sequence[J], desc: str, unit: str = "file") -> list[R]:
        """`[fn(j) for j in jobs]`, in order, with a progress bar."""
        if self.pool is None or len(jobs) < 2:
            return [fn(job) for job in progress(jobs, desc, total=len(jobs), unit=unit)]
        chunksize = max(1, min(64, len(jobs) // (self.workers * 8)))
        try:
            with one_thread_workers():  # map() submits every chunk now, starting any worker not yet up
                results = self.pool.map(fn, jobs, chunksize=chunksize)
            return list(progress(results, desc, total=len(jobs), unit=unit))
        except BrokenProcessPool as err:
            raise StageError(f"{desc}: a worker process died (out of memory? or a script that starts an import "
                             "without an `if __name__ == '__main__':` guard); rerun with workers=1 to see") from err

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _remove_stale_audio(out: Path, targets: set[Path]) -> int:
    """Delete files under audio/ that this import does not use (left by an earlier run)."""
    removed = 0
    audio_dir = out / AUDIO_DIR
    if audio_dir.is_dir():
        for path in sorted(audio_dir.rglob("*")):
            if path.is_file() and path not in targets:
                path.unlink()
                removed += 1
    return removed


@dataclass(frozen=True)
class AudioImport:
    """One import's destination and options, as the LibriSpeech and folder importers set them."""
    importer: str
    source: Path
    out: Path
    cfg: Any
    """The importer's config, written to config.yaml."""
    fingerprint: str
    in_place: bool
    """Reference files already 16 kHz mono by absolute path instead of converting them."""
    verify_in_place: bool
    """Decode the files referenced in place too (slow on big corpora)."""
    skip_bad: bool
    workers: int
    extra: dict[str, Any]
    """Importer-specific entries of import.json."""


def import_audio_items(job: AudioImport, items: list[SourceItem], problems: list[Problem]) -> dict[str, Any]:
    """Check, convert and write `items` as the corpus dir `job.out`; returns the import summary.

    `problems` are those the importer already found (missing transcripts, …).
    """
    with WorkerPool(job.workers, len(items)) as pool:
        usable, problems = _check(pool, job, items, problems)
        plan: list[tuple[SourceItem, AudioInfo, Path | None]] = [  # target None: referenced in place
            (item, info, None if job.in_place and info.is_16k_mono
             else job.out / AUDIO_DIR / item.split / f"{item.id}.wav") for item, info in usable]
        results = _convert(pool, job, plan)
    problems += [Problem(str(plan[i][0].source), r.error) for i, r in results.items() if r.error is not None]

    utterances, conversions = [], Conversions()
    for i, (item, info, target) in enumerate(plan):
        result = results.get(i, JobResult(info.duration_s))
        if result.error is not None:
            continue
        if target is None:
            path, duration = str(absolute(item.source)), info.duration_s
        else:
            path, duration = target.relative_to(job.out).as_posix(), result.duration_s
            for note in info.conversions():
                conversions.note(note, str(item.source))
        utterances.append(Utterance(item.id, path, round(duration, 6), SAMPLE_RATE, item.speaker, item.split,
                                    item.text))
    if not utterances:
        raise StageError(f"{job.source}: no usable audio left to import")
    removed = _remove_stale_audio(job.out, {target for _, _, target in plan if target is not None})
    if removed:
        log.info("removed %d stale files under %s left by an earlier run", removed, job.out / AUDIO_DIR)
    write_manifest(job.out, utterances)

    converted = [r for i, r in results.items() if r.error is None and plan[i][2] is not None]
    summary = {
        "importer": job.importer,
        "source": str(job.source),
        **job.extra,
        "utterances": len(utterances),
        "hours": round(sum(u.duration_s for u in utterances) / 3600, 6),
        "splits": _per_split(utterances),
        "referenced_in_place": sum(1 for u in utterances if Path(u.path).is_absolute()),
        "converted": len(converted),
        "reused_from_earlier_run": sum(1 for r in converted if r.reused),
        "empty_text": sum(1 for u in utterances if not u.text),
        "conversions": conversions.summary(),
        "skipped": [{"path": p.path, "problem": p.problem} for p in sorted_problems(problems)],
    }
    log_skipped(problems)
    finish_import(job.out, job.cfg, job.fingerprint, summary)
    log.info("imported %d utterances (%.2f h) from %s into %s: %d referenced in place, %d converted, %d skipped",
             len(utterances), summary["hours"], job.source, job.out, summary["referenced_in_place"],
             len(converted), len(problems))
    return summary


def _check(pool: WorkerPool, job: AudioImport, items: list[SourceItem],
           problems: list[Problem]) -> tuple[list[tuple[SourceItem, AudioInfo]], list[Problem]]:
    """Read every header (nothing is written yet); fail with every problem unless skipping them."""
    infos = pool.map(_probe_job, [str(item.source) for item in items], "reading headers")
    problems = list(problems) + [Problem(str(item.source), info) for item, info in zip(items, infos)
                                 if isinstance(info, str)]
    if problems and not job.skip_bad:
        raise StageError(problem_report(job.source, problems, "files"))
    usable = [(item, info) for item, info in zip(items, infos) if isinstance(info, AudioInfo)]
    if not usable:
        raise StageError(f"{job.source}: no usable audio left to import")
    return usable, problems


def _convert(pool: WorkerPool, job: AudioImport,
             plan: list[tuple[SourceItem, AudioInfo, Path | None]]) -> dict[int, JobResult]:
    """Write the planned wavs (resuming after an interrupted run); results by index into `plan`."""
    jobs = [(i, (str(item.source), None if target is None else str(target)))
            for i, (item, _, target) in enumerate(plan) if target is not None or job.verify_in_place]
    with removed_if_failed_empty(job.out):
        begin_import(job.out, job.importer, job.source)
        done = pool.map(_convert_job, [args for _, args in jobs], "converting audio")
        results = dict(zip((i for i, _ in jobs), done))
        late = [Problem(str(plan[i][0].source), r.error) for i, r in results.items() if r.error is not None]
        if late and not job.skip_bad:
            raise StageError(problem_report(
                job.source, late, "files", outcome=f"no manifest was written; the wavs converted so far stay "
                                                   f"in {job.out} and a rerun resumes after them"))
    return results


def _per_split(utterances: list[Utterance]) -> dict[str, dict[str, Any]]:
    out = {}
    for split in SPLITS:
        rows = [u for u in utterances if u.split == split]
        if rows:
            out[split] = {"utterances": len(rows), "hours": round(sum(u.duration_s for u in rows) / 3600, 6),
                          "speakers": len({u.speaker for u in rows})}
    return out
