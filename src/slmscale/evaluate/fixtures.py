"""Fake benchmarks in the real layouts, with score files whose outcomes are chosen.

Tests (and users trying the scorer) build small sLM21 trees, StoryCloze folders and pairs
manifests here instead of downloading the real ones. Each trial is declared with the
outcome its scores must give ("win", "tie" or "loss"); the builders write short
speech-like wavs, the index files (rows shuffled, so pairing by file order would fail)
and the matching `<stem> <score>` lines.
"""

from __future__ import annotations

import csv
import json
import random
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slmscale.audio.fixtures import speech_like
from slmscale.audio.io import SAMPLE_RATE, write_wav

OUTCOME_SCORES = {"win": (-1.0, -2.0), "tie": (-1.5, -1.5), "loss": (-2.0, -1.0)}
"""(positive, negative) scores that give each outcome."""


@dataclass(frozen=True)
class FakeTrial:
    id: str
    outcome: str
    """"win", "tie" or "loss"."""
    voice: str = "v1"
    type: str = ""
    subtype: str = ""
    frequency: int = 0
    length: int = 4


@dataclass
class FakeBenchmark:
    path: Path
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Task name ("lexical/dev", a folder or manifest stem) -> stem -> score."""

    def write_scores(self, submission: Path) -> Path:
        """The scores as ZeroSpeech files: SUBMISSION/<task>.txt, or one file for one task."""
        for task, scores in self.scores.items():
            target = submission / f"{task}.txt" if "/" in task else submission
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(f"{stem} {score}\n" for stem, score in scores.items()))
        return submission


def _wav(path: Path, rng: np.random.Generator, seconds: float) -> None:
    write_wav(path, speech_like(rng, seconds, SAMPLE_RATE)[:, 0])


def _stems(rng: random.Random, count: int) -> list[str]:
    taken: set[str] = set()
    while len(taken) < count:
        taken.add("".join(rng.choice(string.ascii_letters) for _ in range(11)))
    return sorted(taken, key=lambda _: rng.random())


def make_slm21(root: str | Path, lexical: list[FakeTrial], syntactic: list[FakeTrial], set_name: str = "dev",
               seed: int = 0, seconds: float = 0.3) -> FakeBenchmark:
    """An sLM21 tree with the given lexical and syntactic trials (one per (id, voice))."""
    root = Path(root)
    bench = FakeBenchmark(root)
    rng, audio_rng = random.Random(seed), np.random.default_rng(seed)
    for task, trials in (("lexical", lexical), ("syntactic", syntactic)):
        if not trials:
            continue
        folder = root / task / set_name
        folder.mkdir(parents=True, exist_ok=True)
        stems = iter(_stems(rng, 2 * len(trials)))
        rows, scores = [], {}
        for trial in trials:
            for correct, score in zip((1, 0), OUTCOME_SCORES[trial.outcome]):
                stem = next(stems)
                _wav(folder / f"{stem}.wav", audio_rng, seconds)
                scores[stem] = score
                if task == "lexical":
                    rows.append({"filename": stem, "voice": trial.voice, "frequency": trial.frequency,
                                 "word": f"w{trial.id}" if correct else "", "phones": "AH B", "length": trial.length,
                                 "correct": correct, "id": trial.id})
                else:
                    rows.append({"filename": stem, "voice": trial.voice, "type": trial.type,
                                 "subtype": trial.subtype, "transcription": f"s{trial.id}", "correct": correct,
                                 "id": trial.id})
        rng.shuffle(rows)
        with (folder / "gold.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        bench.scores[f"{task}/{set_name}"] = scores
    return bench


def make_storycloze(folder: str | Path, trials: list[FakeTrial], seed: int = 0, seconds: float = 0.3) -> FakeBenchmark:
    """A flat StoryCloze folder: trial i is files <2i>_<id>_correct.wav and <2i+1>_<id>_incorrect.wav."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bench, rng = FakeBenchmark(folder), np.random.default_rng(seed)
    scores = {}
    for k, trial in enumerate(trials):
        for side, index, score in zip(("correct", "incorrect"), (2 * k, 2 * k + 1), OUTCOME_SCORES[trial.outcome]):
            stem = f"{index}_{trial.id}_{side}"
            _wav(folder / f"{stem}.wav", rng, seconds)
            scores[stem] = score
    bench.scores[folder.name] = scores
    return bench


def make_pairs_manifest(path: str | Path, trials: list[FakeTrial], seed: int = 0, seconds: float = 0.3) -> FakeBenchmark:
    """A pairs manifest (jsonl) with its wavs under audio/ beside it."""
    path = Path(path)
    bench, rng = FakeBenchmark(path), np.random.default_rng(seed)
    rows, scores = [], {}
    for trial in trials:
        row = {"id": trial.id, "type": trial.type}
        for side, score in zip(("positive", "negative"), OUTCOME_SCORES[trial.outcome]):
            relative = f"audio/{trial.id}-{side}.wav"
            _wav(path.parent / relative, rng, seconds)
            row[side] = relative
            scores[relative] = score
        rows.append(row)
    random.Random(seed).shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench.scores[path.stem] = scores
    return bench
