"""The test loss says what it covers: run.json names the corpora of the test and validation
splits, and spoken TinyStories (synthetic) gets no test split unless asked for (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import slmscale.lm.train_data as train_data
import slmscale.lm.trainer as trainer
from slmscale.audio.config import TinyStoriesImportConfig
from slmscale.audio.fixtures import make_tinystories_file
from slmscale.audio.tinystories import import_tinystories
from slmscale.config import ConfigError
from slmscale.files import StageError, read_jsonl
from slmscale.lm.config import TrainConfig
from slmscale.units.fixtures import make_units_dir

SMALL = {"train": 30, "valid": 5, "test": 5}
TINY = TrainConfig(size="tiny-L1", tokens=512, context=32, tokens_per_update=256, eval_every=1, lr=1e-2,
                   threads=1)


def _synth_corpus(root: Path) -> Path:
    """What `slmscale synth` leaves: OUT/corpus and OUT/synth.json with hours per split and kind."""
    (root / "corpus").mkdir(parents=True)
    hours = {"train": {"story": 1.0, "sentence": 2.0}, "valid": {"story": 0.1}, "test": {"sentence": 0.1}}
    (root / "synth.json").write_text(json.dumps({"corpus": {"hours": hours}}))
    return root / "corpus"


def _with_source(units: Path, source: Path, **extra) -> Path:
    meta = json.loads((units / "meta.json").read_text())
    (units / "meta.json").write_text(json.dumps({**meta, "source": str(source), **extra}))
    return units


def test_split_corpora_names_who_made_the_corpus_and_what_it_holds(tmp_path):
    corpus = _synth_corpus(tmp_path / "speech")
    meta = {"source": str(corpus), "splits": {"train": {}, "test": {}}}
    assert train_data.split_corpora(meta, "test") == [
        {"corpus": str(corpus), "made_by": "synth", "synthetic": True, "kinds": ["sentence"]}]
    assert train_data.split_corpora(meta, "valid") == []  # the units dir has no such split
    subset = {**meta, "subset": {"of": "/u/raw", "prefixes": ["story-"]}}
    assert train_data.split_corpora(subset, "test") == [
        {"corpus": str(corpus), "made_by": "synth", "synthetic": True, "ids_starting_with": ["story-"]}]
    books = tmp_path / "librispeech"
    books.mkdir()
    (books / "import.json").write_text(json.dumps({"importer": "librispeech", "source": "/data/LibriSpeech"}))
    assert train_data.split_corpora({"source": str(books), "splits": {"test": {}}}, "test") == [
        {"corpus": str(books), "made_by": "import-librispeech", "synthetic": False}]
    # Unigram-encoded units name the units dir they encode as their source.
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "meta.json").write_text(json.dumps(meta))
    encoded = {"source": {"dir": str(raw), "fingerprint": "f"}, "splits": {"test": {}}}
    assert train_data.split_corpora(encoded, "test") == train_data.split_corpora(meta, "test")
    gone = {"source": {"dir": str(tmp_path / "moved")}, "splits": {"test": {}}}
    assert train_data.split_corpora(gone, "test") == [{"corpus": None, "made_by": None, "synthetic": None}]
    unknown = train_data.split_corpora({"source": str(tmp_path / "gone"), "splits": {"test": {}}}, "test")
    assert unknown == [{"corpus": str(tmp_path / "gone"), "made_by": None, "synthetic": None}]


def test_run_record_names_the_corpora_of_its_test_and_valid_loss(tmp_path):
    corpus = _synth_corpus(tmp_path / "speech")
    units = _with_source(make_units_dir(tmp_path / "units", utterances=SMALL), corpus)
    record = trainer.train(units, tmp_path / "run", TINY)
    assert record["status"] == "completed"
    assert record["test_corpora"] == [{"corpus": str(corpus), "made_by": "synth", "synthetic": True,
                                       "kinds": ["sentence"]}]
    assert record["valid_corpora"][0]["kinds"] == ["story"]


def test_a_units_dir_without_a_test_split_says_how_to_keep_one(tmp_path):
    units = make_units_dir(tmp_path / "units", utterances={"train": 30, "valid": 5})
    with pytest.raises(StageError, match=r"no split 'test'.*split-fractions"):
        trainer.train(units, tmp_path / "run", TINY)


def test_tinystories_get_no_test_split_unless_asked(tmp_path):
    source = tmp_path / "TinyStories-train.txt"
    make_tinystories_file(source, 600)
    default = import_tinystories(source, tmp_path / "default", TinyStoriesImportConfig())
    assert "test" not in default["splits"] and default["splits"]["valid"]["stories"] > 0
    assert {row["split"] for row in read_jsonl(tmp_path / "default" / "text.jsonl")} == {"train", "valid"}
    kept = import_tinystories(source, tmp_path / "kept", TinyStoriesImportConfig(split_fractions=(0.98, 0.01, 0.01)))
    assert kept["splits"]["test"]["stories"] > 0


def test_tinystories_config_is_checked_when_made():
    with pytest.raises(ConfigError, match="split_fractions"):
        TinyStoriesImportConfig(split_fractions=(0.5, 0.4))
