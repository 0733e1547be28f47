"""Unigram tokenization over units: training, encoding, exact decoding, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slmscale.files import StageError
from slmscale.units.config import UnigramConfig
from slmscale.units.shards import ShardWriter, check_units_dir, iter_utterances, read_meta, write_units_meta
from slmscale.units.unigram import (UnigramModel, decode_to_units, encode_units, text_units, train_unigram,
                                    unit_codepoints, unit_text)


def markov_units(units_dir, k=200, sizes=(("train", 300), ("valid", 30), ("test", 30)), seed=0,
                 tokenizer="tok-a"):
    """A units dir from a sparse Markov chain over k units: recurring unit sequences, like speech
    units of repeated words, so a unigram model finds multi-unit pieces."""
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, k, size=(k, 6))
    weights = rng.dirichlet(np.full(6, 0.5), size=k)
    splits = {}
    for split, count in sizes:
        writer = ShardWriter(units_dir, split, eos_id=k)
        for i in range(count):
            units = [int(rng.integers(k))]
            for _ in range(int(rng.integers(20, 300))):
                units.append(int(successors[units[-1], rng.choice(6, p=weights[units[-1]])]))
            # Every unit appears somewhere in train, as a real tokenizer's k-means units do.
            if split == "train" and i == 0:
                units = list(range(k)) + units
            writer.add(f"{split}-{i:04d}", units)
        splits[split] = writer.close()
    for counts in splits.values():
        counts["audio_seconds"] = (counts["tokens"] - counts["utterances"]) / 44.0
    write_units_meta(units_dir, {"vocab_size": k + 2, "eos_id": k, "pad_id": k + 1, "splits": splits,
                                 "tokenizer_fingerprint": tokenizer})
    return units_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("unigram")
    units = markov_units(root / "units")
    spm = train_unigram(units, root / "spm", UnigramConfig(vocab_size=600))
    encoded = root / "encoded"
    encode_units(units, spm, encoded)
    return units, spm, encoded


def test_unit_characters():
    codepoints = unit_codepoints(3000)
    assert len(set(codepoints)) == 3000 and codepoints[:3] == [0x21, 0x22, 0x23]
    chars = "".join(map(chr, codepoints))
    assert not any(c.isspace() or c == "\u2581" for c in chars)
    # two-byte characters cycle through leading bytes first
    assert len({chr(c).encode()[0] for c in codepoints[94:120]}) >= 20
    table = np.asarray(codepoints)
    units = np.array([0, 1, 199, 2999])
    text = unit_text(units, table)
    assert text_units(text, {chr(c): u for u, c in enumerate(codepoints)}) == units.tolist()
    with pytest.raises(StageError, match="at most"):
        unit_codepoints(65534)


def test_train_writes_model_info_and_marker(trained):
    _, spm, _ = trained
    info = json.loads((spm / "unigram.json").read_text())
    assert info["vocab_size"] == 600 and info["eos_id"] == 600 and info["pad_id"] == 601
    assert info["source"]["units"] == 200 and info["source"]["tokenizer"] == "tok-a"
    assert len(info["pieces"]) == 600 and info["pieces"][0] == []
    # every unit is a piece of its own, and some pieces span several units
    singles = {tuple(p) for p in info["pieces"] if len(p) == 1}
    assert singles == {(u,) for u in range(200)}
    assert max(len(p) for p in info["pieces"]) > 2
    assert info["unit_codepoints"] == unit_codepoints(200)
    assert (spm / "config.yaml").is_file() and (spm / ".completed").is_file()


def test_encoded_dir_is_valid_and_compressed(trained):
    units, _, encoded = trained
    check_units_dir(encoded)
    meta = read_meta(encoded)
    assert (meta["vocab_size"], meta["eos_id"], meta["pad_id"]) == (602, 600, 601)
    source = read_meta(units)["splits"]
    for split, counts in meta["splits"].items():
        assert counts["utterances"] == source[split]["utterances"]
        assert counts["source_units"] == source[split]["tokens"] - source[split]["utterances"]
        pieces = counts["tokens"] - counts["utterances"]
        assert counts["compression"] == pytest.approx(counts["source_units"] / pieces, abs=1e-3)
        assert counts["compression"] > 1.2
        assert counts["audio_seconds"] == source[split]["audio_seconds"]
        assert counts["tokens_per_second"] == pytest.approx(44.0 / counts["compression"], rel=1e-3)
    assert meta["units_per_token"] == meta["splits"]["train"]["compression"]
    assert meta["source"]["tokenizer"] == "tok-a"
    assert meta["tokenizer_fingerprint"].startswith("tok-a+unigram:") and meta["unigram"]["fingerprint"]


def test_round_trip_is_exact_for_every_utterance(trained):
    units, spm, encoded = trained
    model = UnigramModel(spm)
    for split in ("train", "valid", "test"):
        originals = dict(iter_utterances(units, split))
        pieces = dict(iter_utterances(encoded, split))
        assert list(originals) == list(pieces)
        for utt_id, original in originals.items():
            assert np.array_equal(decode_to_units(pieces[utt_id], model), original), utt_id


def test_decode_refuses_unk_and_out_of_range(trained):
    model = UnigramModel(trained[1])
    with pytest.raises(StageError, match="<unk>"):
        decode_to_units([0], model)
    with pytest.raises(StageError):
        decode_to_units([600], model)


def test_training_is_deterministic_and_rerun_skips(tmp_path, trained):
    units, spm, _ = trained
    again = train_unigram(units, tmp_path / "spm", UnigramConfig(vocab_size=600))
    assert (again / "unigram.model").read_bytes() == (spm / "unigram.model").read_bytes()
    stamp = (again / ".completed").read_text()
    train_unigram(units, again, UnigramConfig(vocab_size=600))
    assert (again / ".completed").read_text() == stamp
    with pytest.raises(StageError, match="different config"):
        train_unigram(units, again, UnigramConfig(vocab_size=500))


def test_vocab_too_large_names_v(tmp_path, trained):
    with pytest.raises(StageError, match="--vocab-size 100000 is too large"):
        train_unigram(trained[0], tmp_path / "spm", UnigramConfig(vocab_size=100000))
    assert not (tmp_path / "spm").exists()


def test_vocab_not_above_unit_count_is_refused(tmp_path, trained):
    with pytest.raises(StageError, match="must exceed the 200 source units"):
        train_unigram(trained[0], tmp_path / "spm", UnigramConfig(vocab_size=201))


def test_encode_refuses_other_tokenizer_units(tmp_path, trained):
    other = markov_units(tmp_path / "other", tokenizer="tok-b", sizes=(("train", 5),))
    with pytest.raises(StageError, match="tok-b"):
        encode_units(other, trained[1], tmp_path / "out")
    fewer = markov_units(tmp_path / "fewer", k=100, sizes=(("train", 5),))
    with pytest.raises(StageError, match="100 units"):
        encode_units(fewer, trained[1], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_train_split_and_model_dir(tmp_path, trained):
    valid_only = markov_units(tmp_path / "v", sizes=(("valid", 3),))
    with pytest.raises(StageError, match="no split 'train'"):
        train_unigram(valid_only, tmp_path / "spm", UnigramConfig(vocab_size=600))
    with pytest.raises(StageError, match="not a unigram model dir"):
        encode_units(trained[0], tmp_path, tmp_path / "out")


def test_command_train_and_encode(tmp_path, trained, capsys):
    import argparse

    from slmscale.units import unigram_command
    parser = argparse.ArgumentParser()
    unigram_command.configure(parser)
    units = trained[0]
    assert unigram_command.run(parser.parse_intermixed_args(
        ["train", str(units), "--out", str(tmp_path / "spm"), "--vocab-size", "400", "max_piece_length=8"])) == 0
    assert "max_piece_length: 8" in (tmp_path / "spm" / "config.yaml").read_text()
    assert unigram_command.run(parser.parse_intermixed_args(
        ["encode", str(units), "--model", str(tmp_path / "spm"), "--out", str(tmp_path / "enc")])) == 0
    assert "compression" in capsys.readouterr().out
    assert read_meta(tmp_path / "enc")["eos_id"] == 400
    with pytest.raises(StageError, match="--vocab-size 99999"):
        unigram_command.run(parser.parse_intermixed_args(
            ["train", str(units), "--out", str(tmp_path / "big"), "--vocab-size", "99999"]))
    with pytest.raises(StageError, match="needs --model"):
        unigram_command.run(parser.parse_intermixed_args(["encode", str(units), "--out", str(tmp_path / "x")]))


def test_an_encoded_dir_names_its_model_and_source_wherever_it_was_made(tmp_path, trained, monkeypatch):
    # Paths given relative to one directory: the encoded dir's meta.json must not depend on it.
    import shutil
    shutil.copytree(trained[0], tmp_path / "units")
    monkeypatch.chdir(tmp_path)
    train_unigram(Path("units"), Path("spm"), UnigramConfig(vocab_size=600))
    encode_units(Path("units"), Path("spm"), Path("encoded"))
    meta = read_meta(tmp_path / "encoded")
    assert meta["unigram"]["model"] == str(tmp_path / "spm") and meta["source"]["dir"] == str(tmp_path / "units")
    assert json.loads((tmp_path / "spm" / "unigram.json").read_text())["source"]["dir"] == str(tmp_path / "units")
