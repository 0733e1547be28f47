"""The `synth` stage: speak a world (or any text.jsonl) into a corpus and benchmark folders.

    synth(INPUT, OUT, SynthConfig()) -> OUT

OUT/corpus/manifest.jsonl + audio/<split>/<id>.wav   one utterance per text record
OUT/corpus/alignments.jsonl                          word timings (espeak): id, words [[w, start_s, end_s]]
OUT/benchmarks/zr2021/..., OUT/benchmarks/storycloze/...   for a world (benchmark_layout.py)
OUT/synth.json                                       summary: hours per split and kind, counts, speed
OUT/config.yaml, OUT/.completed                      written last

Resumable: every wav is written atomically under its final name and a rerun only
synthesizes the missing ones; the index files come after all audio exists. A completed
OUT with the same config and input is skipped. `.synth-fingerprint` records which config
and input the audio in OUT belongs to, so a partial OUT is never finished with another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

from slmscale.audio.benchmark_layout import Root, plan_benchmarks, remove_strays, write_benchmark_indexes
from slmscale.audio.config import SynthConfig
from slmscale.audio.io import SAMPLE_RATE
from slmscale.audio.manifest import SPLITS, Utterance, write_manifest
from slmscale.audio.synth_inputs import SynthInput, read_input
from slmscale.audio.synth_jobs import Job, Result, complete_wav_duration, run_jobs
from slmscale.audio.tts import Backend, get_backend, speaker_id
from slmscale.config import to_dict
from slmscale.files import (MARKER, StageError, check_output_dir, content_hash, mark_completed, read_json, write_json,
                            write_jsonl, write_text)
from slmscale.log import get_logger
from slmscale.parallel import worker_count
from slmscale.world.records import TextRecord

log = get_logger(__name__)

CORPUS = "corpus"
ALIGNMENTS = "alignments.jsonl"
SUMMARY = "synth.json"
CLAIM = ".synth-fingerprint"
JOURNAL = ".synth-progress.jsonl"


def pick_voice(seed: int, record_id: str, voices: tuple[str, ...]) -> str:
    """The corpus voice of a record: a seeded hash of its id (stable across runs and
    machines, unlike Python's salted hash())."""
    digest = hashlib.sha256(f"{seed}\0{record_id}".encode()).digest()
    return voices[int.from_bytes(digest[:8], "big") % len(voices)]


def file_stem(record_id: str) -> str:
    """A file name for a record id: characters outside [A-Za-z0-9._-] become "_"."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", record_id)
    return "_" + stem[1:] if stem.startswith(".") else stem


def _resolve_voices(config: SynthConfig, backend: Backend) -> tuple[tuple[str, ...], tuple[str, ...]]:
    resolved = []
    for key, given, default in (("corpus_voices", config.corpus_voices, backend.default_corpus_voices),
                                ("benchmark_voices", config.benchmark_voices, backend.default_benchmark_voices)):
        voices = tuple(v.strip() for v in (given or default))
        for voice, count in Counter(voices).items():
            if count > 1:
                raise StageError(f"config {key} lists voice {voice!r} {count} times")
        for voice in voices:
            backend.check_voice(voice)
        resolved.append(voices)
    return resolved[0], resolved[1]


def _fingerprint(resolved: SynthConfig, data: SynthInput) -> str:
    """What the output depends on: the resolved config (voices filled in, so that empty
    lists and the same voices spelt out agree) without `workers`, and the input content."""
    content = {k: v for k, v in to_dict(resolved).items() if k != "workers"}
    blob = json.dumps({"config": content, "input": data.sha256}, sort_keys=True)
    return content_hash(blob)


def _claim(out_dir: Path, fingerprint: str) -> None:
    """Refuse a non-empty OUT not made by synth, or a partial one of another config/input."""
    claim = out_dir / CLAIM
    if claim.is_file():
        if claim.read_text().strip() != fingerprint:
            raise StageError(f"{out_dir} holds a partial synth output of a different config or input "
                             f"(see {claim}); rerun that command to finish it, or delete {out_dir}")
        return
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise StageError(f"{out_dir} is not empty and was not made by slmscale synth; choose another --out")
    write_text(claim, fingerprint + "\n")


def _plan_corpus(records: list[TextRecord], voices: tuple[str, ...], seed: int,
                 backend: str) -> tuple[list[Job], list[Utterance]]:
    jobs, utterances, taken = [], [], {}
    for record in records:
        rel = f"audio/{record.split}/{file_stem(record.id)}.wav"
        if rel.lower() in taken:
            raise StageError(f"record ids {taken[rel.lower()]!r} and {record.id!r} map to the same file "
                             f"{rel}; make them differ in [A-Za-z0-9._-]")
        taken[rel.lower()] = record.id
        voice = pick_voice(seed, record.id, voices)
        jobs.append(Job(f"{CORPUS}/{rel}", record.id, voice, text=record.text))
        utterances.append(Utterance(record.id, rel, 0.0, SAMPLE_RATE, speaker_id(backend, voice),
                                    record.split, record.text))
    return jobs, utterances


def _load_words(out_dir: Path, key_of_id: dict[str, str]) -> dict[str, list]:
    """Word timings already known: the last completed run's alignments, then the journal.
    A truncated last journal line (the parent was killed mid-write) is ignored."""
    words: dict[str, list] = {}
    sources = [(out_dir / CORPUS / ALIGNMENTS, "id"), (out_dir / JOURNAL, "key")]
    for path, field in sources:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                key = key_of_id.get(row["id"]) if field == "id" else row["key"]
                if key is not None:
                    words[key] = row["words"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return words


def _remove_corpus_strays(out_dir: Path, jobs: list[Job]) -> None:
    expected = {out_dir / job.key for job in jobs}
    audio = out_dir / CORPUS / "audio"
    for path in audio.glob("*/*") if audio.is_dir() else ():
        if path.is_file() and path not in expected:
            path.unlink()


@dataclasses.dataclass
class Plan:
    """Everything a run will write, decided before anything is written."""
    config: SynthConfig
    """The config with the voice lists resolved (backend defaults filled in)."""
    data: SynthInput
    backend: Backend
    backend_options: dict[str, Any]
    corpus_jobs: list[Job]
    utterances: list[Utterance]
    roots: list[Root]
    fingerprint: str

    @property
    def jobs(self) -> list[Job]:
        return self.corpus_jobs + [job for root in self.roots for job in root.jobs]

    @property
    def speakers(self) -> list[str]:
        return [speaker_id(self.backend.name, voice) for voice in self.config.benchmark_voices]


def plan(source: str | Path, config: SynthConfig) -> Plan:
    """Validate INPUT and the voices, and lay out every output file."""
    data = read_input(source, with_benchmarks=config.benchmarks)
    options: dict[str, Any] = {"end_pause": config.espeak_end_pause} if config.backend == "espeak" else {}
    backend = get_backend(config.backend, **options)
    corpus_voices, bench_voices = _resolve_voices(config, backend)
    spoken = [record for record in data.records if record.spoken]  # text-only records are the text arm's
    if not spoken:
        raise StageError(f"{source}: every text record is marked \"spoken\": false; nothing to synthesize")
    corpus_jobs, utterances = _plan_corpus(spoken, corpus_voices, config.seed, backend.name)
    speakers = [(voice, speaker_id(backend.name, voice)) for voice in bench_voices]
    roots = plan_benchmarks(data.benchmarks, speakers, config.seed, config.zr2021_set, config.storycloze_voices)
    resolved = dataclasses.replace(config, corpus_voices=corpus_voices, benchmark_voices=bench_voices)
    return Plan(resolved, data, backend, options, corpus_jobs, utterances, roots, _fingerprint(resolved, data))


def _pending(plan: Plan, out_dir: Path, words: dict[str, list]) -> tuple[list[Job], dict[str, float]]:
    """The jobs still to do, and the durations of the wavs already in place."""
    corpus_keys = {job.key for job in plan.corpus_jobs}
    durations: dict[str, float] = {}
    pending = []
    for job in plan.jobs:
        if plan.backend.word_timings and job.key in corpus_keys and job.key not in words:
            pending.append(job)  # its word timings were lost with a killed parent
            continue
        duration = complete_wav_duration(out_dir / job.key)
        if duration is None:
            pending.append(job)
        else:
            durations[job.key] = duration
    # Jobs sharing a prompt recording are redone together, so that they keep sharing it.
    redo = {job.group for job in pending if job.group is not None}
    if redo:
        missing = {job.key for job in pending}
        pending = [job for job in plan.jobs if job.key in missing or job.group in redo]
        for job in pending:
            durations.pop(job.key, None)
    return pending, durations


def synth(source: str | Path, out_dir: str | Path, config: SynthConfig = SynthConfig()) -> Path:
    """Speak INPUT into OUT (see the module docstring); returns OUT."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    run = plan(source, config)
    if check_output_dir(out_dir, run.fingerprint):
        log.info("%s is already complete with this config and input; nothing to do", out_dir)
        return out_dir
    _claim(out_dir, run.fingerprint)

    timed = run.backend.word_timings
    corpus_keys = {job.key for job in run.corpus_jobs}
    words = _load_words(out_dir, {u.id: job.key for u, job in zip(run.utterances, run.corpus_jobs)}) \
        if timed else {}
    pending, durations = _pending(run, out_dir, words)
    reused = len(run.jobs) - len(pending)
    log.info("%d utterances to synthesize (%d already done) with %s", len(pending), reused, run.backend.name)
    workers = worker_count(config.workers)
    with open(out_dir / JOURNAL, "a", encoding="utf-8") as journal:
        def on_results(results: list[Result]) -> None:
            for result in results:
                durations[result.key] = result.duration_s
                if timed and result.key in corpus_keys:
                    words[result.key] = [list(w) for w in result.words]
                    journal.write(json.dumps({"key": result.key, "words": words[result.key]}) + "\n")
            journal.flush()

        synthesized_s = run_jobs(pending, out_dir, run.backend.name, run.backend_options, workers, on_results)

    # All audio exists: now the indexes, the config, the summary, the marker.
    _remove_corpus_strays(out_dir, run.corpus_jobs)
    utterances = [dataclasses.replace(u, duration_s=round(durations[job.key], 4))
                  for u, job in zip(run.utterances, run.corpus_jobs)]
    write_manifest(out_dir / CORPUS, utterances)
    if timed:
        write_jsonl(out_dir / CORPUS / ALIGNMENTS,
                    ({"id": u.id, "words": words[job.key]} for u, job in zip(utterances, run.corpus_jobs)))
    meta = {"source": str(run.data.source), "backend": run.backend.name, "voices": run.speakers}
    benchmarks = {}
    for root in run.roots:
        remove_strays(out_dir, root)
        counts = write_benchmark_indexes(out_dir, root, meta)
        for name, folder in root.folders.items():
            hours = sum(durations[job.key] for job in folder.jobs) / 3600
            benchmarks[f"{root.name}/{name}"] = {**counts[name], "hours": round(hours, 4)}
    write_text(out_dir / "config.yaml", yaml.safe_dump(to_dict(run.config), sort_keys=False))
    wall = time.perf_counter() - start
    summary = _summary(run, utterances, benchmarks, len(pending), reused, synthesized_s, wall, workers)
    write_json(out_dir / SUMMARY, summary)
    mark_completed(out_dir, run.fingerprint, input=str(run.data.source), input_sha256=run.data.sha256)
    (out_dir / JOURNAL).unlink(missing_ok=True)
    log.info("synthesized %.2f h in %.1f s (%.0f audio-s per wall-s) into %s",
             synthesized_s / 3600, wall, summary["audio_s_per_wall_s"], out_dir)
    return out_dir


def _summary(run: Plan, utterances: list[Utterance], benchmarks: dict[str, Any], synthesized: int,
             reused: int, synthesized_s: float, wall: float, workers: int) -> dict[str, Any]:
    kinds = {record.id: record.kind for record in run.data.records}
    hours: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for u in utterances:
        hours[u.split][kinds[u.id]] += u.duration_s / 3600
    return {
        "source": str(run.data.source),
        "backend": run.backend.name,
        "corpus": {
            "utterances": len(utterances),
            "hours": {split: {kind: round(h, 4) for kind, h in hours[split].items()}
                      for split in SPLITS if split in hours},
            "total_hours": round(sum(u.duration_s for u in utterances) / 3600, 4),
            "speakers": dict(sorted(Counter(u.speaker for u in utterances).items())),
            "voices": list(run.config.corpus_voices),
        },
        "benchmarks": benchmarks,
        "benchmark_voices": list(run.config.benchmark_voices),
        "synthesized_files": synthesized,
        "reused_files": reused,
        "synthesized_audio_s": round(synthesized_s, 2),
        "wall_s": round(wall, 2),
        "audio_s_per_wall_s": round(synthesized_s / wall, 1) if wall > 0 else 0.0,
        "workers": workers,
    }


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary a completed synth wrote (for the CLI and later stages)."""
    path = Path(out_dir) / SUMMARY
    if not (Path(out_dir) / MARKER).is_file() or not path.is_file():
        raise StageError(f"{out_dir}: not a completed synth output (no {MARKER} or {SUMMARY})")
    return read_json(path)
