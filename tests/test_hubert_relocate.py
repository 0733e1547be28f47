"""A HuBERT tokenizer names its model by the weights' content: it keeps working when the model
directory moves (`tokenize --hubert-path`), refuses other weights, and its fingerprint, hence
the identity of every units dir made with it, does not depend on where the model lay."""

from __future__ import annotations

import shutil

import pytest

from slmscale.audio.fixtures import make_speech_corpus
from slmscale.cli import main
from slmscale.files import StageError
from slmscale.units.config import TokenizerConfig
from slmscale.units.features import FeatureSpec
from slmscale.units.shards import read_meta
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import load_tokenizer, train_tokenizer

from test_features import save_tiny_hubert


def _config(hubert) -> TokenizerConfig:
    return TokenizerConfig(features=FeatureSpec(kind="hubert", hubert_path=str(hubert), layer=2), k=8,
                           frames_sample=2000, kmeans_iterations=5, workers=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("relocate")
    corpus = make_speech_corpus(root / "corpus", utterances=12, seconds=1.0, held_out=2)
    save_tiny_hubert(root / "hubert")
    train_tokenizer(corpus, root / "tok", _config(root / "hubert"))
    tokenize_corpus(corpus, root / "tok", root / "units", workers=1)
    return root, corpus


def test_a_moved_model_is_found_with_hubert_path_and_gives_the_same_units(trained, tmp_path, capsys):
    root, corpus = trained
    moved = tmp_path / "elsewhere" / "hubert"
    shutil.copytree(root / "hubert", moved)
    shutil.move(str(root / "hubert"), str(tmp_path / "gone"))
    try:
        with pytest.raises(StageError, match="--hubert-path"):
            tokenize_corpus(corpus, root / "tok", tmp_path / "u1", workers=1)
        assert main(["tokenize", str(corpus), "--tokenizer", str(root / "tok"), "--out", str(tmp_path / "u2"),
                     "--hubert-path", str(moved), "--workers", "1"]) == 0
    finally:
        shutil.move(str(tmp_path / "gone"), str(root / "hubert"))
    before, after = read_meta(root / "units"), read_meta(tmp_path / "u2")
    assert after["tokenizer_fingerprint"] == before["tokenizer_fingerprint"]
    for split in ("train", "valid", "test"):
        assert (tmp_path / "u2" / f"{split}.bin").read_bytes() == (root / "units" / f"{split}.bin").read_bytes()


def test_other_weights_are_refused_and_the_fingerprint_ignores_the_path(trained, tmp_path):
    root, corpus = trained
    save_tiny_hubert(tmp_path / "other", seed=1)
    with pytest.raises(StageError, match="not the ones"):
        load_tokenizer(root / "tok", tmp_path / "other")
    # The same weights at another path train the same tokenizer, fingerprint included.
    shutil.copytree(root / "hubert", tmp_path / "copy")
    again = train_tokenizer(corpus, tmp_path / "tok", _config(tmp_path / "copy"))
    assert again.fingerprint == load_tokenizer(root / "tok").fingerprint and again.hubert_weights
    mfcc = train_tokenizer(corpus, tmp_path / "mfcc", TokenizerConfig(k=8, frames_sample=2000, kmeans_iterations=5,
                                                                       workers=1))
    assert not mfcc.hubert_weights
    with pytest.raises(StageError, match="no HuBERT model to relocate"):
        load_tokenizer(tmp_path / "mfcc", tmp_path / "copy")
