"""The config of `slmscale synth` (speech synthesis of a world or a text.jsonl)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
