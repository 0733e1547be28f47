"""Synthesizing many utterances into wav files, in parallel and resumably.

A `Job` names one wav under the output dir and what to say there. Workers write each
wav atomically under its final name, so after any interruption (even kill -9) a wav
that exists is complete, and a rerun only synthesizes the missing ones.

Workers are `spawn`ed processes, one backend each (libespeak-ng is process-global).
BLAS/OpenMP thread pools are pinned to one thread in the workers: with their default
of one thread per core, two workers oversubscribe two cores and run 5-7x slower
(docs/DESIGN.md §5.1). The variables must be set before the worker imports numpy/soxr, so the
parent sets them around the pool's creation and restores its own afterwards.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
from tqdm import tqdm

from slmscale.audio.io import write_wav
from slmscale.audio.tts import Backend, Speech, TTSError, get_backend
from slmscale.parallel import one_thread_workers



@dataclass(frozen=True)
class Job:
    key: str
    """Path of the wav relative to the output dir; unique."""
    utterance: str
    """What errors call it: the record or benchmark item id (and voice)."""
    voice: str
    """Voice spec, e.g. "en-us+m3@160"."""
    text: str = ""
    """Text to speak (when `phones` is empty)."""
    phones: str = ""
    """One word as ARPAbet; when set it is spoken instead of `text`."""
    prompt: str = ""
    """Said before `text` as the preceding sentences (with the pause a sentence gets)."""
    prompt_id: str = ""
    """Jobs with the same prompt_id share one recording of the prompt (spoken StoryCloze:
    the two endings of a story get the very same prompt audio); they must be consecutive
    and are never split across chunks."""

    @property
    def group(self) -> str | None:
        """The prompt recording this job shares, or None."""
        return self.prompt_id or None


@dataclass(frozen=True)
class Result:
    key: str
    duration_s: float
    words: tuple[tuple[str, float, float], ...]


def complete_wav_duration(path: Path) -> float | None:
    """The duration of a readable wav with at least one sample, else None (redo it)."""
    try:
        if path.stat().st_size <= 44:
            return None
        info = sf.info(str(path))
    except (OSError, RuntimeError, sf.LibsndfileError):
        return None
    return info.frames / info.samplerate if info.frames > 0 else None


def synthesize_one(backend: Backend, job: Job, out_dir: Path,
                   prompts: dict[str, Speech] | None = None) -> Result:
    """Speak one job into its wav; any failure is a `TTSError` naming the utterance.

    `prompts` caches the prompt recordings of a chunk (see `Job.prompt`).
    """
    try:
        if job.phones:
            speech = backend.synthesize_phones(job.phones, job.voice)
        else:
            speech = backend.synthesize(job.text, job.voice)
        if job.prompt:
            speech = _prompt_recording(backend, job, prompts).then(speech)
        write_wav(out_dir / job.key, speech.samples, speech.sample_rate)
    except Exception as err:  # noqa: BLE001 -- re-raised with the utterance named
        reason = str(err) if isinstance(err, TTSError) else f"{type(err).__name__}: {err}"
        raise TTSError(f"TTS failed on utterance {job.utterance} ({job.key}, voice {job.voice}): "
                       f"{reason}") from None
    return Result(job.key, speech.duration_s, speech.words)


def _prompt_recording(backend: Backend, job: Job, prompts: dict[str, Speech] | None) -> Speech:
    if prompts is not None and job.group is not None and job.group in prompts:
        return prompts[job.group]
    recording = backend.synthesize(job.prompt, job.voice, sentence_pause=True)
    if prompts is not None and job.group is not None:
        prompts.clear()  # a group's jobs are consecutive: keep one recording at a time
        prompts[job.group] = recording
    return recording


def synthesize_chunk(backend: Backend, jobs: list[Job], out_dir: Path) -> list[Result]:
    prompts: dict[str, Speech] = {}
    return [synthesize_one(backend, job, out_dir, prompts) for job in jobs]


# --- worker side -------------------------------------------------------------------

_WORKER_BACKEND: Backend | None = None


def _init_worker(backend_name: str, options: dict[str, Any]) -> None:
    global _WORKER_BACKEND
    _WORKER_BACKEND = get_backend(backend_name, **options)


def _run_chunk(args: tuple[list[Job], str]) -> list[Result]:
    jobs, out_dir = args
    assert _WORKER_BACKEND is not None, "worker not initialised"
    return synthesize_chunk(_WORKER_BACKEND, jobs, Path(out_dir))


# --- parent side -------------------------------------------------------------------

def _chunks(jobs: list[Job], workers: int) -> list[list[Job]]:
    # Many utterances per task amortise the inter-process traffic; ~16 tasks per worker
    # keep the load balanced and the progress bar moving. A chunk never splits the jobs
    # that share a prompt recording.
    size = max(1, min(64, math.ceil(len(jobs) / (workers * 16))))
    chunks: list[list[Job]] = [[]]
    for job in jobs:
        current = chunks[-1]
        if len(current) >= size and (job.group is None or job.group != current[-1].group):
            chunks.append(current := [])
        current.append(job)
    return [chunk for chunk in chunks if chunk]


def run_jobs(jobs: list[Job], out_dir: Path, backend_name: str, backend_options: dict[str, Any],
             workers: int, on_results: Callable[[list[Result]], None], desc: str = "synth") -> float:
    """Synthesize `jobs` with `workers` processes; `on_results` gets each finished chunk.

    Returns the seconds of audio produced. The first failure stops the pool and is raised.
    """
    if not jobs:
        return 0.0
    workers = max(1, min(workers, len(jobs)))
    chunks = _chunks(jobs, workers)
    audio_s = 0.0
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc=desc, unit="utt", dynamic_ncols=True, mininterval=1.0,
               disable=None, file=sys.stderr)

    def record(results: list[Result]) -> None:
        nonlocal audio_s
        on_results(results)
        audio_s += sum(r.duration_s for r in results)
        bar.update(len(results))
        wall = max(time.perf_counter() - start, 1e-9)
        bar.set_postfix_str(f"{audio_s / 3600:.2f} h audio, {audio_s / wall:.0f}x real time",
                            refresh=False)

    try:
        if workers == 1:
            backend = get_backend(backend_name, **backend_options)
            for chunk in chunks:
                record(synthesize_chunk(backend, chunk, out_dir))
        else:
            context = multiprocessing.get_context("spawn")
            # Each worker gets one core's worth of threads.
            options = dict(backend_options, threads=1)
            with one_thread_workers():
                pool = context.Pool(workers, initializer=_init_worker, initargs=(backend_name, options))
            with pool:
                for results in pool.imap_unordered(_run_chunk, [(c, str(out_dir)) for c in chunks]):
                    record(results)
    finally:
        bar.close()
    return audio_s
