"""Unigram tokenization over units: a SentencePiece unigram model whose "characters"
are speech units (docs/PAPER.md §8, Figure 5 / Table 5: vocabulary 5000 over HuBERT units).

Each unit becomes one Unicode character, and each utterance one sentencepiece sentence
(its EOS is not part of the text; the encoded dir gets its own). The characters are not
a private-use block: measured with sentencepiece 0.2.3, when all unit characters share
their leading UTF-8 bytes (chr(0xE000 + u), chr(0xF0000 + u), a CJK or Cyrillic block)
almost no multi-unit seed pieces survive (its seed search seems to branch on bytes). On 1.6 h of espeak MFCC units (k = 200)
a private-use mapping allowed at most 1,192 pieces (compression 1.28x) where the mapping
below allows 5,000 (4.4x). Units take, in order, the printable ASCII characters (one
byte), then two- and three-byte characters ordered so the leading byte changes fastest;
whitespace, control, format and combining characters, unassigned code points and
sentencepiece's "▁" are skipped. That covers 50,985 units. The mapping is stored in
unigram.json and read back from there, so a later Unicode database cannot shift it.

    SPM/unigram.model   the sentencepiece model
    SPM/unigram.json    vocab size, the source units vocabulary and fingerprint, the
                        unit <-> character mapping, and the pieces as unit lists
    SPM/config.yaml, SPM/.completed

Encoded units dirs keep the units dir format with the subword vocabulary: pieces are
0..V-1 (id 0 is sentencepiece's <unk>, never produced because every source unit is a
required character of the model), EOS = V and PAD = V+1. Durations are not kept. Its
meta.json adds, per split, `source_units` and `compression` (source units per piece; the
paper saw about 1.73x) and, when the source had them, `audio_seconds` and
`tokens_per_second`; at the top, `units_per_token` (the train split's compression),
`source` (dir, fingerprint, tokenizer, units), `unigram` (model dir and fingerprint) and
`tokenizer_fingerprint` = "<source tokenizer>+unigram:<model fingerprint>".
"""

from __future__ import annotations

import functools
import io
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from slmscale.config import fingerprint, to_dict
from slmscale.files import (MARKER, StageError, atomic_dir, check_output_dir, content_hash, mark_completed, read_json,
                            read_marker, write_json)
from slmscale.log import get_logger, progress
from slmscale.units.config import UnigramConfig
from slmscale.units.shards import (ShardWriter, check_units_dir, open_split, read_meta,
                                   unit_diagnostics, write_units_meta)

log = get_logger(__name__)

MODEL_FILE = "unigram.model"
INFO_FILE = "unigram.json"


def _usable(codepoint: int) -> bool:
    return codepoint != 0x2581 and unicodedata.category(chr(codepoint))[0] in "LNSP"


@functools.cache
def _codepoint_table() -> tuple[int, ...]:
    """Characters for units 0, 1, ... (see the module doc for why in this order)."""
    table = [c for c in range(0x21, 0x7F) if _usable(c)]
    for cont in range(0x80, 0xC0):
        for lead in range(0xC2, 0xE0):
            table.append(((lead & 0x1F) << 6) | (cont & 0x3F))
    leads3 = [lead for lead in range(0xE1, 0xF0) if lead != 0xED]  # ED: surrogates
    for third in range(0x80, 0xC0):
        for second in range(0x80, 0xC0):
            for lead in leads3:
                table.append(((lead & 0x0F) << 12) | ((second & 0x3F) << 6) | (third & 0x3F))
    return tuple(c for c in table if _usable(c))


def unit_codepoints(k: int) -> list[int]:
    """The code points of units 0..k-1."""
    table = _codepoint_table()
    if k > len(table):
        raise StageError(f"unigram tokenization supports at most {len(table)} units, got {k}")
    return list(table[:k])


def unit_text(units: np.ndarray, codepoints: np.ndarray) -> str:
    """One utterance of units as a string, unit u being chr(codepoints[u])."""
    return "".join(map(chr, codepoints[np.asarray(units, dtype=np.int64)].tolist()))


def text_units(text: str, units_of: dict[str, int]) -> list[int]:
    return [units_of[c] for c in text]


def units_fingerprint(units_dir: str | Path) -> str:
    """A short hash of a units dir's meta.json: it names the tokenizer and the counts."""
    meta = read_meta(units_dir)
    return content_hash(json.dumps(meta, sort_keys=True))


def _source_units(meta: dict[str, Any], units_dir: Path) -> int:
    """k, the number of units of a units dir (its EOS id)."""
    k = int(meta["eos_id"])
    if k <= 0 or k > 0x10000 - 2:
        raise StageError(f"{units_dir / 'meta.json'}: eos_id {k} is not a unit count in [1, 65534]")
    return k


def _tokenizer_id(meta: dict[str, Any]) -> Any:
    """What identifies the tokenizer that made a units dir (None when it does not say)."""
    return meta.get("tokenizer_fingerprint", meta.get("tokenizer"))


class UnigramModel:
    """A trained unigram model: sentencepiece processor plus each piece as its unit list."""

    def __init__(self, model_dir: str | Path):
        import sentencepiece as spm
        self.dir = Path(model_dir)
        info_path = self.dir / INFO_FILE
        if not info_path.is_file() or not (self.dir / MODEL_FILE).is_file():
            raise StageError(f"{self.dir}: not a unigram model dir (needs {MODEL_FILE} and {INFO_FILE}; "
                             "make one with `slmscale unigram train`)")
        self.info = read_json(info_path)
        self.processor = spm.SentencePieceProcessor(model_file=str(self.dir / MODEL_FILE))
        self.vocab_size = int(self.processor.get_piece_size())
        self.source_units = int(self.info["source"]["units"])
        self.codepoints = np.asarray(self.info["unit_codepoints"], dtype=np.int64)
        units_of = {chr(c): u for u, c in enumerate(self.codepoints.tolist())}
        # Piece id -> its units; <unk> (id 0) has none and is refused by decode.
        self.pieces = [np.asarray(text_units(self.processor.id_to_piece(i), units_of), dtype=np.int64)
                       if i != self.processor.unk_id() else None for i in range(self.vocab_size)]
        self.piece_lengths = np.asarray([0 if p is None else len(p) for p in self.pieces])

    def encode(self, utterances: list[np.ndarray]) -> list[list[int]]:
        return self.processor.encode([unit_text(u, self.codepoints) for u in utterances], out_type=int)


def decode_to_units(piece_ids: np.ndarray | list[int], model: UnigramModel) -> np.ndarray:
    """Piece ids (no EOS) back to the unit ids they spell; exact inverse of encoding."""
    ids = np.asarray(piece_ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= model.vocab_size or (model.piece_lengths[ids] == 0).any()):
        raise StageError(f"piece ids must be pieces of the model in [1, {model.vocab_size}) (0 is <unk>)")
    if not ids.size:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([model.pieces[i] for i in ids.tolist()])


def _reword_trainer_error(err: Exception, vocab_size: int, k: int) -> StageError:
    """sentencepiece says "Vocabulary size is too high (V). Please set it to a value <= N."."""
    message = str(err)
    found = re.search(r"value <= (\d+)", message)
    if found:
        return StageError(f"--vocab-size {vocab_size} is too large for this training data: it yields at "
                          f"most {found.group(1)} pieces (over {k} units); use a smaller vocabulary "
                          "or more data")
    return StageError(f"sentencepiece training failed with vocab_size {vocab_size}: {message}")


def train_unigram(units_dir: str | Path, out_dir: str | Path, cfg: UnigramConfig) -> Path:
    """Train a unigram model on the train split of `units_dir`; writes SPM (see module doc)."""
    import sentencepiece as spm
    units_dir, out_dir = Path(units_dir), Path(out_dir)
    check_units_dir(units_dir)
    meta = read_meta(units_dir)
    k = _source_units(meta, units_dir)
    if cfg.train_split not in meta["splits"]:
        raise StageError(f"{units_dir}: no split {cfg.train_split!r} to train on "
                         f"(has {', '.join(meta['splits']) or 'none'})")
    # <unk> takes one id, and every unit is a required single-character piece.
    if cfg.vocab_size <= k + 1:
        raise StageError(f"--vocab-size {cfg.vocab_size} must exceed the {k} source units + 1 (<unk>): "
                         "every unit is a piece of its own")
    source = {"dir": str(Path(units_dir).resolve()), "units": k, "fingerprint": units_fingerprint(units_dir),
              "tokenizer": _tokenizer_id(meta), "split": cfg.train_split}
    stamp = fingerprint(cfg) + ":" + source["fingerprint"]
    if check_output_dir(out_dir, stamp):
        log.info("%s is already complete; skipping", out_dir)
        return out_dir

    data = open_split(units_dir, cfg.train_split)
    lengths = np.diff(data.offsets) - 1
    # Streamed: sentencepiece keeps its own copy, so the strings need not all be held here too.
    codepoints = np.asarray(unit_codepoints(k), dtype=np.int64)
    sentences = (unit_text(data.utterance(i), codepoints) for i in progress(range(len(data)), "reading units", unit="utt"))
    model_bytes = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences, model_writer=model_bytes,
            model_type="unigram", vocab_size=cfg.vocab_size,
            character_coverage=1.0, required_chars="".join(map(chr, codepoints.tolist())),
            normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
            split_by_whitespace=False, split_by_unicode_script=False, split_by_number=False,
            byte_fallback=False, max_sentencepiece_length=cfg.max_piece_length,
            # Bytes, at most 3 per unit character: the longest utterance must fit whole.
            max_sentence_length=int(4 * max(int(lengths.max(initial=0)), 1) + 16),
            input_sentence_size=0, shuffle_input_sentence=False, seed_sentencepiece_size=cfg.seed_pieces,
            num_threads=cfg.threads, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
            hard_vocab_limit=True, minloglevel=2)
    except RuntimeError as err:
        raise _reword_trainer_error(err, cfg.vocab_size, k) from None

    with atomic_dir(out_dir) as tmp:
        (tmp / MODEL_FILE).write_bytes(model_bytes.getvalue())
        processor = spm.SentencePieceProcessor(model_file=str(tmp / MODEL_FILE))
        units_of = {chr(c): u for u, c in enumerate(codepoints.tolist())}
        pieces = [[] if i == processor.unk_id() else text_units(processor.id_to_piece(i), units_of)
                  for i in range(processor.get_piece_size())]
        write_json(tmp / INFO_FILE, {
            "vocab_size": processor.get_piece_size(), "eos_id": cfg.vocab_size, "pad_id": cfg.vocab_size + 1,
            "unk_id": processor.unk_id(), "source": source,
            "unit_codepoints": codepoints.tolist(),
            "train_utterances": len(data), "train_units": int(lengths.sum()),
            "pieces": pieces})
        (tmp / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        mark_completed(tmp, stamp, source=source["fingerprint"])
    log.info("trained a %d-piece unigram model over %d units on %d utterances -> %s",
             cfg.vocab_size, k, len(data), out_dir)
    return out_dir


def encode_units(units_dir: str | Path, model_dir: str | Path, out_dir: str | Path,
                 batch: int = 1024) -> dict[str, Any]:
    """Re-tokenize every split of `units_dir` into unigram pieces; returns the new meta."""
    units_dir, out_dir = Path(units_dir), Path(out_dir)
    check_units_dir(units_dir)
    meta = read_meta(units_dir)
    k = _source_units(meta, units_dir)
    model = UnigramModel(model_dir)
    source = model.info["source"]
    if k != model.source_units:
        raise StageError(f"{units_dir} has {k} units but the unigram model {model_dir} was trained "
                         f"over {model.source_units}")
    if source.get("tokenizer") is not None and _tokenizer_id(meta) not in (None, source["tokenizer"]):
        raise StageError(f"{units_dir} was made by tokenizer {_tokenizer_id(meta)!r}, but the unigram "
                         f"model {model_dir} was trained on units of tokenizer {source['tokenizer']!r}")
    model_fp = _completed_fingerprint(Path(model_dir))
    stamp = f"{model_fp}:{units_fingerprint(units_dir)}"
    if check_output_dir(out_dir, stamp):
        log.info("%s is already complete; skipping", out_dir)
        return read_meta(out_dir)

    vocab = model.vocab_size
    splits: dict[str, Any] = {}
    counts = np.zeros(vocab, dtype=np.int64)
    with atomic_dir(out_dir) as tmp:
        for split, split_meta in meta["splits"].items():
            data = open_split(units_dir, split)
            writer = ShardWriter(tmp, split, eos_id=vocab)
            units_total = 0
            try:
                for start in progress(range(0, len(data), batch), f"encoding {split}", unit="batch"):
                    stop = min(start + batch, len(data))
                    utterances = [data.utterance(i) for i in range(start, stop)]
                    for i, units, pieces in zip(range(start, stop), utterances, model.encode(utterances)):
                        ids = np.asarray(pieces, dtype=np.int64)
                        if (ids == model.processor.unk_id()).any():
                            raise StageError(f"{units_dir}/{split}: utterance {data.ids[i]!r} has a unit "
                                             "the unigram model cannot spell")
                        counts += np.bincount(ids, minlength=vocab)
                        writer.add(data.ids[i], ids)
                        units_total += len(units)
                written = writer.close()
            except BaseException:
                writer.abort()
                raise
            pieces_total = written["tokens"] - written["utterances"]
            splits[split] = {**written, "source_units": units_total,
                             "compression": round(units_total / max(pieces_total, 1), 4)}
            # Audio seconds carry over, so bits per piece convert to bits per second.
            seconds = split_meta.get("audio_seconds")
            if seconds:
                splits[split].update(audio_seconds=seconds, tokens_per_second=round(pieces_total / seconds, 3))
        train = splits.get(source.get("split", "train")) or next(iter(splits.values()), {})
        out_meta = {
            "vocab_size": vocab + 2, "eos_id": vocab, "pad_id": vocab + 1, "splits": splits,
            # Resolved paths: evaluation reads both from wherever it runs (a relative path given on
            # the command line held only from the directory it was given in).
            "unigram": {"model": str(Path(model_dir).resolve()), "fingerprint": model_fp, "pieces": vocab},
            "source": {"dir": str(Path(units_dir).resolve()), "fingerprint": units_fingerprint(units_dir),
                       "tokenizer": _tokenizer_id(meta), "units": k},
            # Pieces are another vocabulary than the raw units: a cache or model keyed on the
            # tokenizer must not take one for the other.
            "tokenizer_fingerprint": f"{_tokenizer_id(meta)}+unigram:{model_fp}",
            # Source units per piece on the training split: bits per piece / units_per_token =
            # bits per source unit, to compare LMs across tokenizations.
            "units_per_token": train.get("compression"),
            "diagnostics": {"pieces": unit_diagnostics(counts)},
        }
        write_units_meta(tmp, out_meta)
        mark_completed(tmp, stamp)
    log.info("encoded %s with %s: compression %s units per piece", units_dir, model_dir,
             {s: v["compression"] for s, v in splits.items()})
    return out_meta


def _completed_fingerprint(model_dir: Path) -> str | None:
    """The fingerprint in a model dir's `.completed` marker (it names config and training data)."""
    marker = read_marker(model_dir)
    if marker is None:
        raise StageError(f"{model_dir}: unigram training did not complete (no valid {MARKER})")
    return marker.get("fingerprint")
