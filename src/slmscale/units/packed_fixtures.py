"""Small packed-units dirs in the paper pipeline's schema (docs/PAPER.md §11.2), for tests and for
trying `slmscale units import-packed` without their pipeline: shard folders of audio.bin (int16,
EOS appended to every utterance), audio.len (int64), samples.jsonl, skips.jsonl and meta.json with
the sha256 of each file, written as their ShardWriter lays a shard out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_packed_shard(folder: str | Path, utterances: dict[str, np.ndarray], k: int = 500,
                       seconds_per_unit: float | None = 0.05) -> Path:
    """One shard of `utterances` (id -> units 0..k-1, without EOS). `seconds_per_unit`: the
    `source_duration` written per utterance (None: none written, as for sources of unknown length)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    eos = k
    codes = [np.append(np.asarray(units, dtype=np.int16), np.int16(eos)) for units in utterances.values()]
    np.concatenate(codes).astype(np.int16).tofile(folder / "audio.bin")
    np.asarray([len(c) for c in codes], dtype=np.int64).tofile(folder / "audio.len")
    with (folder / "samples.jsonl").open("w") as handle:
        for (sample_id, units), stream in zip(utterances.items(), codes):
            row = {"id": sample_id, "audio_steps": len(stream), "dataset": "fake", "split": "train",
                   "source_duration": None if seconds_per_unit is None else round(len(units) * seconds_per_unit, 3)}
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    (folder / "skips.jsonl").write_text("")
    files = ("audio.bin", "audio.len", "samples.jsonl", "skips.jsonl")
    meta = {"schema_version": 2, "num_samples": len(codes), "num_audio_steps": int(sum(len(c) for c in codes)),
            "num_skipped": 0, "keep_audio": False,
            "preprocessing": {"unit_extractor": "hubert-kmeans", "collapsed": True, "sample_rate": 16000,
                              "hubert_model": "fake/mhubert", "hubert_layer": 11,
                              "kmeans": {"name": f"fake-km{k}.bin", "sha256": "0" * 64},
                              "vocab_size": k + 2, "eos_token": eos, "pad_token": k + 1},
            "checksums": {name: _sha256(folder / name) for name in files}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder


def random_utterances(count: int, k: int, rng: np.random.Generator, prefix: str = "fake:train:",
                      lengths: tuple[int, int] = (8, 40)) -> dict[str, np.ndarray]:
    """`count` utterances of random units with no unit repeated in a row (the pipeline collapses runs)."""
    utterances = {}
    for index in range(count):
        units = rng.integers(0, k, size=int(rng.integers(*lengths)))
        keep = np.ones(len(units), dtype=bool)
        keep[1:] = units[1:] != units[:-1]
        utterances[f"{prefix}{index:05d}"] = units[keep]
    return utterances


def make_packed_dir(root: str | Path, shards: int = 2, per_shard: int = 30, k: int = 500, seed: int = 0) -> Path:
    """A packed-units dir of `shards` shard folders (shard-00000, ...) of `per_shard` utterances each."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for index in range(shards):
        write_packed_shard(root / f"shard-{index:05d}",
                           random_utterances(per_shard, k, rng, prefix=f"fake:s{index}:"), k)
    return root
