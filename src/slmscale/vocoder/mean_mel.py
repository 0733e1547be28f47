"""The weight-free unit vocoder: each unit's mean log-mel spectrum and run-length statistics.

A k-means unit is a region of feature space; the average log-mel spectrum of the frames
assigned to it is its most likely sound, and the lengths of its runs in undeduplicated
streams give the durations that GSLM's deduplication throws away (Lakhotia et al. 2021
predict them with a network; a mean per unit is the weight-free version). Training runs
the tokenizer's own extractor and k-means assignment over (a seeded sample of) its train
split, so the vocoder learns exactly the units it will be given. Decoding lays each unit's
spectrum out for its duration, smooths the steps between units, and inverts it with
Griffin-Lim (`mel.py`).

    VOC/vocoder.json          kind "mean-mel", tokenizer fingerprint, k, frame rates, mel
                              spec, Griffin-Lim iterations, what it was trained on
    VOC/vocoder.safetensors   mel [k, m, n_mels] (m = mel frames per unit frame),
                              duration_mean/std [k] (run lengths in unit frames),
                              frames/runs [k] (how many frames and runs each unit had)
    VOC/.completed
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.config import fingerprint, to_dict
from slmscale.files import (StageError, atomic_dir, check_output_dir, is_completed, mark_completed,
                            ordinary_permissions, read_json, write_json)
from slmscale.log import get_logger
from slmscale.vocoder.config import VocoderConfig
from slmscale.vocoder.mel import MelSpec, griffin_lim, log_mel, mel_spec_from_dict

log = get_logger(__name__)

KIND = "mean-mel"
INFO = "vocoder.json"
WEIGHTS = "vocoder.safetensors"


@dataclass(frozen=True)
class MeanMelVocoder:
    info: dict[str, Any]
    mel_spec: MelSpec
    mel: np.ndarray
    """float32 [k, m, n_mels] mean log-mel of each unit, per mel frame within a unit frame."""
    duration_mean: np.ndarray
    duration_std: np.ndarray

    @property
    def tokenizer_fingerprint(self) -> str:
        return str(self.info["tokenizer_fingerprint"])

    @property
    def k(self) -> int:
        return int(self.mel.shape[0])

    @property
    def frame_rate(self) -> int:
        return int(self.info["frame_rate"])

    @property
    def sample_rate(self) -> int:
        return self.mel_spec.sample_rate

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.frame_rate

    def predict_durations(self, units: np.ndarray) -> np.ndarray:
        """Run length of each (deduplicated) unit in unit frames: its mean, rounded, at least 1."""
        units = check_units(units, self.k)
        return np.maximum(np.rint(self.duration_mean[units]), 1).astype(np.int64)

    def log_mel(self, units: np.ndarray, durations: np.ndarray) -> np.ndarray:
        """The smoothed log-mel frames [sum(durations) * m, n_mels] of a unit sequence."""
        units = check_units(units, self.k)
        durations = check_durations(durations, units)
        frames = self.mel[np.repeat(units, durations)].reshape(-1, self.mel.shape[2])
        width = int(self.info["smoothing_frames"])
        if width > 1 and len(frames) > 1:
            # Edge-padded moving average: the first and last frames keep their level.
            padded = np.pad(frames, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
            cumsum = np.cumsum(np.vstack([np.zeros((1, frames.shape[1])), padded]), axis=0)
            frames = ((cumsum[width:] - cumsum[:-width]) / width).astype(np.float32)
        return frames

    def synthesize(self, units: np.ndarray, durations: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """16 kHz float32 samples, exactly sum(durations) * samples_per_frame of them.
        `durations=None`: deduplicated units, durations predicted; frame-level units pass ones."""
        units = check_units(units, self.k)
        if durations is None:
            durations = self.predict_durations(units)
        wave = griffin_lim(self.log_mel(units, durations), self.mel_spec,
                           int(self.info["griffin_lim_iterations"]), seed)
        peak = float(np.abs(wave).max(initial=0.0))
        return wave / peak * 0.99 if peak > 0.99 else wave


def check_units(units: np.ndarray, k: int) -> np.ndarray:
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    if units.size and (units.min() < 0 or units.max() >= k):
        raise StageError(f"units must lie in [0, {k}) for this vocoder, got [{units.min()}, {units.max()}]")
    return units


def check_durations(durations: np.ndarray, units: np.ndarray) -> np.ndarray:
    durations = np.asarray(durations, dtype=np.int64).reshape(-1)
    if len(durations) != len(units) or (durations.size and durations.min() < 1):
        raise StageError(f"durations must be one positive frame count per unit ({len(units)} units, "
                         f"{len(durations)} durations)")
    return durations


def _collect(corpus_dir: Path, tokenizer_dir: Path, cfg: VocoderConfig, mel_per_unit: int) -> dict[str, Any]:
    """Sums of log-mel frames per (unit, position) and run lengths per unit over the sample."""
    from slmscale.audio.io import load_audio
    from slmscale.units.dedup import dedup
    from slmscale.units.extraction import corpus_items, extract
    from slmscale.units.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    items = [i for i in corpus_items(corpus_dir, tok.sample_rate) if i.split == cfg.split]
    if not items:
        raise StageError(f"{corpus_dir}: no {cfg.split!r} utterances to learn the vocoder from")
    order = np.random.default_rng(cfg.seed).permutation(len(items))
    chosen, seconds = [], 0.0
    for index in order:
        if seconds >= cfg.max_seconds:
            break
        chosen.append(items[index])
        seconds += Path(items[index].path).stat().st_size / 32_000  # PCM16 at 16 kHz: a fast estimate
    mel_sum = np.zeros((tok.k, mel_per_unit, cfg.mel.n_mels), dtype=np.float64)
    frames = np.zeros(tok.k, dtype=np.int64)
    run_sum, run_sq, runs = np.zeros(tok.k), np.zeros(tok.k), np.zeros(tok.k, dtype=np.int64)
    audio_s = 0.0
    results = extract(chosen, tok.spec, tok.centroids, cfg.workers, desc="vocoder")
    try:
        for item, result in zip(chosen, results):
            if result.problem:
                raise StageError(result.problem)
            samples = load_audio(item.path).samples
            audio_s += len(samples) / cfg.mel.sample_rate
            mel = log_mel(samples, cfg.mel)
            units = result.values
            usable = min(len(units), len(mel) // mel_per_unit)
            units, mel = units[:usable], mel[:usable * mel_per_unit].reshape(usable, mel_per_unit, -1)
            np.add.at(mel_sum, units, mel)
            frames += np.bincount(units, minlength=tok.k)
            kept, lengths = dedup(units)
            np.add.at(run_sum, kept, lengths)
            np.add.at(run_sq, kept, lengths.astype(np.float64) ** 2)
            runs += np.bincount(kept, minlength=tok.k)
    finally:
        results.close()
    return {"tok": tok, "mel_sum": mel_sum, "frames": frames, "run_sum": run_sum, "run_sq": run_sq,
            "runs": runs, "utterances": len(chosen), "seconds": audio_s}


def train_vocoder(corpus_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path,
                  cfg: VocoderConfig = VocoderConfig()) -> MeanMelVocoder:
    """Learn the mean-mel vocoder of a tokenizer from a corpus; writes VOC (see module doc)."""
    from slmscale.units.tokenizer import load_tokenizer

    corpus_dir, tokenizer_dir, out_dir = Path(corpus_dir), Path(tokenizer_dir), Path(out_dir)
    tok = load_tokenizer(tokenizer_dir)
    mel_hops = cfg.mel.frame_rate / tok.spec.frame_rate
    if cfg.mel.frame_rate != 100 or mel_hops != int(mel_hops):
        raise StageError(f"mel hop {cfg.mel.hop} at {cfg.mel.sample_rate} Hz ({cfg.mel.frame_rate:g} frames/s) "
                         f"must give 100 frames/s, a whole number per unit frame ({tok.spec.frame_rate} Hz)")
    stamp = fingerprint({"config": to_dict(replace(cfg, workers=0)), "tokenizer": tok.fingerprint,
                         "corpus": str(corpus_dir.resolve())})
    if check_output_dir(out_dir, stamp):
        log.info("%s is already complete; skipping", out_dir)
        return load_mean_mel(out_dir)
    stats = _collect(corpus_dir, tokenizer_dir, cfg, int(mel_hops))
    frames, runs = stats["frames"], stats["runs"]
    seen = frames > 0
    # A unit never met in the sample falls back to the average spectrum and run length:
    # a neutral sound, rather than silence or an error at decoding time.
    overall = stats["mel_sum"].sum(axis=0) / max(frames.sum(), 1)
    mel = np.where(seen[:, None, None], stats["mel_sum"] / np.maximum(frames, 1)[:, None, None], overall[None])
    mean_run = stats["run_sum"].sum() / max(runs.sum(), 1)
    duration_mean = np.where(runs > 0, stats["run_sum"] / np.maximum(runs, 1), mean_run)
    variance = np.where(runs > 0, stats["run_sq"] / np.maximum(runs, 1) - duration_mean ** 2, 0.0)
    info = {"kind": KIND, "version": 1, "tokenizer_fingerprint": tok.fingerprint, "tokenizer": str(tokenizer_dir.resolve()),
            "k": tok.k, "frame_rate": tok.spec.frame_rate, "mel_frames_per_unit": int(mel_hops),
            "mel": cfg.mel.to_dict(), "griffin_lim_iterations": cfg.griffin_lim_iterations,
            "smoothing_frames": cfg.smoothing_frames,
            "trained_on": {"corpus": str(corpus_dir.resolve()), "split": cfg.split,
                           "utterances": stats["utterances"], "audio_seconds": round(stats["seconds"], 2),
                           "frames": int(frames.sum())},
            "unseen_units": np.flatnonzero(~seen).tolist()}
    tensors = {"mel": mel.astype(np.float32), "duration_mean": duration_mean.astype(np.float32),
               "duration_std": np.sqrt(np.maximum(variance, 0.0)).astype(np.float32),
               "frames": frames.astype(np.int64), "runs": runs.astype(np.int64)}
    from safetensors.numpy import save_file
    with atomic_dir(out_dir) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        ordinary_permissions(tmp / WEIGHTS)
        write_json(tmp / INFO, info)
        mark_completed(tmp, stamp, tokenizer_fingerprint=tok.fingerprint)
    log.info("mean-mel vocoder of %d units from %.0f s of %s (%d units unseen) -> %s", tok.k, stats["seconds"],
             corpus_dir, len(info["unseen_units"]), out_dir)
    return load_mean_mel(out_dir)


def load_mean_mel(vocoder_dir: str | Path) -> MeanMelVocoder:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    vocoder_dir = Path(vocoder_dir)
    if not (vocoder_dir / INFO).is_file() or not is_completed(vocoder_dir):
        raise StageError(f"{vocoder_dir}: not a (complete) vocoder dir (needs {INFO} and .completed)")
    try:
        info = read_json(vocoder_dir / INFO)
        tensors = load_file(str(vocoder_dir / WEIGHTS))
        mel, mean, std = tensors["mel"], tensors["duration_mean"], tensors["duration_std"]
        k, per_unit = int(info["k"]), int(info["mel_frames_per_unit"])
        spec = mel_spec_from_dict(info["mel"], str(vocoder_dir / INFO))
    except (KeyError, OSError, SafetensorError, TypeError, ValueError) as err:
        raise StageError(f"{vocoder_dir}: unreadable vocoder ({type(err).__name__}: {err})") from err
    missing = [key for key in ("tokenizer_fingerprint", "frame_rate", "griffin_lim_iterations", "smoothing_frames")
               if key not in info]
    if missing:
        raise StageError(f"{vocoder_dir / INFO}: missing key {missing[0]!r}")
    if info.get("kind") != KIND:
        raise StageError(f"{vocoder_dir / INFO}: kind {info.get('kind')!r}, expected {KIND!r}")
    if mel.shape != (k, per_unit, spec.n_mels) or mean.shape != (k,) or std.shape != (k,):
        raise StageError(f"{vocoder_dir / WEIGHTS}: tensor shapes {mel.shape}, {mean.shape} disagree with "
                         f"{INFO} (k={k}, {per_unit} mel frames per unit, {spec.n_mels} mels)")
    return MeanMelVocoder(info, spec, mel, mean, std)
