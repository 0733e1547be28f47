"""The text arm: a world's text (characters or espeak-ng phonemes) as a units dir, so the
same trainer, evaluator and fits serve text and speech LMs (docs/PAPER.md §5.2, Figures 2 and 4).

Alphabets (each symbol one unit; EOS and PAD follow the symbols as for speech units):

- `chars`: the fixed alphabet a-z, space and apostrophe (28 symbols), plus . , ! ? "
  when `punctuation` is on (33). Text is lowercased and accents are stripped (NFKD).
  Punctuation is dropped by default because the speech arm hears no case or punctuation
  marks: a text LM that saw them would be compared on more information than the speech LM
  had. Dropped marks (and hyphens, dashes, ; : ( )) become a space so "well-kept" stays two
  words; runs of spaces collapse. Any other character (a digit, a letter outside a-z after
  accent stripping) is an error naming the record and the character: it has no spelling
  in the alphabet, and guessing one (e.g. for digits) would silently change the text.
- `subwords`: the `chars` text (no punctuation) cut into SentencePiece BPE pieces learned on the
  train split (`subword_vocab` pieces, every letter one of them, so any word, a nonword too, is
  spelled without an unknown piece), as the paper's text LMs read BPE tokens: a token then carries
  about a word, where a character carries a fraction of one. The trained model is stored in
  vocab.json, so benchmarks are cut the same way.
- `phonemes`: espeak-ng's en-us IPA (what the synthesizer speaks), stress marks removed,
  split into phoneme symbols: a length mark or combining diacritic stays with its phoneme
  ("iː", "n̩"), and diphthongs and affricates are one symbol ("aɪ", "tʃ"). Word boundaries
  are off by default, as in the de-risking phoneme topline (42 IPA symbols, docs/DESIGN.md
  §5.4): the speech arm's units do not mark them either. With `word_boundaries` on, a space
  symbol separates words.
  The vocabulary is the symbols of the train split, sorted.

Outputs: UNITS/<split>.bin/.idx/.ids (one utterance per record), UNITS/vocab.json (the
symbols, in id order, and the settings that produced them; benchmarks are encoded with it),
UNITS/meta.json (vocab_size, eos_id, pad_id, alphabet, per split tokens, utterances,
characters, words, tokens_per_character and tokens_per_word of the raw text, EOS excluded,
and the train split's ratios at the top), config.yaml, .completed.

Benchmarks (`encode_benchmark`): a units dir with one split named after the file, holding
"<item id>/positive" then "<item id>/negative" for every item in file order, encoded with
the vocab.json of the text units dir so both share ids; a symbol outside it is an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slmscale.audio.manifest import SPLITS
from slmscale.config import fingerprint, to_dict
from slmscale.files import (StageError, atomic_dir, check_output_dir, content_hash, mark_completed, read_json,
                            write_json)
from slmscale.log import get_logger, progress
from slmscale.units.config import TextUnitsConfig
from slmscale.units.shards import ShardWriter, write_units_meta
from slmscale.world.records import TextRecord, read_benchmark_lines, read_text_records

log = get_logger(__name__)

VOCAB_FILE = "vocab.json"
LETTERS = "abcdefghijklmnopqrstuvwxyz '"
"""The `chars` alphabet without punctuation: 26 letters, space, apostrophe."""
PUNCTUATION = '.,!?"'
"""Marks added to the `chars` alphabet when punctuation is kept."""
SEPARATORS = set(".,!?\";:-()–—")
"""Marks that become a space when they are not part of the alphabet."""
STRESS_MARKS = "ˈˌ"
LENGTH_MARKS = "ːˑ"
JOINED = ("aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ", "tʃ", "dʒ")
"""Two-character IPA sequences that are one phoneme (diphthongs, affricates)."""
WORD_BOUNDARY = " "


@dataclass(frozen=True)
class Vocab:
    """Symbols in id order and the settings that turn text into them."""
    symbols: tuple[str, ...]
    """Symbol i has id i; EOS = len(symbols), PAD = len(symbols) + 1."""
    config: TextUnitsConfig
    model: bytes = b""
    """subwords only: the SentencePiece model that cuts text into `symbols`."""

    @property
    def eos_id(self) -> int:
        return len(self.symbols)

    def fingerprint(self) -> str:
        described = {"symbols": self.symbols, "config": to_dict(self.config)}
        if self.model:  # the segmentation, not only the pieces, decides the ids of a text
            described["model"] = hashlib.sha256(self.model).hexdigest()
        return content_hash(json.dumps(described, sort_keys=True))

    def ids(self, symbols: list[str], where: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.symbols)}
        missing = sorted({s for s in symbols if s not in index})
        if missing:
            raise StageError(f"{where}: symbol(s) {', '.join(map(repr, missing))} are not in the "
                             f"{self.config.alphabet} vocabulary ({len(self.symbols)} symbols)")
        if not symbols:
            raise StageError(f"{where}: no symbols (empty text)")
        return [index[s] for s in symbols]

    def to_json(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols), "eos_id": self.eos_id, "pad_id": self.eos_id + 1,
                "vocab_size": self.eos_id + 2, "fingerprint": self.fingerprint(), "config": to_dict(self.config),
                **({"subword_model": base64.b64encode(self.model).decode()} if self.model else {})}


def read_vocab(path: str | Path) -> Vocab:
    from slmscale.config import from_dict
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    try:
        data = read_json(path)
        return Vocab(tuple(data["symbols"]), from_dict(TextUnitsConfig, data["config"]),
                     base64.b64decode(data.get("subword_model", "")))
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise StageError(f"{path}: not a text units vocabulary ({err})") from None


def char_symbols(text: str, punctuation: bool, where: str) -> list[str]:
    """Text as `chars` symbols (see the module doc for the rules)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
    plain = plain.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    kept = LETTERS + (PUNCTUATION if punctuation else "")
    out = []
    for c in plain:
        if c in kept:
            out.append(c)
        elif c.isspace() or c in SEPARATORS:
            out.append(" ")
        else:
            raise StageError(f"{where}: character {c!r} (U+{ord(c):04X}) has no symbol in the chars "
                             f"alphabet (a-z, space, apostrophe{', ' + PUNCTUATION if punctuation else ''})")
    return list(re.sub(r" +", " ", "".join(out)).strip())


def ipa_symbols(ipa: str, word_boundaries: bool) -> list[str]:
    """espeak IPA ("ðɛɹ wˈʌz") as phoneme symbols, stress removed."""
    out: list[str] = []
    for w, word in enumerate(ipa.split()):
        if w and word_boundaries:
            out.append(WORD_BOUNDARY)
        symbols: list[str] = []
        for c in word:
            if c in STRESS_MARKS:
                continue
            if symbols and (c in LENGTH_MARKS or unicodedata.combining(c)):
                symbols[-1] += c
            elif symbols and symbols[-1] + c in JOINED:
                symbols[-1] += c
            else:
                symbols.append(c)
        out.extend(symbols)
    return out


def arpabet_symbols(phones: str) -> list[str]:
    """One ARPAbet word ("K AE1 T") as phoneme symbols, phone by phone, so a T followed by
    SH stays two symbols."""
    from slmscale.audio.phonemes import PhonemeError, arpabet_to_ipa
    try:
        return [arpabet_to_ipa(p).strip(STRESS_MARKS) for p in phones.split()]
    except PhonemeError as err:
        raise StageError(str(err)) from None


def symbolizer(cfg: TextUnitsConfig, model: bytes = b"") -> Callable[[str, str], list[str]]:
    """A function (text, where) -> symbols for this config (`model`: the subwords' SentencePiece model)."""
    if cfg.alphabet == "chars":
        return lambda text, where: char_symbols(text, cfg.punctuation, where)
    if cfg.alphabet == "subwords":
        import sentencepiece as spm
        processor = spm.SentencePieceProcessor(model_proto=model)
        return lambda text, where: processor.encode("".join(char_symbols(text, False, where)), out_type=str)
    from slmscale.audio.espeak import EspeakBackend
    backend = EspeakBackend()
    backend.check_voice(cfg.voice)
    return lambda text, where: ipa_symbols(backend.phonemize(text, voice=cfg.voice, ipa=True), cfg.word_boundaries)


def train_subwords(texts: list[str], cfg: TextUnitsConfig, where: str) -> bytes:
    """A SentencePiece BPE model of `subword_vocab` pieces over the chars text of `texts`; every
    letter is a required piece, so no text of the alphabet meets an unknown one."""
    import io

    import sentencepiece as spm
    model = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, model_type="bpe", vocab_size=cfg.subword_vocab,
            character_coverage=1.0, required_chars=LETTERS.replace(" ", ""), byte_fallback=False,
            normalization_rule_name="identity", num_threads=1, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
            hard_vocab_limit=False, minloglevel=2)
    except RuntimeError as err:
        raise StageError(f"{where}: subword training failed with subword_vocab {cfg.subword_vocab}: "
                         f"{str(err).strip().splitlines()[-1]}") from None
    return model.getvalue()


def _train_records(records: list[TextRecord], cfg: TextUnitsConfig, text_jsonl: Path) -> list[TextRecord]:
    train = [r for r in records if r.split == "train"]
    if not train:
        raise StageError(f"{text_jsonl}: no train records to build the {cfg.alphabet} vocabulary from")
    return train


def _inventory(cfg: TextUnitsConfig, records: list[TextRecord], symbols: list[list[str]], model: bytes,
               text_jsonl: Path) -> tuple[str, ...]:
    """The symbols of a text units dir in id order."""
    if cfg.alphabet == "chars":
        return tuple(LETTERS + (PUNCTUATION if cfg.punctuation else ""))
    if cfg.alphabet == "subwords":
        import sentencepiece as spm
        processor = spm.SentencePieceProcessor(model_proto=model)
        return tuple(processor.id_to_piece(i) for i in range(processor.get_piece_size()))
    _train_records(records, cfg, text_jsonl)
    return tuple(sorted({s for r, syms in zip(records, symbols) if r.split == "train" for s in syms}))


def tokenize_text(text_jsonl: str | Path, out_dir: str | Path, cfg: TextUnitsConfig) -> dict[str, Any]:
    """A text.jsonl (id, text, kind, split) as a units dir; returns its meta."""
    text_jsonl, out_dir = Path(text_jsonl), Path(out_dir)
    # strict=False: any id/text/split file is text to the text arm (`kind` is not needed here).
    records = read_text_records(text_jsonl, strict=False)
    source = content_hash(text_jsonl.read_bytes())
    stamp = f"{fingerprint(cfg)}:{source}"
    if check_output_dir(out_dir, stamp):
        log.info("%s is already complete; skipping", out_dir)
        return read_json(out_dir / "meta.json")
    model = b""
    if cfg.alphabet == "subwords":
        model = train_subwords(["".join(char_symbols(r.text, False, r.where))
                                for r in _train_records(records, cfg, text_jsonl)], cfg, str(text_jsonl))
    to_symbols = symbolizer(cfg, model)
    symbols = [to_symbols(r.text, r.where) for r in progress(records, f"{cfg.alphabet} of texts", unit="text")]
    inventory = _inventory(cfg, records, symbols, model, text_jsonl)
    vocab = Vocab(inventory, cfg, model)
    splits: dict[str, Any] = {}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            members = [(r, s) for r, s in zip(records, symbols) if r.split == split]
            if not members:
                continue
            writer = ShardWriter(tmp, split, eos_id=vocab.eos_id)
            try:
                for record, syms in members:
                    writer.add(record.id, vocab.ids(syms, record.where))
                counts = writer.close()
            except BaseException:
                writer.abort()
                raise
            characters = sum(len(r.text) for r, _ in members)
            words = sum(len(r.text.split()) for r, _ in members)
            units = counts["tokens"] - counts["utterances"]
            splits[split] = {**counts, "characters": characters, "words": words,
                             "tokens_per_character": round(units / characters, 4),
                             "tokens_per_word": round(units / max(words, 1), 4)}
        reference = splits.get("train") or next(iter(splits.values()))
        meta = {"vocab_size": vocab.eos_id + 2, "eos_id": vocab.eos_id, "pad_id": vocab.eos_id + 1,
                "alphabet": cfg.alphabet, "splits": splits, "source": str(text_jsonl),
                "tokenizer_fingerprint": vocab.fingerprint(),
                "tokens_per_character": reference["tokens_per_character"],
                "tokens_per_word": reference["tokens_per_word"]}
        write_json(tmp / VOCAB_FILE, vocab.to_json())
        write_units_meta(tmp, meta)
        (tmp / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        mark_completed(tmp, stamp)
    log.info("%s: %d records as %d %s symbols -> %s", text_jsonl, len(records), len(inventory), cfg.alphabet, out_dir)
    return meta


def encode_benchmark(benchmark_jsonl: str | Path, vocab_path: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """A benchmark file (id, positive, negative, ...) as a units dir for pair scoring.

    The dir has one split named after the file ("syntax" for syntax.jsonl) holding, for each
    item in file order, "<id>/positive" then "<id>/negative". Lexical items carry their
    pronunciations (`positive_phones`, ARPAbet): the phonemes alphabet uses those, since a
    nonword's spelling says nothing reliable about how it was spoken.
    """
    benchmark_jsonl, out_dir = Path(benchmark_jsonl), Path(out_dir)
    vocab = read_vocab(vocab_path)
    rows = read_benchmark_lines(benchmark_jsonl, strict=False)  # any name: a hand-made file of pairs too
    if not rows:
        raise StageError(f"{benchmark_jsonl}: no items")
    name = benchmark_jsonl.stem
    stamp = f"{vocab.fingerprint()}:{content_hash(benchmark_jsonl.read_bytes())}"
    if check_output_dir(out_dir, stamp):
        return read_json(out_dir / "meta.json")
    to_symbols = symbolizer(vocab.config, vocab.model)
    with atomic_dir(out_dir) as tmp:
        writer = ShardWriter(tmp, name, eos_id=vocab.eos_id)
        try:
            for number, row in progress(rows, f"encoding {name}", unit="item"):
                for side in ("positive", "negative"):
                    where = f"{benchmark_jsonl}:{number} (id {row['id']!r}, {side})"
                    phones = row.get(f"{side}_phones")
                    syms = (arpabet_symbols(phones) if vocab.config.alphabet == "phonemes" and phones
                            else to_symbols(row[side], where))
                    writer.add(f"{row['id']}/{side}", vocab.ids(syms, where))
            counts = writer.close()
        except BaseException:
            writer.abort()
            raise
        meta = {"vocab_size": vocab.eos_id + 2, "eos_id": vocab.eos_id, "pad_id": vocab.eos_id + 1,
                "alphabet": vocab.config.alphabet, "splits": {name: counts}, "benchmark": name,
                "items": len(rows), "source": str(benchmark_jsonl), "tokenizer_fingerprint": vocab.fingerprint()}
        write_units_meta(tmp, meta)
        write_json(tmp / VOCAB_FILE, vocab.to_json())
        mark_completed(tmp, stamp)
    return meta
