"""Log-mel analysis and Griffin-Lim synthesis (Griffin & Lim 1984) through librosa.

The analysis frames match the tokenizer's mfcc/logmel framing (25 ms window every 10 ms,
not centred, `units/features.py`), so mel frame j covers the same samples as native feature
frame j and unit frame i spans mel frames [i*m, (i+1)*m) with m = 100 / unit frame rate.
Synthesis inverts the mel filterbank by non-negative least squares (librosa's
`mel_to_stft`) and recovers a phase by Griffin-Lim with momentum (Perraudin et al. 2013).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slmscale.files import StageError

LOG_FLOOR = 1e-10
"""Floor on mel power before the log, so silence gives a finite value (as units/features.py)."""


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = 16000
    """Sample rate of analysed and synthesized audio."""
    n_fft: int = 400
    """FFT size = window: 25 ms at 16 kHz, the tokenizer's analysis window."""
    hop: int = 160
    """10 ms hop: the tokenizer's native frame rate of 100 Hz."""
    n_mels: int = 80
    """Mel bands of the stored spectra."""
    fmin: float = 0.0
    """Lowest mel band edge, Hz."""
    fmax: float = 8000.0
    """Highest mel band edge, Hz (Nyquist at 16 kHz)."""

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mel_spec_from_dict(values: dict[str, Any], where: str) -> MelSpec:
    try:
        return MelSpec(**values)
    except TypeError as err:
        raise StageError(f"{where}: bad mel spec {values} ({err})") from err


def log_mel(samples: np.ndarray, spec: MelSpec) -> np.ndarray:
    """Natural-log mel power [frames, n_mels], frames = 1 + (n - n_fft) // hop (none if shorter)."""
    import librosa

    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) < spec.n_fft:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    power = librosa.feature.melspectrogram(
        y=samples, sr=spec.sample_rate, n_fft=spec.n_fft, hop_length=spec.hop, win_length=spec.n_fft,
        center=False, power=2.0, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax)
    return np.log(np.maximum(power, LOG_FLOOR)).T.astype(np.float32)


def griffin_lim(log_mel_frames: np.ndarray, spec: MelSpec, iterations: int, seed: int = 0) -> np.ndarray:
    """A waveform of exactly frames * hop samples whose log-mel spectrum approximates the input."""
    import librosa

    frames = np.asarray(log_mel_frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != spec.n_mels:
        raise ValueError(f"expected log-mel frames [T, {spec.n_mels}], got shape {frames.shape}")
    if len(frames) == 0:
        return np.zeros(0, dtype=np.float32)
    power = np.exp(frames.T.astype(np.float64))
    magnitude = librosa.feature.inverse.mel_to_stft(
        power, sr=spec.sample_rate, n_fft=spec.n_fft, power=2.0, fmin=spec.fmin, fmax=spec.fmax)
    # Centred frames: T + 1 of them span exactly T hops (librosa's own `length` argument
    # makes its re-analysis disagree with the spectrogram by one frame).
    magnitude = np.concatenate([magnitude, magnitude[:, -1:]], axis=1)
    wave = librosa.griffinlim(magnitude, n_iter=iterations, hop_length=spec.hop, win_length=spec.n_fft,
                              n_fft=spec.n_fft, center=True, random_state=seed)
    return np.asarray(wave[:len(frames) * spec.hop], dtype=np.float32)
