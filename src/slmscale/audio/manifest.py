"""The corpus format every audio stage reads and writes (docs/DESIGN.md §4.2).

A corpus dir holds `manifest.jsonl`, one utterance a line
(id, path, duration_s, sample_rate, speaker, split, text), and the audio files,
16 kHz mono, with `path` relative to the corpus dir.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from slmscale.files import StageError, read_jsonl_numbered, write_jsonl

MANIFEST = "manifest.jsonl"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Utterance:
    id: str
    """Unique utterance id within the corpus."""
    path: str
    """Audio file path relative to the corpus dir."""
    duration_s: float
    """Duration in seconds."""
    sample_rate: int
    """Always 16000 in a slmscale corpus."""
    speaker: str
    """Speaker or TTS voice id."""
    split: str
    """train, valid or test."""
    text: str
    """Transcript ('' when unknown, e.g. an imported folder without transcripts)."""


def write_manifest(corpus_dir: str | Path, utterances: list[Utterance]) -> Path:
    """Validate and write `manifest.jsonl` atomically; ids must be unique."""
    seen: set[str] = set()
    for utt in utterances:
        if utt.id in seen:
            raise StageError(f"{corpus_dir}: duplicate utterance id {utt.id!r}")
        if utt.split not in SPLITS:
            raise StageError(f"{corpus_dir}: utterance {utt.id!r} has split {utt.split!r}, not one of {SPLITS}")
        seen.add(utt.id)
    path = Path(corpus_dir) / MANIFEST
    write_jsonl(path, (asdict(u) for u in utterances))
    return path


def read_manifest(corpus_dir: str | Path) -> list[Utterance]:
    """Read a corpus manifest; a missing or malformed one is an error naming the file and key."""
    path = Path(corpus_dir) / MANIFEST
    if not path.is_file():
        raise StageError(f"{corpus_dir}: not a corpus dir (no {MANIFEST})")
    names = [f.name for f in fields(Utterance)]
    out = []
    for number, row in read_jsonl_numbered(path):
        missing = [n for n in names if n not in row]
        if missing:
            raise StageError(f"{path}:{number}: missing key {missing[0]!r}")
        out.append(Utterance(**{n: row[n] for n in names}))
    return out
