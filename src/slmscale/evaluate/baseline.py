"""The unit n-gram baseline of a run: Kneser-Ney on exactly the tokens the run trained on.

It tells a reader whether the transformer learned more than local unit statistics: on the
built-in world a 5-gram over units already separates many lexical pairs. It sees the run's
training split, cut to the run's `unique_tokens` when the run was data-constrained, and is
cached per (units dir fingerprint, split, token count, order), so a sweep fits it once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmscale.evaluate.inputs import RunVocabulary, cache_entry_lock
from slmscale.evaluate.ngram import KneserNey
from slmscale.files import StageError
from slmscale.lm.record import RunRecord
from slmscale.log import get_logger
from slmscale.units.shards import open_split
from slmscale.units.unigram import units_fingerprint

log = get_logger(__name__)


def fitted_ngram(vocab: RunVocabulary, record: RunRecord, order: int, cache: Path) -> KneserNey:
    config = record.config or {}
    split = config.get("train_split", "train")
    stream = open_split(vocab.units_dir, split).tokens
    unique = config.get("unique_tokens")
    if unique:
        stream = stream[:int(unique)]
    path = cache / "ngram" / f"{units_fingerprint(vocab.units_dir)}-{split}-{len(stream)}-o{order}.npz"
    with cache_entry_lock(path):
        return KneserNey.load(path) if path.is_file() else _fit(vocab, stream, order, path)


def _fit(vocab: RunVocabulary, stream: np.ndarray, order: int, path: Path) -> KneserNey:
    log.info("fitting a %d-gram Kneser-Ney baseline on %s tokens of %s", order, f"{len(stream):,}", vocab.units_dir)
    try:
        model = KneserNey.fit(np.asarray(stream, dtype=np.int64), vocab.vocab_size, order)
    except ValueError as err:
        raise StageError(f"n-gram baseline on {vocab.units_dir}: {err} (set ngram_order=...)") from err
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model
