"""HuBERT extraction of many utterances: padded batches of chunks against one chunk at a time.

A randomly initialised HubertModel of the base shape (hidden 768, 12 layers, GroupNorm front end;
nothing is downloaded) is saved to a temporary directory and loaded through `slmscale.units`. On
utterances of varying lengths (speech-like noise, 1-8 s), in the same run, it times

- one: `HubertFrames(wave)` per utterance, what `tokenize` does with batch_seconds=0;
- batched: `batched_utterance_frames` with `--batch-seconds` of audio per padded batch;

and checks that both give the same frames (max abs difference printed). The ratio is the figure;
on a GPU the one-at-a-time path leaves the device mostly idle (docs/LOG.md 2026-12-04), on a CPU
the gain is what larger matmuls and fewer Python calls bring. The results replace the hubert-batch
section of benchmarks/RESULTS.md.

    python benchmarks/hubert_batch_speed.py [--utterances 24] [--batch-seconds 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time

import numpy as np
import torch

from slmscale.units.features import FeatureSpec
from slmscale.units.hubert import HubertFrames
from slmscale.units.hubert_batch import batched_utterance_frames
from slmscale.units.model_fixtures import save_random_hubert
from results_md import cpu_model, update_results

BEGIN, END = "<!-- hubert-batch:begin -->", "<!-- hubert-batch:end -->"
SR = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=24)
    parser.add_argument("--batch-seconds", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    waves = [(rng.standard_normal(int(rng.uniform(1.0, 8.0) * SR)) * 0.1).astype(np.float32)
             for _ in range(args.utterances)]
    audio_s = sum(len(w) for w in waves) / SR
    with tempfile.TemporaryDirectory() as tmp:
        save_random_hubert(tmp)
        frames = HubertFrames(FeatureSpec(kind="hubert", hubert_path=tmp, layer=6, frame_rate=50, cmvn=False),
                              args.device)
        with torch.inference_mode():
            frames(waves[0])  # warm-up
            start = time.perf_counter()
            one = [frames(w) for w in waves]
            one_s = time.perf_counter() - start
            start = time.perf_counter()
            batched = batched_utterance_frames(frames, waves, int(args.batch_seconds * SR))
            batched_s = time.perf_counter() - start
    diff = max(float((a - b).abs().max()) for a, b in zip(one, batched))
    bf16 = "native bf16" if "avx512_bf16" in open("/proc/cpuinfo").read() else "no native bf16"
    section = f"""{BEGIN}
### HuBERT extraction: padded batches against one chunk at a time (`benchmarks/hubert_batch_speed.py`)

{datetime.date.today().isoformat()}, {cpu_model()}, {os.cpu_count()} cores ({bf16}), torch {torch.__version__}, \
device {args.device}; random HuBERT-base weights, layer 6, {args.utterances} utterances of 1-8 s \
({audio_s:.0f} s of audio), batches of {args.batch_seconds:g} s.

| path | seconds | audio s per s | ratio |
|---|---|---|---|
| one chunk at a time | {one_s:.2f} | {audio_s / one_s:.1f} | 1.00 |
| padded batches | {batched_s:.2f} | {audio_s / batched_s:.1f} | {one_s / batched_s:.2f} |

Largest frame difference between the two: {diff:.2e}.
{END}
"""
    print(section)
    if not args.no_write:
        update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
