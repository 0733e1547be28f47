"""The text arm: text.jsonl and benchmark files as units dirs (chars and espeak phonemes)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from pathlib import Path

from slmscale.files import StageError, write_jsonl
from slmscale.units.config import TextUnitsConfig
from slmscale.units.shards import check_units_dir, iter_utterances, read_meta
from slmscale.units.text_units import (LETTERS, arpabet_symbols, char_symbols, encode_benchmark, ipa_symbols,
                                       read_vocab, tokenize_text)

ROOT = Path(__file__).resolve().parents[1]

RECORDS = [
    {"id": "s1", "text": "There was once a little pony named Ella.", "kind": "story", "split": "train"},
    {"id": "s2", "text": 'Sara said, "Don\'t be scared!" The cow\'s tail moved.', "kind": "story", "split": "train"},
    {"id": "s3", "text": "The pony was scared.", "kind": "sentence", "split": "valid"},
    {"id": "s4", "text": "Sara named the cow.", "kind": "sentence", "split": "test"},
]


@pytest.fixture()
def text_jsonl(tmp_path):
    path = tmp_path / "text.jsonl"
    write_jsonl(path, RECORDS)
    return path


def decode(units_dir, split):
    symbols = read_vocab(units_dir).symbols
    return {i: "".join(symbols[u] for u in units) for i, units in iter_utterances(units_dir, split)}


def test_char_rules():
    assert char_symbols("Hello,  World! It's Zoë's well-kept \"toy\".", False, "x") == \
        list("hello world it's zoe's well kept toy")
    assert "".join(char_symbols('Hi, "you"!', True, "x")) == 'hi, "you"!'
    with pytest.raises(StageError, match=r"rec 7: character '3' \(U\+0033\)"):
        char_symbols("3 cats", False, "rec 7")


def test_ipa_splitting():
    ipa = "ðɛɹ wˈʌz tʃˈɜːtʃ bˈʌʔn̩ nˈaɪs"
    assert ipa_symbols(ipa, False) == ["ð", "ɛ", "ɹ", "w", "ʌ", "z", "tʃ", "ɜː", "tʃ", "b", "ʌ", "ʔ", "n̩",
                                       "n", "aɪ", "s"]
    assert ipa_symbols("wˈʌz ɐ", True) == ["w", "ʌ", "z", " ", "ɐ"]
    # phone by phone, so T + SH stays two symbols
    assert arpabet_symbols("T SH IY1") == ["t", "ʃ", "iː"]


def test_chars_units_dir(tmp_path, text_jsonl):
    out = tmp_path / "units"
    meta = tokenize_text(text_jsonl, out, TextUnitsConfig())
    report = check_units_dir(out)
    assert [report[s]["utterances"] for s in ("train", "valid", "test")] == [2, 1, 1]
    assert (meta["vocab_size"], meta["eos_id"], meta["pad_id"]) == (len(LETTERS) + 2, len(LETTERS), len(LETTERS) + 1)
    assert meta["alphabet"] == "chars" and meta == read_meta(out)
    assert decode(out, "train") == {"s1": "there was once a little pony named ella",
                                    "s2": "sara said don't be scared the cow's tail moved"}
    assert decode(out, "valid") == {"s3": "the pony was scared"}
    train = meta["splits"]["train"]
    units = train["tokens"] - train["utterances"]
    assert train["characters"] == len(RECORDS[0]["text"]) + len(RECORDS[1]["text"]) and train["words"] == 17
    assert meta["tokens_per_character"] == pytest.approx(units / train["characters"], abs=1e-4)
    assert meta["tokens_per_word"] == pytest.approx(units / 17, abs=1e-4)
    assert (out / "config.yaml").is_file() and (out / ".completed").is_file()


def test_rerun_skips_and_other_config_is_refused(tmp_path, text_jsonl):
    out = tmp_path / "units"
    tokenize_text(text_jsonl, out, TextUnitsConfig())
    stamp = (out / ".completed").read_text()
    tokenize_text(text_jsonl, out, TextUnitsConfig())
    assert (out / ".completed").read_text() == stamp
    with pytest.raises(StageError, match="different config"):
        tokenize_text(text_jsonl, out, TextUnitsConfig(punctuation=True))


def test_phoneme_units_dir(tmp_path, text_jsonl):
    out = tmp_path / "phon"
    meta = tokenize_text(text_jsonl, out, TextUnitsConfig(alphabet="phonemes"))
    vocab = json.loads((out / "vocab.json").read_text())
    assert meta["vocab_size"] == len(vocab["symbols"]) + 2 and vocab["eos_id"] == len(vocab["symbols"])
    assert "ð" in vocab["symbols"] and " " not in vocab["symbols"]
    assert not any(mark in s for s in vocab["symbols"] for mark in "ˈˌ")
    assert decode(out, "valid")["s3"].startswith("ðə")
    # fewer phonemes than letters
    assert meta["tokens_per_character"] < 0.8
    bounded = tokenize_text(text_jsonl, tmp_path / "bounded", TextUnitsConfig(alphabet="phonemes",
                                                                              word_boundaries=True))
    assert " " in read_vocab(tmp_path / "bounded").symbols
    assert bounded["splits"]["valid"]["tokens"] == meta["splits"]["valid"]["tokens"] + 3


def test_phoneme_outside_train_vocabulary_is_an_error(tmp_path):
    path = tmp_path / "text.jsonl"
    write_jsonl(path, [{"id": "a", "text": "cat", "split": "train"}, {"id": "b", "text": "zoo", "split": "valid"}])
    with pytest.raises(StageError, match=r"id 'b'.*'z'"):
        tokenize_text(path, tmp_path / "out", TextUnitsConfig(alphabet="phonemes"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("row, message", [
    ({"id": "a", "split": "train"}, "key 'text'"),
    ({"id": "a", "text": "hi", "split": "dev"}, r"text.jsonl:1: key 'split' is 'dev'"),
    ({"id": "a", "text": "4 dogs", "split": "train"}, "character '4'"),
    ({"id": "a", "text": " ", "split": "train"}, r"text.jsonl:1: key 'text' is empty"),
])
def test_bad_records(tmp_path, row, message):
    path = tmp_path / "text.jsonl"
    write_jsonl(path, [row])
    with pytest.raises(StageError, match=message):
        tokenize_text(path, tmp_path / "out", TextUnitsConfig())
    assert not (tmp_path / "out").exists()


def test_duplicate_ids_are_refused(tmp_path):
    path = tmp_path / "text.jsonl"
    write_jsonl(path, [{"id": "a", "text": "hi", "split": "train"}] * 2)
    with pytest.raises(StageError, match=r"text.jsonl:2: duplicate id 'a'"):
        tokenize_text(path, tmp_path / "out", TextUnitsConfig())


def test_benchmark_pairs(tmp_path, text_jsonl):
    units = tmp_path / "units"
    tokenize_text(text_jsonl, units, TextUnitsConfig())
    bench = tmp_path / "syntax.jsonl"
    write_jsonl(bench, [{"id": "p1", "positive": "The dog was happy.", "negative": "The dog were happy.",
                         "type": "agreement"},
                        {"id": "p2", "positive": "Ella went home.", "negative": "Home went Ella."}])
    meta = encode_benchmark(bench, units / "vocab.json", tmp_path / "bench")
    check_units_dir(tmp_path / "bench")
    assert meta["benchmark"] == "syntax" and meta["items"] == 2 and meta["eos_id"] == len(LETTERS)
    assert decode(tmp_path / "bench", "syntax") == {
        "p1/positive": "the dog was happy", "p1/negative": "the dog were happy",
        "p2/positive": "ella went home", "p2/negative": "home went ella"}


def test_lexical_benchmark_uses_phones_for_phonemes(tmp_path):
    path = tmp_path / "text.jsonl"
    write_jsonl(path, [{"id": "a", "text": "The cat sat on a big mat.", "split": "train"}])
    tokenize_text(path, tmp_path / "phon", TextUnitsConfig(alphabet="phonemes"))
    bench = tmp_path / "lexical.jsonl"
    write_jsonl(bench, [{"id": "l1", "positive": "cat", "negative": "gat",
                         "positive_phones": "K AE1 T", "negative_phones": "G AE1 T"}])
    encode_benchmark(bench, tmp_path / "phon", tmp_path / "bench")
    assert decode(tmp_path / "bench", "lexical") == {"l1/positive": "kæt", "l1/negative": "ɡæt"}
    write_jsonl(bench, [{"id": "l2", "positive": "cat", "negative": "cav",
                         "positive_phones": "K AE1 T", "negative_phones": "K AE1 V"}])
    with pytest.raises(StageError, match=r"id 'l2', negative.*'v'"):
        encode_benchmark(bench, tmp_path / "phon", tmp_path / "bench2")
    assert not (tmp_path / "bench2").exists()


def test_command(tmp_path, text_jsonl, capsys):
    from slmscale.units import text_command
    parser = argparse.ArgumentParser()
    text_command.configure(parser)
    out = tmp_path / "units"
    assert text_command.run(parser.parse_intermixed_args(
        [str(text_jsonl), "--out", str(out), "--alphabet", "chars", "punctuation=true"])) == 0
    assert "." in read_vocab(out).symbols and "per character" in capsys.readouterr().out
    bench = tmp_path / "syntax.jsonl"
    write_jsonl(bench, [{"id": "p1", "positive": "A dog.", "negative": "Dog a."}])
    assert text_command.run(parser.parse_intermixed_args(
        [str(bench), "--vocab", str(out), "--out", str(tmp_path / "bench")])) == 0
    assert read_meta(tmp_path / "bench")["items"] == 1


def test_world_text_and_benchmarks(tmp_path):
    """The built-in tiny world, both alphabets, every benchmark file."""
    from slmscale.config import load_config
    from slmscale.world.config import WorldConfig
    from slmscale.world.generate import build_world
    world = tmp_path / "world"
    build_world(world, load_config(WorldConfig, ROOT / "configs" / "world" / "tiny.yaml"))
    for alphabet in ("chars", "subwords", "phonemes"):
        units = tmp_path / alphabet
        meta = tokenize_text(world / "text.jsonl", units, TextUnitsConfig(alphabet=alphabet, subword_vocab=300))
        assert set(meta["splits"]) == {"train", "valid", "test"}
        for bench in sorted((world / "benchmarks").glob("*.jsonl")):
            out = tmp_path / f"{alphabet}-{bench.stem}"
            encode_benchmark(bench, units, out)
            ids = [i for i, _ in iter_utterances(out, bench.stem)]
            assert ids[0].endswith("/positive") and ids[1].endswith("/negative") and len(ids) % 2 == 0
            tokens = np.concatenate([u for _, u in iter_utterances(out, bench.stem)])
            assert tokens.max() < meta["eos_id"]


def test_subwords_spell_every_text_and_nonword_and_train_the_same_model_twice(tmp_path, text_jsonl):
    # BPE pieces as text LMs read them; the letters are pieces, so a nonword is spelled, never unknown.
    cfg = TextUnitsConfig(alphabet="subwords", subword_vocab=40)
    meta = tokenize_text(text_jsonl, tmp_path / "a", cfg)
    vocab = read_vocab(tmp_path / "a")
    assert meta["vocab_size"] == len(vocab.symbols) + 2 and vocab.model
    assert set(LETTERS.replace(" ", "")) <= {p.lstrip("▁") for p in vocab.symbols}
    spelled = {i: text.replace("▁", " ").strip() for i, text in decode(tmp_path / "a", "train").items()}
    assert spelled["s1"] == "there was once a little pony named ella"
    assert meta["splits"]["train"]["tokens_per_character"] < 1  # pieces are longer than letters
    bench = tmp_path / "lexical.jsonl"
    write_jsonl(bench, [{"id": "w1", "positive": "pony", "negative": "blorf"}])
    encode_benchmark(bench, tmp_path / "a", tmp_path / "bench")
    assert decode(tmp_path / "bench", "lexical")["w1/negative"].replace("▁", "") == "blorf"
    tokenize_text(text_jsonl, tmp_path / "b", cfg)
    assert (tmp_path / "a" / "vocab.json").read_bytes() == (tmp_path / "b" / "vocab.json").read_bytes()
    other = tokenize_text(text_jsonl, tmp_path / "c", TextUnitsConfig(alphabet="subwords", subword_vocab=45))
    assert other["tokenizer_fingerprint"] != meta["tokenizer_fingerprint"]
