"""`generate`: continue a spoken prompt with a trained unit LM and vocode it (GSLM, Lakhotia et al. 2021).

The prompt is loaded as 16 kHz mono (resampled and down-mixed when needed), turned into
units by the run's own tokenizer (its extractor and k-means assignment, deduplicated when
the run's units were), encoded to pieces for a unigram run, and continued by the
KV-cached sampler of `lm/generate.py`. The LM sees an EOS first, as every utterance it was
trained on followed one. Generated EOS (and PAD, and sentencepiece's <unk>) tokens are
dropped: they mark utterance boundaries, not sounds.

What the output is: the prompt's own samples, unchanged (after the conversion to 16 kHz
mono), followed by the vocoded continuation, for a total of exactly round(seconds * 16000)
samples. The continuation is sampled until its units, laid out with their durations
(predicted by the vocoder for deduplicated units, one frame each otherwise), cover the
remaining time; the vocoded audio is then cut to the sample. So the file "starts with the
prompt" bit for bit, up to 16-bit quantisation. Without a prompt the whole file is
generated (unconditional generation from EOS). A prompt as long as the request leaves
nothing to generate and is an error.

Every argument (the outputs' paths, the run, the prompt and its length, the vocoder or what
the default one needs) is checked before the model is loaded or a vocoder learned, so a
mistake costs no wait and gets an error naming the argument.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slmscale.audio.io import SAMPLE_RATE, AudioError, LoadedAudio, load_audio, write_wav
from slmscale.evaluate.inputs import RunVocabulary, completed_record, default_cache_dir, run_vocabulary
from slmscale.files import StageError, is_completed, write_json
from slmscale.lm.config import SamplingConfig
from slmscale.lm.generate import sample
from slmscale.log import get_logger
from slmscale.vocoder.load import Vocoder, check_vocoder, load_vocoder

log = get_logger(__name__)

MAX_ROUNDS = 64
"""Sampling rounds before giving up on a model that emits almost nothing but EOS."""
FADE_SECONDS = 0.005
"""Fade-in of the continuation, so the junction with the prompt does not click."""


@dataclass(frozen=True)
class PromptUnits:
    samples: np.ndarray
    units: np.ndarray
    """Units of the prompt (deduplicated when the run's are)."""
    durations: np.ndarray
    """Frames per unit (ones when not deduplicated)."""
    conversions: list[str]


def audio_vocabulary(run_dir: Path) -> RunVocabulary:
    vocab = run_vocabulary(run_dir, completed_record(run_dir, "continued"))
    if vocab.modality != "audio" or vocab.tokenizer_dir is None:
        raise StageError(f"{run_dir} is a text-arm run (units dir {vocab.units_dir} holds characters or phonemes): "
                         "it has no speech units to turn into audio")
    return vocab


def check_output(path: str | Path, flag: str) -> Path:
    """`path` if a file can be written there (missing parent dirs are created when writing)."""
    path = Path(path)
    if path.is_dir():
        raise StageError(f"{flag} {path}: is a directory; name a file to write")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not existing.is_dir():
        raise StageError(f"{flag} {path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StageError(f"{flag} {path}: {existing} is not writable")
    return path


def load_prompt(path: str | Path, total: int, seconds: float) -> LoadedAudio:
    """The prompt as 16 kHz mono; refused when unreadable or not shorter than `total` samples."""
    path = Path(path)
    if path.is_dir():
        raise StageError(f"--prompt {path}: is a directory, not an audio file")
    try:
        audio = load_audio(path)
    except AudioError as err:
        raise StageError(f"--prompt {err}") from err
    if len(audio.samples) >= total:
        raise StageError(f"--prompt {path} lasts {len(audio.samples) / SAMPLE_RATE:.2f} s, not shorter than "
                         f"--seconds {seconds}: nothing is left to generate")
    return audio


def tokenize_prompt(audio: LoadedAudio, path: str | Path, tokenizer_dir: Path, dedup: bool) -> PromptUnits:
    """The prompt's samples and units, through the tokenizer's own extractor and assignment."""
    from slmscale.units.dedup import dedup as collapse
    from slmscale.units.extraction import checked_extractor
    from slmscale.units.kmeans import Assigner
    from slmscale.units.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    extractor = checked_extractor(tok.spec)
    if len(audio.samples) < getattr(extractor, "min_samples", 1):
        raise StageError(f"--prompt {path}: {len(audio.samples)} samples, too short for one unit frame")
    units = Assigner(tok.centroids)(extractor(audio.samples))
    units, durations = collapse(units) if dedup else (units, np.ones(len(units), dtype=np.int64))
    return PromptUnits(audio.samples, units.astype(np.int64), durations.astype(np.int64), audio.conversions)


def default_vocoder_plan(tokenizer_dir: Path, cache_dir: Path | None = None) -> tuple[Path, Path | None]:
    """Where the default vocoder of a tokenizer is cached, and the corpus to learn it from (None when
    a completed entry is there: it serves even if its corpus moved or is gone since). Cheap; an error
    when the vocoder is neither cached nor learnable."""
    from slmscale.units.tokenizer import load_tokenizer, training_corpus

    out = (cache_dir or default_cache_dir()) / "vocoders" / load_tokenizer(tokenizer_dir).fingerprint
    if is_completed(out):
        return out, None
    recorded, corpus = training_corpus(tokenizer_dir)
    if corpus is None:
        raise StageError(f"{tokenizer_dir}: its training corpus {recorded!r} is not available to learn the default "
                         f"vocoder from (and none is cached in {out}); make one with `slmscale vocoder train "
                         "CORPUS --tokenizer TOK --out VOC` and pass --vocoder VOC")
    return out, corpus


def default_vocoder(tokenizer_dir: Path, cache_dir: Path | None = None) -> tuple[Vocoder, Path]:
    """The mean-mel vocoder learned from the tokenizer's own training corpus, cached per tokenizer."""
    from slmscale.vocoder.config import VocoderConfig
    from slmscale.vocoder.mean_mel import load_mean_mel, train_vocoder

    out, corpus = default_vocoder_plan(tokenizer_dir, cache_dir)
    if corpus is None:
        log.info("default vocoder: %s (cached)", out)
        return load_mean_mel(out), out
    log.info("default vocoder: mean-mel of tokenizer %s from %s (cached in %s)", out.name, corpus, out)
    return train_vocoder(corpus, tokenizer_dir, out, VocoderConfig(workers=1)), out


class _Decoder:
    """LM tokens <-> units of one run (raw units or unigram pieces)."""

    def __init__(self, vocab: RunVocabulary, k: int):
        self.k = k
        self.unigram = None
        if vocab.unigram_dir is not None:
            from slmscale.units.unigram import UnigramModel
            self.unigram = UnigramModel(vocab.unigram_dir)

    def encode(self, units: np.ndarray) -> list[int]:
        if self.unigram is None:
            return units.tolist()
        return list(self.unigram.encode([units])[0])

    def decode(self, tokens: list[int]) -> np.ndarray:
        """Units spelled by the tokens; EOS, PAD and <unk> are dropped."""
        if self.unigram is None:
            return np.asarray([t for t in tokens if t < self.k], dtype=np.int64)
        from slmscale.units.unigram import decode_to_units
        pieces = [t for t in tokens if t < self.unigram.vocab_size and self.unigram.piece_lengths[t] > 0]
        return decode_to_units(pieces, self.unigram)


def _continuation(model: Any, decoder: _Decoder, context: list[int], frames_needed: int, dedup: bool,
                  vocoder: Vocoder, cfg: SamplingConfig) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Sample tokens until their units cover `frames_needed` unit frames; returns (tokens, units, durations)."""
    tokens: list[int] = []
    units, durations = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for round_ in range(MAX_ROUNDS):
        have = int(durations.sum())
        if have >= frames_needed:
            break
        # Frames per token seen so far (a guess of 1 at first) sets the next batch of tokens.
        per_token = have / len(tokens) if tokens and have else 1.0
        budget = max(8, math.ceil((frames_needed - have) / per_token * 1.1))
        tokens += sample(model, context + tokens, budget, replace(cfg, seed=cfg.seed + round_))
        units = decoder.decode(tokens)
        durations = vocoder.predict_durations(units) if dedup else np.ones(len(units), dtype=np.int64)
    else:
        raise StageError(f"the model generated {len(tokens)} tokens but only {int(durations.sum())} of the "
                         f"{frames_needed} unit frames needed (it emits mostly EOS); try another --seed or "
                         "a higher --temperature")
    # Keep the fewest units that cover the request.
    keep = int(np.searchsorted(np.cumsum(durations), frames_needed) + 1)
    return tokens, units[:keep], durations[:keep]


def generate_speech(run_dir: str | Path, out_wav: str | Path, seconds: float, prompt: str | Path | None = None,
                    vocoder_path: str | Path | None = None, sampling: SamplingConfig = SamplingConfig(),
                    units_out: str | Path | None = None, cache_dir: str | Path | None = None,
                    device: str = "auto") -> dict[str, Any]:
    """Write `out_wav` (see the module doc); returns a JSON-able summary."""
    from slmscale.lm.hf import load_pretrained

    run_dir = Path(run_dir)
    if not seconds > 0:
        raise StageError(f"--seconds must be positive, got {seconds}")
    out_wav = check_output(out_wav, "--out")
    if units_out is not None and check_output(units_out, "--units-out").resolve() == out_wav.resolve():
        raise StageError(f"--units-out {units_out} is the --out file; name another file")
    vocab = audio_vocabulary(run_dir)
    assert vocab.tokenizer_dir is not None
    total = round(seconds * SAMPLE_RATE)
    if prompt is not None:
        given = tokenize_prompt(load_prompt(prompt, total, seconds), prompt, vocab.tokenizer_dir, vocab.dedup)
    else:
        empty = np.zeros(0, dtype=np.int64)
        given = PromptUnits(np.zeros(0, dtype=np.float32), empty, empty, [])
    cache = Path(cache_dir) if cache_dir else None
    if vocoder_path is not None:
        vocoder: Vocoder | None = load_vocoder(vocoder_path)
        voc_where = Path(vocoder_path)
        check_vocoder(vocoder, voc_where, vocab.tokenizer_dir)
    else:
        vocoder = None  # learning it may take a while: after everything else is known to be right
        default_vocoder_plan(vocab.tokenizer_dir, cache)
    chosen = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    model = load_pretrained(run_dir, chosen)
    if model.shape.vocab_size != vocab.vocab_size:
        raise StageError(f"{run_dir}: the model has {model.shape.vocab_size} tokens but its units dir "
                         f"{vocab.units_dir} has vocab_size {vocab.vocab_size}")
    if vocoder is None:
        vocoder, voc_where = default_vocoder(vocab.tokenizer_dir, cache)
        check_vocoder(vocoder, voc_where, vocab.tokenizer_dir)
    remaining = total - len(given.samples)
    frames_needed = math.ceil(remaining / vocoder.samples_per_frame)
    decoder = _Decoder(vocab, vocoder.k)
    context = [vocab.eos_id] + decoder.encode(given.units)
    tokens, units, durations = _continuation(model, decoder, context, frames_needed, vocab.dedup, vocoder, sampling)
    wave = vocoder.synthesize(units, durations, seed=sampling.seed)[:remaining]
    fade = min(len(wave), round(FADE_SECONDS * SAMPLE_RATE))
    if len(given.samples) and fade:
        wave[:fade] *= np.linspace(0.0, 1.0, fade, dtype=np.float32)
    audio = np.concatenate([given.samples.astype(np.float32), wave])
    if len(audio) != total:
        raise StageError(f"internal: vocoded {len(audio)} samples instead of {total}")
    try:
        write_wav(out_wav, audio)
    except OSError as err:
        raise StageError(f"--out {out_wav}: cannot write it ({err})") from err
    summary = {
        "out": str(out_wav), "seconds": total / SAMPLE_RATE, "sample_rate": SAMPLE_RATE,
        "prompt": str(prompt) if prompt is not None else None,
        "prompt_seconds": len(given.samples) / SAMPLE_RATE, "prompt_conversions": given.conversions,
        "prompt_units": given.units.tolist(), "prompt_durations": given.durations.tolist(),
        "tokens": tokens, "units": units.tolist(), "durations": durations.tolist(),
        "dedup": vocab.dedup, "frame_rate": vocoder.frame_rate, "vocabulary_fingerprint": vocab.fingerprint,
        "vocoder": str(voc_where), "sampling": {"temperature": sampling.temperature, "top_k": sampling.top_k,
                                                "top_p": sampling.top_p, "seed": sampling.seed}}
    if units_out is not None:
        try:
            write_json(units_out, summary)
        except OSError as err:
            raise StageError(f"--units-out {units_out}: cannot write it ({err})") from err
    return summary
