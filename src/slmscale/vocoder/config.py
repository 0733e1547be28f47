"""The config of `slmscale vocoder train`: the weight-free mean-mel vocoder of a tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

from slmscale.config import ConfigError
from slmscale.vocoder.mel import MelSpec


@dataclass(frozen=True)
class VocoderConfig:
    mel: MelSpec = MelSpec()
    """Log-mel analysis (window, hop and bands) of the stored spectra."""
    split: str = "train"
    """Corpus split to learn from (the tokenizer's own training split)."""
    max_seconds: float = 900.0
    """Audio seconds used at most, from a seeded shuffle of the split: 15 minutes give
    thousands of frames per unit at k = 200, and take seconds."""
    seed: int = 0
    """Seed of the utterance shuffle."""
    griffin_lim_iterations: int = 32
    """Griffin-Lim iterations at decoding (32: librosa's default, past which the
    spectral convergence of our mean spectra hardly improves)."""
    smoothing_frames: int = 3
    """Width of the moving average over mel frames at decoding: softens the steps between
    units (3 = 30 ms); 1 disables it."""
    workers: int = 0
    """Feature-extraction processes (0 = one per core). Does not change the output."""

    def __post_init__(self) -> None:
        if self.griffin_lim_iterations < 1 or self.smoothing_frames < 1 or self.max_seconds <= 0:
            raise ConfigError("griffin_lim_iterations and smoothing_frames must be >= 1 and max_seconds > 0")
