"""Resynthesis quality of the weight-free mean-mel vocoder on held-out utterances of a built-in world.

For each held-out (test split) utterance: its units (the tokenizer's, deduplicated, with
their run lengths) are vocoded with the true durations and with the vocoder's predicted
ones; the audio is compared with the original by mel-cepstral distortion (MCD, dB, DTW
aligned; `slmscale.vocoder.quality`) and re-tokenized, and the unit error rate (edit
distance / length of the original deduplicated units) is measured. The baseline, in the
same run: random units of the same length, with the same durations, vocoded and measured
the same way against the original. GSLM (Lakhotia et al. 2021) evaluates its vocoders by
such resynthesis.

By default it builds a tiny world itself (`slmscale world --config configs/world/tiny.yaml`,
`slmscale synth`, a default tokenizer); or give `--corpus` and `--tokenizer`. The vocoder
learns from the corpus' train split. Results replace the vocoder-quality section of
benchmarks/RESULTS.md (unless --no-write).

    python benchmarks/vocoder_quality.py [--corpus DIR --tokenizer TOK] [--utterances 20]
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from slmscale.audio.io import load_audio
from slmscale.audio.manifest import read_manifest
from slmscale.units.config import TokenizerConfig
from slmscale.units.dedup import dedup
from slmscale.units.extraction import checked_extractor
from slmscale.units.kmeans import Assigner
from slmscale.units.tokenizer import load_tokenizer, train_tokenizer
from slmscale.vocoder.config import VocoderConfig
from slmscale.vocoder.mean_mel import train_vocoder
from slmscale.vocoder.quality import mel_cepstral_distortion, unit_error_rate
from results_md import cpu_model, update_results

BEGIN, END = "<!-- vocoder-quality:begin -->", "<!-- vocoder-quality:end -->"
ROOT = Path(__file__).resolve().parents[1]


def build_tiny_world(work: Path) -> tuple[Path, Path, str]:
    """world -> synth -> tokenizer (defaults: MFCC 100 Hz, k = 200) in `work`."""
    slm = [sys.executable, "-m", "slmscale", "-q"]
    subprocess.run(slm + ["world", "--out", str(work / "world"), "--config", str(ROOT / "configs/world/tiny.yaml")],
                   check=True)
    subprocess.run(slm + ["synth", str(work / "world"), "--out", str(work / "speech")], check=True)
    corpus = work / "speech" / "corpus"
    train_tokenizer(corpus, work / "tok", TokenizerConfig())
    return corpus, work / "tok", "built-in tiny world (configs/world/tiny.yaml, espeak), default tokenizer"


def measure(corpus: Path, tokenizer: Path, vocoder_dir: Path, utterances: int, seed: int) -> dict:
    start = time.time()
    vocoder = train_vocoder(corpus, tokenizer, vocoder_dir, VocoderConfig())
    train_s = time.time() - start
    tok = load_tokenizer(tokenizer)
    extract, assign = checked_extractor(tok.spec), Assigner(tok.centroids)
    held_out = [u for u in read_manifest(corpus) if u.split == "test"][:utterances]
    if not held_out:
        raise SystemExit(f"{corpus}: no test utterances")
    rng = np.random.default_rng(seed)
    rows = {name: {"mcd": [], "uer": []} for name in ("true durations", "predicted durations", "random units")}
    seconds, synth_s = 0.0, 0.0
    for utt in held_out:
        original = load_audio(corpus / utt.path).samples
        seconds += len(original) / 16000
        units, durations = dedup(assign(extract(original)))
        random_units = rng.integers(0, tok.k, len(units))
        for name, (u, d) in {"true durations": (units, durations), "predicted durations": (units, None),
                             "random units": (random_units, durations)}.items():
            t = time.time()
            wave = vocoder.synthesize(u, d)
            synth_s += time.time() - t
            rows[name]["mcd"].append(mel_cepstral_distortion(original, wave))
            rows[name]["uer"].append(unit_error_rate(units, dedup(assign(extract(wave)))[0]))
    return {"rows": {n: {k: float(np.mean(v)) for k, v in r.items()} for n, r in rows.items()},
            "utterances": len(held_out), "seconds": seconds, "train_s": train_s, "synth_s": synth_s,
            "vocoder": vocoder.info, "tokenizer": tok}


def render(result: dict, source: str) -> str:
    info, tok = result["vocoder"], result["tokenizer"]
    lines = [BEGIN, "## Vocoder resynthesis quality (`benchmarks/vocoder_quality.py`)", "",
             f"{datetime.date.today()}, {cpu_model()}. Source: {source}; tokenizer {tok.fingerprint} "
             f"({tok.spec.kind} {tok.spec.frame_rate} Hz, k={tok.k}). Mean-mel vocoder learned from "
             f"{info['trained_on']['audio_seconds']:.0f} s of the train split in {result['train_s']:.1f} s; "
             f"{result['utterances']} held-out test utterances ({result['seconds']:.0f} s), Griffin-Lim "
             f"{info['griffin_lim_iterations']} iterations ({result['synth_s']:.1f} s for all syntheses).", "",
             "| units vocoded | MCD vs original (dB) | unit error rate after re-tokenizing |", "|---|---|---|"]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | {row['mcd']:.2f} | {row['uer']:.3f} |")
    lines += ["", "Unit error rate = edit distance between the deduplicated units of the original and of the "
              "re-tokenized resynthesis / original length. Random units: uniform over the k units, same count "
              "and durations as the original (the baseline). MCD: c1..c24 of the log mel amplitude, DTW-aligned, "
              "floored 50 dB below the original's peak (comparable within this project).", END]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="corpus dir (default: build a tiny world)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer dir (with --corpus)")
    parser.add_argument("--utterances", type=int, default=20, help="held-out utterances measured")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-unit baseline")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if (args.corpus is None) != (args.tokenizer is None):
        parser.error("give both --corpus and --tokenizer, or neither")
    with tempfile.TemporaryDirectory(prefix="vocoder-quality-") as tmp:
        work = Path(tmp)
        if args.corpus is None:
            corpus, tokenizer, source = build_tiny_world(work)
        else:
            corpus, tokenizer, source = args.corpus, args.tokenizer, f"corpus {args.corpus}"
        section = render(measure(corpus, tokenizer, work / "voc", args.utterances, args.seed), source)
    print(section)
    if not args.no_write:
        update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
