"""Reading and writing audio: everything in slmscale is 16 kHz mono float32.

Conversions that are well defined (other sample rates, stereo, integer PCM,
FLAC/OGG/…) are applied and reported; input that cannot be audio (unreadable,
empty, zero-length, not finite) is an `AudioError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile as sf
import soxr

from slmscale.files import temporary_path

T = TypeVar("T")

SAMPLE_RATE = 16_000
"""The sample rate of every corpus and benchmark file (HuBERT's and the paper's)."""

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au")


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the reason."""


@dataclass(frozen=True)
class LoadedAudio:
    samples: np.ndarray
    """Mono float32 samples in [-1, 1] at `SAMPLE_RATE`."""
    original_rate: int
    """The file's own sample rate before resampling."""
    original_channels: int
    """The file's own channel count before down-mixing."""

    @property
    def conversions(self) -> list[str]:
        return conversion_notes(self.original_rate, self.original_channels)


def conversion_notes(rate: int, channels: int) -> list[str]:
    """How making 16 kHz mono of audio at `rate` with `channels` changes it, one note each."""
    notes = []
    if rate != SAMPLE_RATE:
        notes.append(f"resampled {rate} -> {SAMPLE_RATE} Hz")
    if channels != 1:
        notes.append(f"down-mixed {channels} channels to mono")
    return notes


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling (soxr, VHQ) to `target` Hz, float32."""
    if rate == target:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), rate, target, quality="VHQ").astype(np.float32)


def _read_checked(path: Path, read: Callable[[str], T], frames: Callable[[T], int]) -> T:
    """Run a soundfile reader on `path`; a missing, empty, unreadable or zero-length file
    is an AudioError naming it."""
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        result = read(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{path}: not readable as audio ({err})") from err
    if frames(result) <= 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    return result


def read_header(path: str | Path) -> Any:
    """A file's header (frames, samplerate, channels, format, subtype), validated like `load_audio`."""
    return _read_checked(Path(path), sf.info, lambda info: info.frames)


def load_audio(path: str | Path) -> LoadedAudio:
    """Load any soundfile-readable file as 16 kHz mono float32, validating it."""
    path = Path(path)
    data, rate = _read_checked(path, lambda p: sf.read(p, dtype="float32", always_2d=True),
                               lambda result: result[0].shape[0])
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    channels = data.shape[1]
    mono = data.mean(axis=1) if channels > 1 else data[:, 0]
    return LoadedAudio(resample(mono, int(rate)), int(rate), channels)


def write_wav(path: str | Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav atomically (temporary name, then rename)."""
    path = Path(path)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise AudioError(f"{path}: refusing to write {samples.shape} samples (need non-empty mono)")
    tmp = temporary_path(path)
    try:
        sf.write(str(tmp), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def duration_seconds(path: str | Path) -> float:
    """Duration from the header, without decoding the samples."""
    info = sf.info(str(path))
    return info.frames / info.samplerate
