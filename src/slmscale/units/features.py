"""Frame features for speech units: MFCC and log-mel in torch, HuBERT via `hubert.py`.

An extractor maps float32 mono 16 kHz samples to float32 ``[frames, dim]``.
Every kind goes through the same two post-processing steps, in this order:

1. CMVN (``spec.cmvn``) at the native frame rate, with the statistics of the whole utterance or of
   the audio up to each frame (``spec.cmvn_stats``);
2. stacking of ``native_rate // frame_rate`` consecutive frames by
   **concatenation** (dim grows by that factor). We concatenate instead of
   averaging because averaging is a low-pass filter over time: a 40 ms frame
   that spans a transition would be reduced to the midpoint of the two sounds,
   while concatenation lets k-means see the trajectory. The cost (a larger dim)
   is negligible for k-means assignment (docs/DESIGN.md §5.2). Trailing native frames
   that do not fill a whole stack are dropped (at most 30 ms of audio).

Framing of mfcc/logmel is not centred: a 25 ms window every 10 ms, so an
utterance of ``n`` samples gives ``1 + (n - 400) // 160`` frames (HTK/Kaldi
``snip_edges`` convention; no padded half-frames of silence at the edges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal

import numpy as np
import torch

from slmscale.units.hubert import HubertFrames, hubert_native_rate

WINDOW_SECONDS = 0.025
"""Analysis window of mfcc/logmel (25 ms)."""
HOP_SECONDS = 0.010
"""Hop of mfcc/logmel (10 ms, i.e. a native rate of 100 Hz)."""
MFCC_MEL_BANDS = 40
"""Mel bands under the MFCC DCT (as in the de-risking measurement, docs/DESIGN.md §5.2)."""
DELTA_WIDTH = 9
"""Regression window of the Δ and ΔΔ coefficients (4 frames each side)."""
LOG_FLOOR = 1e-10
"""Floor on mel energies before the log, so silence gives a finite value."""
CMVN_STD_FLOOR = 1e-5
"""Floor on the per-dimension std in CMVN, so constant dims map to 0, not NaN."""
CMVN_STATS = ("utterance", "past")
"""Where CMVN takes its statistics from (FeatureSpec.cmvn_stats)."""
CMVN_WARMUP_SECONDS = 1.0
"""Past-only CMVN: frames in the first second share the statistics of that second, so the first
frames are not normalised by the mean of one or two frames (which would map them to 0)."""
FRAME_RATES = (100, 50, 25)
"""Output frame rates a spec may ask for (0 asks for the kind's native rate)."""
KINDS = ("mfcc", "logmel", "hubert")
"""Feature kinds."""


@dataclass(frozen=True)
class FeatureSpec:
    kind: Literal["mfcc", "logmel", "hubert"] = "mfcc"
    """Feature type: 39-d MFCC (13 + Δ + ΔΔ), log-mel filterbank, or a HuBERT hidden layer."""
    frame_rate: int = 0
    """Output frames per second: 0 (the kind's native rate: 100 Hz for mfcc/logmel, the model's own rate for hubert, e.g. 50 Hz for base), 100, 50 or 25. A rate below the native one concatenates consecutive native frames; it must divide the native rate. A tokenizer dir records the resolved rate, never 0."""
    cmvn: bool = True
    """Per-utterance mean/variance normalisation of every feature dimension (before stacking); its statistics are those of each utterance itself. `tokenizer import-kmeans` defaults it to false: released quantizers were fitted on raw features."""
    cmvn_stats: Literal["utterance", "past"] = "utterance"
    """CMVN statistics: "utterance" (each utterance's own: every frame depends on the whole file, so
    two files that share a prefix get different units over it) or "past" (the frames up to each
    frame, and at least the first CMVN_WARMUP_SECONDS: a shared prefix gets identical features and
    units, so a minimal pair or a cloze ending changes units only where its audio changes;
    docs/LOG.md, 2026-12-07: no better downstream on the tiny world, and a higher loss). "utterance"
    is what tokenizers written before the option computed: a recorded spec without the key means it.
    `tokenizer train` defaults to "past" (TokenizerConfig)."""
    n_mfcc: int = 13
    """Cepstral coefficients kept (c0 included); the MFCC dim is 3 * n_mfcc with deltas."""
    n_mels: int = 80
    """Log-mel bins for kind=logmel (MFCC always uses 40 mel bands)."""
    hubert_path: str = ""
    """Local directory with config.json + weights in save_pretrained layout (kind=hubert); never downloaded."""
    layer: int = 11
    """hidden_states index taken from HuBERT (0 = transformer input, N = output of layer N)."""
    chunk_seconds: float = 30.0
    """Longest piece of audio given to HuBERT at once; longer utterances are processed in chunks."""
    normalize_waveform: bool = False
    """Zero-mean unit-variance waveform before HuBERT (off: the paper uses no waveform normalisation)."""
    sample_rate: int = 16000
    """Sample rate the extractor expects; audio is resampled to it when loaded."""

    def __post_init__(self) -> None:
        from slmscale.config import ConfigError
        if self.kind not in KINDS:
            raise ConfigError(f"unknown feature kind {self.kind!r} (expected {', '.join(KINDS)})")
        if self.cmvn_stats not in CMVN_STATS:
            raise ConfigError(f"cmvn_stats {self.cmvn_stats!r} is not one of {', '.join(CMVN_STATS)}")
        if self.frame_rate != 0 and self.frame_rate not in FRAME_RATES:
            raise ConfigError(f"frame_rate {self.frame_rate} Hz is not one of 0 (native), "
                              f"{', '.join(map(str, FRAME_RATES))}")
        for name in ("n_mfcc", "n_mels", "sample_rate"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.layer < 0:
            raise ConfigError(f"layer={self.layer} must be >= 0 (a HuBERT hidden_states index)")
        if not self.chunk_seconds > 0:
            raise ConfigError(f"chunk_seconds must be positive, got {self.chunk_seconds}")


def native_frame_rate(spec: FeatureSpec) -> int:
    """Frames per second of ``spec.kind`` before stacking; for hubert read from the model's config.json."""
    if spec.kind == "hubert":
        return hubert_native_rate(spec.hubert_path, spec.sample_rate)
    return round(1.0 / HOP_SECONDS)


def with_frame_rate(spec: FeatureSpec) -> FeatureSpec:
    """``spec`` with frame_rate 0 (native) replaced by the native rate, as a tokenizer dir records it."""
    return spec if spec.frame_rate else replace(spec, frame_rate=native_frame_rate(spec))


class FeatureExtractor:
    """Native-rate frames from ``frames_fn`` followed by CMVN and stacking."""

    def __init__(self, spec: FeatureSpec, frames_fn: Callable[[np.ndarray], torch.Tensor],
                 native_rate: int, native_dim: int, window_samples: int, hop_samples: int):
        rate = spec.frame_rate or native_rate
        if rate not in FRAME_RATES or native_rate % rate:
            raise ValueError(f"frame_rate {rate} Hz is not reachable from the native "
                             f"{native_rate} Hz of kind {spec.kind!r} by stacking whole frames "
                             f"(allowed: {[r for r in FRAME_RATES if native_rate % r == 0]}, "
                             "or 0 for the native rate)")
        self.spec = spec
        self.stack = native_rate // rate
        self.frame_rate = rate
        self.dim = native_dim * self.stack
        # The fewest samples that give one output frame: one window plus a hop per extra stacked frame.
        self.min_samples = window_samples + (self.stack - 1) * hop_samples
        self.frames_fn = frames_fn
        self.cmvn_warmup = max(1, round(CMVN_WARMUP_SECONDS * native_rate))

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples of shape [n], got shape {samples.shape}")
        if len(samples) < self.min_samples:
            raise ValueError(f"utterance too short: {len(samples)} samples, need at least "
                             f"{self.min_samples} for one {self.frame_rate} Hz {self.spec.kind} frame")
        with torch.inference_mode():
            return self.from_frames(self.frames_fn(samples))

    def from_frames(self, frames: torch.Tensor) -> np.ndarray:
        """CMVN and stacking of one utterance's native-rate frames: what `__call__` does after them."""
        with torch.inference_mode():
            if self.spec.cmvn:
                frames = cmvn(frames) if self.spec.cmvn_stats == "utterance" else cmvn_past(frames, self.cmvn_warmup)
            frames = stack_frames(frames, self.stack)
        return frames.numpy().astype(np.float32, copy=False)


def cmvn(frames: torch.Tensor) -> torch.Tensor:
    """Per-dimension zero mean, unit (population) std over the frames of one utterance."""
    # float64 so that a constant dimension centres to exactly 0 instead of to rounding
    # noise, which the std floor would then blow up.
    wide = frames.double()
    mean = wide.mean(dim=0, keepdim=True)
    std = wide.std(dim=0, keepdim=True, unbiased=False).clamp_min(CMVN_STD_FLOOR)
    return ((wide - mean) / std).to(frames.dtype)


def cmvn_past(frames: torch.Tensor, warmup: int) -> torch.Tensor:
    """Per-dimension zero mean, unit std with the statistics of frames 0..t for frame t (of frames
    0..warmup-1 for the first `warmup`): frame t depends only on the audio up to max(t, warmup).

    The running sums are numpy cumulative sums in float64, accumulated strictly in order, so two
    utterances with the same first n frames get bit-identical statistics (and units) over them.
    """
    wide = frames.double().numpy()
    n = len(wide)
    if n == 0:
        return frames
    sums, squares = np.cumsum(wide, axis=0), np.cumsum(wide * wide, axis=0)
    upto = np.maximum(np.arange(n), min(warmup, n) - 1)
    count = (upto + 1.0)[:, None]
    mean = sums[upto] / count
    var = np.maximum(squares[upto] / count - mean * mean, 0.0)
    out = (wide - mean) / np.maximum(np.sqrt(var), CMVN_STD_FLOOR)
    return torch.from_numpy(out).to(frames.dtype)


def stack_frames(frames: torch.Tensor, stack: int) -> torch.Tensor:
    """Concatenate groups of ``stack`` consecutive frames; a trailing partial group is dropped."""
    if stack == 1:
        return frames
    whole = (frames.shape[0] // stack) * stack
    return frames[:whole].reshape(whole // stack, stack * frames.shape[1])


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK-style filters (peak 1), equally spaced on the mel scale from 0 Hz to Nyquist: [bins, n_mels]."""
    edges_hz = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))
    bin_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    return torch.from_numpy(weights.T.astype(np.float32))


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II basis, first ``n_out`` rows, as an [n_in, n_out] matrix."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(np.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return torch.from_numpy(basis.astype(np.float32))


def deltas(frames: torch.Tensor, width: int = DELTA_WIDTH) -> torch.Tensor:
    """Regression deltas over ``width`` frames; the edge frames are repeated (HTK)."""
    half = width // 2
    padded = torch.cat([frames[:1].expand(half, -1), frames, frames[-1:].expand(half, -1)])
    t = frames.shape[0]
    out = torch.zeros_like(frames)
    for n in range(1, half + 1):
        out += n * (padded[half + n:half + n + t] - padded[half - n:half - n + t])
    return out / (2 * sum(n * n for n in range(1, half + 1)))


class MelFrontend:
    """Windowed power spectrum (FFT) → mel energies → log, at 100 Hz; optional DCT and deltas."""

    def __init__(self, sample_rate: int, n_mels: int, n_ceps: int | None):
        self.win = round(WINDOW_SECONDS * sample_rate)
        self.hop = round(HOP_SECONDS * sample_rate)
        self.n_fft = 1 << (self.win - 1).bit_length()
        # Hamming, as HTK; periodic=False gives the symmetric window of the textbook formula.
        self.window = torch.hamming_window(self.win, periodic=False)
        self.filters = mel_filterbank(n_mels, self.n_fft, sample_rate)
        self.dct = dct_matrix(n_mels, n_ceps) if n_ceps else None

    def __call__(self, samples: np.ndarray) -> torch.Tensor:
        # Not centred: frames start at 0, hop, 2*hop, ... and all lie inside the audio.
        # (torch.stft would frame n_fft samples, not win, and so drop frames at the end.)
        frames = torch.from_numpy(samples).unfold(0, self.win, self.hop) * self.window
        power = torch.fft.rfft(frames, n=self.n_fft).abs().square()
        frames = torch.log((power @ self.filters).clamp_min(LOG_FLOOR))
        if self.dct is None:
            return frames
        ceps = frames @ self.dct
        d1 = deltas(ceps)
        return torch.cat([ceps, d1, deltas(d1)], dim=1)


def build_extractor(spec: FeatureSpec, device: str = "cpu") -> FeatureExtractor:
    """The extractor for ``spec``; mfcc/logmel run on CPU, hubert on ``device``."""
    if spec.kind == "hubert":
        frames = HubertFrames(spec, device)
        return FeatureExtractor(spec, frames, frames.native_rate, frames.dim, frames.field, frames.stride)
    n_mels = MFCC_MEL_BANDS if spec.kind == "mfcc" else spec.n_mels
    n_ceps = spec.n_mfcc if spec.kind == "mfcc" else None
    if n_mels < 1 or (n_ceps is not None and not 1 <= n_ceps <= n_mels):
        raise ValueError(f"bad sizes for {spec.kind}: n_mels={n_mels}, n_mfcc={spec.n_mfcc}")
    front = MelFrontend(spec.sample_rate, n_mels, n_ceps)
    native_rate = round(1.0 / HOP_SECONDS)
    dim = 3 * n_ceps if n_ceps else n_mels
    return FeatureExtractor(spec, front, native_rate, dim, front.win, front.hop)
