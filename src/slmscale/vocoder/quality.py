"""Resynthesis quality: mel-cepstral distortion and unit error rate.

MCD (Kubichek 1993) is the mean over aligned frames of (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2)
in dB, over cepstral coefficients c_1..c_D of the log amplitude spectrum (c_0, the frame
energy, is left out, as usual). Frames are aligned by dynamic time warping, so a
resynthesis with predicted durations, of another length, is comparable. Here the cepstra
are the orthonormal DCT of the natural-log mel amplitude of `mel.py` divided by sqrt(2 x
bands), which makes sum 2 c_d^2 the mean squared log-amplitude difference over the bands,
as for a true cepstrum (Parseval): an MFCC-style stand-in for the mel-generalised cepstrum
of SPTK-based MCD, so values compare within this project, only roughly with papers. Mel
power is floored 50 dB below the reference's peak, for both signals, so that digital
silence (espeak's pauses) does not dominate the distance. The unit error rate (GSLM, Lakhotia et al. 2021, call its frame version
"unit edit distance") is the Levenshtein distance between the units of the original and
of the re-tokenized resynthesis, divided by the length of the original.
"""

from __future__ import annotations

import math

import numpy as np

from slmscale.vocoder.mel import MelSpec, log_mel

CEPSTRA = 24
"""Coefficients c_1..c_24, a common MCD order at 16 kHz."""
DYNAMIC_RANGE = 1e-5
"""Mel power floor relative to the reference's loudest band and frame (50 dB)."""


def mel_cepstra(samples: np.ndarray, floor: float, spec: MelSpec = MelSpec(), order: int = CEPSTRA) -> np.ndarray:
    """[frames, order] cepstra c_1..c_order of the log mel amplitude (power floored at `floor`)."""
    from scipy.fft import dct
    log_amplitude = 0.5 * np.maximum(log_mel(samples, spec), math.log(floor))
    return dct(log_amplitude, type=2, norm="ortho", axis=1)[:, 1:order + 1] / math.sqrt(2 * spec.n_mels)


def mel_cepstral_distortion(reference: np.ndarray, synthesized: np.ndarray, spec: MelSpec = MelSpec()) -> float:
    """MCD in dB between two waveforms (16 kHz), frames aligned by DTW."""
    import librosa

    reference_mel = log_mel(reference, spec)
    if not len(reference_mel):
        raise ValueError("MCD needs at least one analysis frame of each signal")
    floor = float(np.exp(reference_mel.max())) * DYNAMIC_RANGE
    ref, syn = mel_cepstra(reference, floor, spec), mel_cepstra(synthesized, floor, spec)
    if not len(syn):
        raise ValueError("MCD needs at least one analysis frame of each signal")
    _, path = librosa.sequence.dtw(X=ref.T, Y=syn.T, metric="euclidean")
    distances = np.sqrt(2.0 * ((ref[path[:, 0]] - syn[path[:, 1]]) ** 2).sum(axis=1))
    return float(10.0 / math.log(10.0) * distances.mean())


def edit_distance(reference: np.ndarray, hypothesis: np.ndarray) -> int:
    """Levenshtein distance (unit cost substitutions, insertions, deletions)."""
    ref, hyp = np.asarray(reference), np.asarray(hypothesis)
    row = np.arange(len(hyp) + 1)
    offsets = np.arange(len(hyp) + 1)
    for i, token in enumerate(ref, 1):
        # Deletion and substitution come from the previous row; an insertion chain along
        # the row is a running minimum of (cost - j) + j, which vectorises the recurrence.
        candidate = np.empty_like(row)
        candidate[0] = i
        candidate[1:] = np.minimum(row[1:] + 1, row[:-1] + (hyp != token))
        row = np.minimum.accumulate(candidate - offsets) + offsets
    return int(row[-1])


def unit_error_rate(reference: np.ndarray, hypothesis: np.ndarray) -> float:
    if len(reference) == 0:
        raise ValueError("unit error rate needs a non-empty reference")
    return edit_distance(reference, hypothesis) / len(reference)
