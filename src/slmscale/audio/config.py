"""The configs of the audio stages: `slmscale synth` (speech synthesis of a world or a text.jsonl)
and the importers of `slmscale corpus` (LibriSpeech, a folder of audio, TinyStories text)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from slmscale.audio.manifest import SPLITS
from slmscale.config import ConfigError


@dataclass(frozen=True)
class SynthConfig:
    backend: Literal["espeak", "piper"] = "espeak"
    """TTS backend: espeak (libespeak-ng in-process, the default) or piper (optional extra:
    pip install 'slmscale[piper]')."""
    corpus_voices: tuple[str, ...] = ()
    """Corpus speakers as voice specs name@rate (espeak: rate in words per minute, e.g.
    en-us+m3@160; piper: length scale, e.g. joe@1.1). Each text record gets one, drawn
    from its id and `seed`. Empty = the backend's defaults (espeak: en-us, en-us+m1,
    en-us+m3, en-us+m7 at 145/160/175 wpm, male only; piper: joe@0.9/1.0/1.1)."""
    benchmark_voices: tuple[str, ...] = ()
    """Voices every benchmark item is spoken in (each item once per voice). Empty = the
    backend's defaults (espeak: en-us@160, en-us+m3@160; piper: joe@1.0, joe@1.15)."""
    storycloze_voices: int = 1
    """How many of the benchmark voices (the first ones) speak the StoryCloze folders. The real
    sSC/tSC are single-speaker (one LJ voice, docs/PAPER.md §6.3), and their whole-story files are
    most of the benchmark audio; 0 = all benchmark voices (a multi-speaker sSC)."""
    seed: int = 0
    """Seed of the speaker draw and of the random ZeroSpeech file names."""
    workers: int = 0
    """Worker processes (0 = one per available core). An execution setting: it does not
    change the output, so it is left out of the output's fingerprint."""
    espeak_end_pause: bool = False
    """espeak only: add a sentence pause after the last clause of every utterance."""
    benchmarks: bool = True
    """Write the benchmark folders when the input is a world with a benchmarks/ dir."""
    zr2021_set: Literal["dev", "test"] = "dev"
    """Name of the ZeroSpeech 2021 set folder the sLM21 files go in (lexical/<set>/...)."""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"config workers is {self.workers}; give a positive number, or 0 for one per core")
        if self.storycloze_voices < 0:
            raise ConfigError(f"config storycloze_voices is {self.storycloze_voices}; give 0 (all) or more")


@dataclass(frozen=True)
class FolderImportConfig:
    split: Literal["train", "valid", "test"] = "train"
    """The split every utterance goes to."""
    transcripts: Optional[Path] = None
    """A text file of `KEY TRANSCRIPT` lines, KEY an audio file's path relative to the source, with or
    without its suffix (e.g. `alice/take1`); it takes precedence over sibling .txt/.lab files."""
    skip_bad: bool = False
    """Leave out unusable files (listed in import.json) instead of failing with a report of them."""
    workers: int = 0
    """Processes that read headers and convert audio; 0 = one per available core."""


@dataclass(frozen=True)
class LibriSpeechImportConfig:
    split: Optional[Literal["train", "valid", "test"]] = None
    """Put every utterance in this split; only for a single subset folder. None: from the subset's
    name (train-* → train, dev-* → valid, test-* → test)."""
    copy: bool = False
    """Write every utterance as a 16 kHz mono wav inside the corpus dir. False: files already
    16 kHz mono are referenced in place by absolute path (the source must then stay where it is)."""
    skip_bad: bool = False
    """Leave out utterances with unusable audio or transcripts (listed in import.json) instead of
    failing with a report of them."""
    verify_in_place: bool = False
    """Also decode every file referenced in place, to find corrupt data its header hides (reads
    every hour of audio: slow on a full LibriSpeech). Files with float samples are always decoded."""
    workers: int = 0
    """Processes that read headers and convert audio; 0 = one per available core."""


@dataclass(frozen=True)
class TinyStoriesImportConfig:
    limit: Optional[int] = None
    """Keep at most this many stories, the first non-empty ones of the file; None keeps them all."""
    split: Optional[Literal["train", "valid", "test"]] = None
    """Put every story in this split (e.g. valid for TinyStories-valid.txt); None draws each
    story's split with split_fractions."""
    split_fractions: tuple[float, ...] = (0.99, 0.01, 0.0)
    """Shares of train, valid and test when split is None. No test share by default: the stories
    become synthetic speech, kept out of the natural-speech test loss; e.g. [0.98, 0.01, 0.01]
    keeps a test split. A story's split depends only on seed and its position in the file, so it
    does not change with limit."""
    seed: int = 0
    """Seed of the split draw."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit: value {self.limit} must be at least 1 (or none for every story)")
        fractions = self.split_fractions
        if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
            raise ConfigError(f"split_fractions: value {list(fractions)} must be {len(SPLITS)} non-negative shares "
                              f"of {', '.join(SPLITS)} summing to 1")
