"""The speech tokenizer: k-means units, shards, dedup, pickle import, bad inputs, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from slmscale.audio.manifest import Utterance, write_manifest
from slmscale.cli import main
from slmscale.config import load_config
from slmscale.files import StageError
from slmscale.units.config import TokenizerConfig
from slmscale.units.dedup import dedup
from slmscale.units.features import FeatureSpec
from slmscale.units.kmeans import Assigner, train_kmeans
from slmscale.units.shards import check_units_dir, open_split, read_meta
from slmscale.units.tokenize import tokenize_audio_folder, tokenize_corpus
from slmscale.units.tokenizer import load_tokenizer, tokenizer_fingerprint, train_tokenizer
from slmscale.units.units_command import check_units

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ("the dog ran home", "a big red ball", "the girl smiled", "an old man walked slowly",
             "the boy saw the dog", "she ran across the field", "the ball was red", "he smiled at her")


def _speak(texts: tuple[str, ...]) -> list[np.ndarray]:
    from slmscale.audio.espeak import EspeakBackend
    backend = EspeakBackend()
    return [backend.synthesize(text, "en-us").samples for text in texts]


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    return _speak(SENTENCES)


def make_corpus(root: Path, speech: list[np.ndarray]) -> Path:
    """train = first 5 sentences, valid = 2, test = 1; 16 kHz wavs + manifest."""
    root.mkdir(parents=True, exist_ok=True)
    utterances = []
    for n, samples in enumerate(speech):
        split = "train" if n < 5 else "valid" if n < 7 else "test"
        sf.write(str(root / f"u{n}.wav"), samples, 16000, subtype="PCM_16")
        utterances.append(Utterance(f"u{n}", f"u{n}.wav", len(samples) / 16000, 16000, "en-us", split, SENTENCES[n]))
    write_manifest(root, utterances)
    return root


SMALL = TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, speech: list[np.ndarray]) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tok")
    corpus = make_corpus(root / "corpus", speech)
    train_tokenizer(corpus, root / "tok", SMALL)
    return corpus, root / "tok"


def test_dedup_collapses_runs() -> None:
    units, lengths = dedup(np.array([3, 3, 3, 1, 1, 4, 3, 3]))
    assert units.tolist() == [3, 1, 4, 3] and lengths.tolist() == [3, 2, 1, 2]
    assert dedup(np.array([], dtype=np.int64))[0].size == 0


def test_kmeans_assignment_and_k_larger_than_frames() -> None:
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 0.05, size=(200, 3)) for c in (0.0, 5.0, 10.0)]).astype(np.float32)
    centroids = train_kmeans(blobs, 3, 10, seed=0)
    units = Assigner(centroids)(blobs)
    assert all(len(set(units[i * 200:(i + 1) * 200])) == 1 for i in range(3)) and len(set(units)) == 3
    with pytest.raises(StageError, match=r"k=700 .*600"):
        train_kmeans(blobs, 700, 10, seed=0)


def test_train_writes_a_valid_tokenizer(trained: tuple[Path, Path]) -> None:
    _, tok_dir = trained
    desc = json.loads((tok_dir / "tokenizer.json").read_text())
    assert (desc["k"], desc["eos_id"], desc["pad_id"], desc["vocab_size"]) == (16, 16, 17, 18)
    assert desc["features"]["kind"] == "mfcc" and desc["sample_rate"] == 16000 and desc["dedup"] is True
    assert (tok_dir / "config.yaml").is_file() and (tok_dir / ".completed").is_file()
    tok = load_tokenizer(tok_dir)
    assert tok.centroids.shape[0] == 16 and tok.fingerprint == desc["fingerprint"]


def test_tokenize_corpus_shards_eos_dedup_and_rerun(trained: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, tok_dir = trained
    meta = tokenize_corpus(corpus, tok_dir, tmp_path / "units", workers=1)
    assert check_units_dir(tmp_path / "units").keys() == {"train", "valid", "test"}
    assert meta["vocab_size"] == 18 and meta["eos_id"] == 16 and meta["pad_id"] == 17
    assert meta["tokenizer_fingerprint"] == load_tokenizer(tok_dir).fingerprint
    train = open_split(tmp_path / "units", "train")
    assert train.ids == ["u0", "u1", "u2", "u3", "u4"]  # manifest order
    durations = np.fromfile(tmp_path / "units" / "train.dur", dtype=np.uint16)
    raw = tokenize_corpus(corpus, tok_dir, tmp_path / "raw", dedup=False, workers=1)
    raw_train = open_split(tmp_path / "raw", "train")
    for i in range(len(train)):
        start, end = train.offsets[i], train.offsets[i + 1]
        assert train.tokens[end - 1] == 16 and durations[end - 1] == 0
        # Durations of the deduplicated units sum to the utterance's frame count.
        assert durations[start:end].sum() == len(raw_train.utterance(i))
        assert dedup(raw_train.utterance(i))[0].tolist() == train.utterance(i).tolist()
    split = meta["splits"]["train"]
    assert split["dedup_ratio"] > 1 and raw["splits"]["train"]["dedup_ratio"] == 1
    assert 90 < raw["splits"]["train"]["tokens_per_second"] <= 101
    assert 0 < meta["diagnostics"]["entropy_bits"] <= 4 and meta["skipped"] == []
    # Identical on a rerun from scratch with the same seed; a finished dir is skipped.
    first = (tmp_path / "units" / "train.bin").read_bytes()
    mtime = (tmp_path / "units" / "meta.json").stat().st_mtime_ns
    tokenize_corpus(corpus, tok_dir, tmp_path / "units", workers=1)
    assert (tmp_path / "units" / "meta.json").stat().st_mtime_ns == mtime
    train_tokenizer(corpus, tmp_path / "tok2", SMALL)
    tokenize_corpus(corpus, tmp_path / "tok2", tmp_path / "units2", workers=1)
    assert (tmp_path / "units2" / "train.bin").read_bytes() == first
    assert load_tokenizer(tmp_path / "tok2").fingerprint == load_tokenizer(tok_dir).fingerprint


def test_worker_pool_gives_the_same_units(trained: tuple[Path, Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import slmscale.units.extraction
    monkeypatch.setattr(slmscale.units.extraction, "POOL_MIN_SECONDS", 0.0)  # a pool even for tiny input
    corpus, tok_dir = trained
    folder = tmp_path / "lexical"
    folder.mkdir()
    for n in range(20):
        (folder / f"f{n:02d}.wav").write_bytes((corpus / f"u{n % 8}.wav").read_bytes())
    pooled = tokenize_audio_folder(folder, tok_dir, tmp_path / "pooled", workers=2)
    tokenize_audio_folder(folder, tok_dir, tmp_path / "single", workers=1)
    assert list(pooled["splits"]) == ["lexical"] and pooled["splits"]["lexical"]["utterances"] == 20
    assert open_split(tmp_path / "pooled", "lexical").ids == [f"f{n:02d}" for n in range(20)]
    assert (tmp_path / "pooled" / "lexical.bin").read_bytes() == (tmp_path / "single" / "lexical.bin").read_bytes()


def test_k_larger_than_frames_names_both(trained: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, _ = trained
    with pytest.raises(StageError, match=r"k=60000 is larger than the number of frames \(\d+\)"):
        train_tokenizer(corpus, tmp_path / "tok", replace(SMALL, k=60000))
    assert not (tmp_path / "tok").exists()


def test_bad_inputs_are_named_and_nothing_is_left(trained: tuple[Path, Path], tmp_path: Path,
                                                  speech: list[np.ndarray]) -> None:
    _, tok_dir = trained
    corpus = make_corpus(tmp_path / "corpus", speech)
    (corpus / "u6.wav").write_bytes(b"not audio at all")
    with pytest.raises(StageError, match=r"u6\.wav.*--skip-bad"):
        tokenize_corpus(corpus, tok_dir, tmp_path / "units", workers=1)
    assert not (tmp_path / "units").exists() and not list(tmp_path.glob(".units.*.tmp"))
    # The finished blocks stay for the rerun (units/blocks.py), which then leaves nothing beside its output.
    assert len(list(tmp_path.glob(".units.partial-*"))) == 1
    meta = tokenize_corpus(corpus, tok_dir, tmp_path / "units", skip_bad=True, workers=1)
    assert not list(tmp_path.glob(".units*"))
    assert [s["id"] for s in meta["skipped"]] == ["u6"] and "u6.wav" in meta["skipped"][0]["path"]
    assert meta["splits"]["valid"]["utterances"] == 1
    check_units_dir(tmp_path / "units")
    # An empty utterance: too short for one feature frame.
    sf.write(str(corpus / "u6.wav"), np.zeros(10, dtype=np.float32), 16000)
    with pytest.raises(StageError, match=r"u6\.wav: empty utterance"):
        tokenize_corpus(corpus, tok_dir, tmp_path / "units3", workers=1)
    # A file at another sample rate than the tokenizer's.
    sf.write(str(corpus / "u6.wav"), speech[6][::2], 8000)
    with pytest.raises(StageError, match=r"u6\.wav: sample rate 8000 Hz"):
        tokenize_corpus(corpus, tok_dir, tmp_path / "units3", workers=1)
    # A manifest that declares another rate.
    lines = (corpus / "manifest.jsonl").read_text().replace('"sample_rate": 16000', '"sample_rate": 22050', 1)
    (corpus / "manifest.jsonl").write_text(lines)
    with pytest.raises(StageError, match=r"'u0'.*22050 Hz.*16000 Hz"):
        tokenize_corpus(corpus, tok_dir, tmp_path / "units3", workers=1)
    assert not (tmp_path / "units3").exists()


def test_tampered_tokenizer_is_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil
    _, tok_dir = trained
    copy = tmp_path / "tok"
    shutil.copytree(tok_dir, copy)
    desc = json.loads((copy / "tokenizer.json").read_text())
    (copy / "tokenizer.json").write_text(json.dumps({**desc, "fingerprint": "0" * 16}))
    with pytest.raises(StageError, match="fingerprint"):
        load_tokenizer(copy)
    (copy / "tokenizer.json").write_text(json.dumps({**desc, "features": {**desc["features"], "frame_rate": 0}}))
    with pytest.raises(StageError, match="frame_rate is 0"):
        load_tokenizer(copy)
    with pytest.raises(StageError, match="not a .*tokenizer dir"):
        load_tokenizer(tmp_path)


def _pickled_kmeans(path: Path, dim: int) -> np.ndarray:
    joblib = pytest.importorskip("joblib")
    cluster = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(0)
    model = cluster.MiniBatchKMeans(n_clusters=8, n_init=1, random_state=0).fit(rng.standard_normal((200, dim)))
    joblib.dump(model, path)
    return model.cluster_centers_.astype(np.float32)


def test_pickle_import_needs_trust(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from slmscale.units.config import ImportConfig
    from slmscale.units.pickle_import import import_kmeans
    corpus, tok_dir = trained
    dim = load_tokenizer(tok_dir).centroids.shape[1]
    centers = _pickled_kmeans(tmp_path / "km8.bin", dim)
    with pytest.raises(StageError, match="--trust-pickle.*arbitrary code"):
        import_kmeans(tmp_path / "km8.bin", tmp_path / "imported", ImportConfig())
    assert not (tmp_path / "imported").exists()
    tok = import_kmeans(tmp_path / "km8.bin", tmp_path / "imported", ImportConfig(), trust_pickle=True)
    assert tok.k == 8 and np.array_equal(load_tokenizer(tmp_path / "imported").centroids, centers)
    # An import computes the features its centroids were fitted on: no CMVN unless asked, the rate resolved.
    assert (tok.spec.cmvn, tok.spec.frame_rate) == (False, 100)
    meta = tokenize_corpus(corpus, tmp_path / "imported", tmp_path / "units", workers=1)
    assert meta["vocab_size"] == 10
    _pickled_kmeans(tmp_path / "km_wrong_dim.bin", dim + 1)
    with pytest.raises(StageError, match=f"dim {dim + 1}.*dim {dim}"):
        import_kmeans(tmp_path / "km_wrong_dim.bin", tmp_path / "imported2", ImportConfig(), trust_pickle=True)
    # A bare FeatureSpec (whose default is cmvn=True) is not accepted as an import's config.
    with pytest.raises(TypeError, match="ImportConfig"):
        import_kmeans(tmp_path / "km8.bin", tmp_path / "imported3", FeatureSpec(), trust_pickle=True)


def test_units_check_with_the_wrong_tokenizer(trained: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, tok_dir = trained
    tokenize_corpus(corpus, tok_dir, tmp_path / "units", workers=1)
    assert check_units(tmp_path / "units", tok_dir).keys() == {"train", "valid", "test"}
    train_tokenizer(corpus, tmp_path / "other", replace(SMALL, seed=1))
    with pytest.raises(StageError, match=r"made by tokenizer \w+ .*not by .*other"):
        check_units(tmp_path / "units", tmp_path / "other")
    assert main(["units", "check", str(tmp_path / "units"), "--tokenizer", str(tmp_path / "other")]) == 2


def test_cli_train_tokenize_check(trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus, _ = trained
    tok, units = str(tmp_path / "tok"), str(tmp_path / "units")
    # The feature spec is spelled as for import-kmeans: flags, features.<key>= or a bare feature key.
    assert main(["tokenizer", "train", str(corpus), "--out", tok, "--k", "12", "--workers", "1", "--no-cmvn",
                 "frame_rate=50", "frames_sample=4000", "kmeans_iterations=5"]) == 0
    trained_tok = load_tokenizer(tok)
    assert (trained_tok.k, trained_tok.spec.frame_rate, trained_tok.spec.cmvn) == (12, 50, False)
    assert main(["tokenize", str(corpus), "--tokenizer", tok, "--out", units, "--no-dedup", "--workers", "1"]) == 0
    assert read_meta(units)["dedup"] is False and not (tmp_path / "units" / "train.dur").exists()
    assert main(["units", "check", units, "--tokenizer", tok]) == 0
    out = capsys.readouterr().out
    assert "units/s" in out and "made by" in out
    assert main(["tokenizer", "import-kmeans", str(tmp_path / "missing.bin"), "--out", str(tmp_path / "t")]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert main(["tokenizer", "import-kmeans", "--show-config"]) == 0
    assert "features.cmvn = false" in capsys.readouterr().out


def test_hubert_tokenizer_train_import_and_tokenize(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """A tiny random HuBERT saved to disk: trained, imported (TWIST-style) and used end to end."""
    import torch
    from transformers import HubertConfig, HubertModel
    corpus, _ = trained
    torch.manual_seed(0)
    HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                             conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
                ).save_pretrained(tmp_path / "hubert", safe_serialization=True)
    flags = ["--features", "hubert", "--hubert-path", str(tmp_path / "hubert"), "--layer", "2"]
    # No frame rate given: the model's native 50 Hz (issue 16), recorded as such.
    assert main(["tokenizer", "train", str(corpus), "--out", str(tmp_path / "tok"), *flags, "--k", "8",
                 "--workers", "1", "kmeans_iterations=5"]) == 0
    tok = load_tokenizer(tmp_path / "tok")
    assert (tok.spec.kind, tok.spec.layer, tok.spec.frame_rate, tok.centroids.shape) == ("hubert", 2, 50, (8, 32))
    assert tok.spec.cmvn  # train fits on the features it computes, CMVN included, and tokenize computes the same
    meta = tokenize_corpus(corpus, tmp_path / "tok", tmp_path / "units", dedup=False, workers=1)
    assert 45 < meta["splits"]["train"]["tokens_per_second"] <= 50
    # Padded batches of chunks (units/hubert_batch.py) give the same units, up to round-off ties.
    assert main(["tokenize", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "batched"),
                 "--no-dedup", "--workers", "1", "batch_seconds=3", "device=cpu"]) == 0
    for split in ("train", "valid", "test"):
        one, batched = (open_split(tmp_path / d, split).tokens for d in ("units", "batched"))
        assert len(one) == len(batched) and np.mean(one == batched) > 0.99
    assert main(["tokenize", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "bad"),
                 "batch_seconds=-1"]) == 2
    if not torch.cuda.is_available():
        assert main(["tokenize", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "bad"),
                     "device=cuda"]) == 2
    assert not (tmp_path / "bad").exists()
    _pickled_kmeans(tmp_path / "km.bin", 32)
    assert main(["tokenizer", "import-kmeans", str(tmp_path / "km.bin"), "--out", str(tmp_path / "imported"),
                 *flags, "features.frame_rate=50", "--trust-pickle"]) == 0  # spelled as for train
    imported = load_tokenizer(tmp_path / "imported").spec
    assert (imported.hubert_path, imported.frame_rate, imported.cmvn) == (str(tmp_path / "hubert"), 50, False)
    assert check_units_dir(tmp_path / "units").keys() == {"train", "valid", "test"}


def test_committed_config_loads() -> None:
    config = load_config(TokenizerConfig, ROOT / "configs" / "tokenizer" / "default.yaml")
    assert config.k == 200 and config.dedup and config.features.kind == "mfcc"
    assert config.features.frame_rate == 100 and config.features.cmvn
    assert config.features.cmvn_stats == "past" == TokenizerConfig().features.cmvn_stats


def test_fingerprints_of_tokenizers_before_past_cmvn_are_unchanged() -> None:
    """A tokenizer dir written before `cmvn_stats` existed records no such key, and meant whole-utterance
    statistics: it loads as "utterance" with the fingerprint it was written with."""
    import hashlib
    from slmscale.config import to_dict
    centroids = np.arange(12, dtype=np.float32).reshape(3, 4)
    spec = FeatureSpec(frame_rate=100)
    old = {k: v for k, v in to_dict(spec).items() if k != "cmvn_stats"}
    digest = hashlib.sha256(json.dumps(old, sort_keys=True).encode())
    digest.update(centroids.tobytes())
    assert tokenizer_fingerprint(spec, centroids) == digest.hexdigest()[:16]
    assert tokenizer_fingerprint(replace(spec, cmvn_stats="past"), centroids) != digest.hexdigest()[:16]


@pytest.mark.integration
def test_synth_world_corpus_end_to_end(tmp_path: Path) -> None:
    """Acceptance: a spoken tiny world gives valid train/valid/test shards, identical on a rerun."""
    world, spoken = tmp_path / "world", tmp_path / "spoken"
    assert main(["world", "--out", str(world), "--config", str(ROOT / "configs" / "world" / "tiny.yaml")]) == 0
    assert main(["synth", str(world), "--out", str(spoken)]) == 0
    config = replace(TokenizerConfig(), frames_sample=100_000)
    for run in ("a", "b"):
        train_tokenizer(spoken / "corpus", tmp_path / f"tok_{run}", config)
        tokenize_corpus(spoken / "corpus", tmp_path / f"tok_{run}", tmp_path / f"units_{run}")
        assert check_units_dir(tmp_path / f"units_{run}").keys() == {"train", "valid", "test"}
    for split in ("train", "valid", "test"):
        assert ((tmp_path / "units_a" / f"{split}.bin").read_bytes()
                == (tmp_path / "units_b" / f"{split}.bin").read_bytes())
    lexical = spoken / "benchmarks" / "zr2021" / "lexical" / "dev"
    meta = tokenize_audio_folder(lexical, tmp_path / "tok_a", tmp_path / "lexical_units")
    assert meta["splits"]["dev"]["utterances"] == len(list(lexical.glob("*.wav")))
