"""Open a vocoder of either kind and check that it speaks a tokenizer's units.

A mean-mel vocoder dir (`vocoder.json`) records the fingerprint of the tokenizer it was
learned for; a HiFi-GAN checkpoint dir (`config.json` + `g_*`) may record one under
`tokenizer_fingerprint`, and must at least have one embedding per unit and one unit frame
per hop. A vocoder of another tokenizer would turn every unit into the wrong sound, so it
is an error, not a warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from slmscale.files import StageError
from slmscale.log import get_logger

log = get_logger(__name__)


class Vocoder(Protocol):
    k: int
    sample_rate: int
    samples_per_frame: int
    frame_rate: int
    tokenizer_fingerprint: str | None

    def predict_durations(self, units: np.ndarray) -> np.ndarray: ...

    def synthesize(self, units: np.ndarray, durations: np.ndarray | None = None, seed: int = 0) -> np.ndarray: ...


def load_vocoder(path: str | Path) -> Vocoder:
    """A mean-mel vocoder dir or a unit HiFi-GAN checkpoint (dir or g_ file)."""
    from slmscale.vocoder import hifigan, mean_mel

    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: no such vocoder (make one with `slmscale vocoder train`)")
    if (path / mean_mel.INFO).is_file():
        return mean_mel.load_mean_mel(path)
    if (path / hifigan.CONFIG).is_file() or (path.is_file() and (path.parent / hifigan.CONFIG).is_file()):
        return hifigan.load_code_hifigan(path)
    raise StageError(f"{path}: not a vocoder (expected {mean_mel.INFO} of `slmscale vocoder train`, or a "
                     f"HiFi-GAN {hifigan.CONFIG} with its g_XXXXXXXX checkpoint)")


def check_vocoder(vocoder: Vocoder, where: str | Path, tokenizer_dir: str | Path) -> None:
    """Refuse a vocoder that was not made for the units of `tokenizer_dir`."""
    from slmscale.units.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    if vocoder.tokenizer_fingerprint is not None and vocoder.tokenizer_fingerprint != tok.fingerprint:
        raise StageError(f"vocoder {where} was made for tokenizer {vocoder.tokenizer_fingerprint}, but the units "
                         f"come from tokenizer {tok.fingerprint} ({tokenizer_dir})")
    if vocoder.k != tok.k:
        raise StageError(f"vocoder {where} has {vocoder.k} units but tokenizer {tok.fingerprint} ({tokenizer_dir}) "
                         f"has k={tok.k}")
    if vocoder.frame_rate != tok.spec.frame_rate or vocoder.sample_rate != tok.sample_rate:
        raise StageError(f"vocoder {where} renders {vocoder.frame_rate} unit frames/s at {vocoder.sample_rate} Hz; "
                         f"tokenizer {tok.fingerprint} makes {tok.spec.frame_rate} frames/s at {tok.sample_rate} Hz")
    if vocoder.tokenizer_fingerprint is None:
        log.warning("vocoder %s does not name its tokenizer; add \"tokenizer_fingerprint\": \"%s\" to its "
                    "config.json once you know it was trained on these units", where, tok.fingerprint)
