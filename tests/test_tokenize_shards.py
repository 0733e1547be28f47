"""`tokenize --shard I/N` and `--merge` (units/tokenize_shards.py): shards run in any order, each
resumable, merge into a units dir byte-identical to the unsharded run's, and reruns skip."""

from __future__ import annotations

from pathlib import Path

import pytest

import slmscale.units.extraction as extraction
from slmscale.audio.fixtures import make_speech_corpus
from slmscale.cli import main
from slmscale.files import StageError
from slmscale.units.blocks import BLOCK_ITEMS
from slmscale.units.config import TokenizerConfig
from slmscale.units.tokenize import ordered_corpus_items, tokenize_corpus
from slmscale.units.tokenize_shards import merge_shards, shard_dir, shards_dir, tokenize_shard
from slmscale.units.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A corpus of 148 utterances (train, valid, test), its tokenizer and its unsharded units dir."""
    root = tmp_path_factory.mktemp("shards")
    corpus = make_speech_corpus(root / "corpus", utterances=2 * BLOCK_ITEMS + 20, seconds=0.4, held_out=6)
    train_tokenizer(corpus, root / "tok", TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1))
    tokenize_corpus(corpus, root / "tok", root / "reference", workers=1)
    return corpus, root / "tok", root / "reference"


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_shards_in_any_order_merge_into_the_unsharded_units_dir(job, tmp_path):
    corpus, tok, reference = job
    items, out, source = ordered_corpus_items(corpus, tok), tmp_path / "units", str(corpus.resolve())
    for index in (2, 0, 1):  # a Slurm array finishes in any order
        tokenize_shard(items, tok, out, index, 3, None, False, 1, source)
    assert not out.exists() and len(list(shards_dir(out).iterdir())) == 3
    merge_shards(items, tok, out, None, False, source)
    assert _files(out) == _files(reference)  # .bin/.idx/.ids/.dur, meta.json, config.yaml, .completed
    assert {"train.bin", "valid.ids", "test.dur", "meta.json"} <= set(_files(out))
    assert not shards_dir(out).exists()  # removed once merged
    # Reruns skip: a shard, the merge, and an unsharded tokenize of the same inputs.
    assert "shard" not in tokenize_shard(items, tok, out, 1, 3, None, False, 1, source)
    merge_shards(items, tok, out, None, False, source)
    tokenize_corpus(corpus, tok, out, workers=1)
    assert _files(out) == _files(reference) and not shards_dir(out).exists()


def test_an_interrupted_shard_resumes_and_a_missing_one_stops_the_merge(job, tmp_path, monkeypatch):
    corpus, tok, reference = job
    items, out, source = ordered_corpus_items(corpus, tok), tmp_path / "units", str(corpus.resolve())
    real, calls = extraction._process, {"n": 0}
    tokenize_shard(items, tok, out, 1, 2, None, False, 1, source)

    def interrupted(item):
        calls["n"] += 1
        if calls["n"] > BLOCK_ITEMS + 5:  # in the second block of shard 0's 74 files
            raise KeyboardInterrupt
        return real(item)

    monkeypatch.setattr(extraction, "_process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokenize_shard(items, tok, out, 0, 2, None, False, 1, source)
    assert not shard_dir(out, 0, 2).exists()  # nothing half-written
    with pytest.raises(StageError, match=r"units.shards: shard\(s\) 0 of 2 are not complete.*--shard I/2"):
        merge_shards(items, tok, out, None, False, source)
    assert not out.exists()
    calls["n"] = 0
    monkeypatch.setattr(extraction, "_process", lambda item: (calls.__setitem__("n", calls["n"] + 1), real(item))[1])
    tokenize_shard(items, tok, out, 0, 2, None, False, 1, source)
    assert calls["n"] == len(items) // 2 - BLOCK_ITEMS  # only the unfinished block again
    merge_shards(items, tok, out, None, False, source)
    assert _files(out) == _files(reference)


def test_the_command_shards_and_merges(job, tmp_path, capsys):
    corpus, tok, reference = job
    out = tmp_path / "U"
    base = ["tokenize", str(corpus), "--tokenizer", str(tok), "--out", str(out), "--workers", "1"]
    assert main([*base, "--shard", "2/2"]) == 2 and "0 <= I < N" in capsys.readouterr().err
    assert main([*base, "--merge"]) == 2 and "no shards" in capsys.readouterr().err
    assert main([*base, "--shard", "0/2"]) == 0 and "shard 0/2:" in capsys.readouterr().out
    assert main([*base, "--shard", "1/2"]) == 0
    assert main([*base, "--merge"]) == 0 and "train:" in capsys.readouterr().out
    assert _files(out) == _files(reference)
    assert main([*base, "--shard", "0/3"]) == 0 and "merged already:" in capsys.readouterr().out
