"""A small units dir with learnable structure, for tests and trainer smoke runs (no audio).

Utterances are sentences of "words" (fixed unit strings) chained by a sparse Markov
model over words, so an LM can go far below the unigram entropy of the units: within
a word the next unit is determined, and each word has few possible successors.
The meta.json carries audio seconds at a made-up rate so bits per second are defined.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmscale.units.shards import ShardWriter, unit_diagnostics, write_units_meta

FAKE_UNITS_PER_SECOND = 40.0


def make_units_dir(path: str | Path, units: int = 24, words: int = 40, utterances: dict[str, int] | None = None,
                   seed: int = 0, tokens: dict[str, int] | None = None, corpus_seed: int | None = None) -> Path:
    """Write a units dir (train/valid/test) of `units` unit types plus EOS and PAD. `tokens`: instead of
    `utterances`, write each split's utterances until it holds at least this many tokens. `seed` fixes
    the "tokenizer" (lexicon, word successors, tokenizer fingerprint); `corpus_seed`, when given, draws
    other sentences of it: the units dirs of one mixture."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    lexicon = [rng.integers(0, units, size=int(rng.integers(2, 6))) for _ in range(words)]
    successors = [rng.choice(words, size=3, replace=False) for _ in range(words)]
    if corpus_seed is not None:
        rng = np.random.default_rng([seed, corpus_seed])
    counts = tokens or utterances or {"train": 400, "valid": 40, "test": 40}
    meta = {"vocab_size": units + 2, "eos_id": units, "pad_id": units + 1, "k": units,
            "tokenizer_fingerprint": f"fake-markov-{units}-{words}-{seed}", "splits": {}}
    histogram = np.zeros(units, dtype=np.int64)
    for split, count in counts.items():
        writer = ShardWriter(path, split, eos_id=units)
        index = 0
        while (writer.tokens if tokens else index) < count:
            word = int(rng.integers(words))
            sentence = []
            for _ in range(int(rng.integers(4, 12))):
                sentence.extend(lexicon[word])
                word = int(rng.choice(successors[word]))
            histogram += np.bincount(sentence, minlength=units)
            writer.add(f"{split}-{index:05d}", sentence)
            index += 1
        written = writer.close()
        meta["splits"][split] = {**written, "audio_seconds": written["tokens"] / FAKE_UNITS_PER_SECOND}
    meta["diagnostics"] = unit_diagnostics(histogram)
    write_units_meta(path, meta)
    return path
