"""Vocoders: the mean-mel vocoder learned from a corpus, the unit HiFi-GAN from a checkpoint in the
speech-resynthesis layout, resynthesis quality measures, the CLI and the errors."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from slmscale.audio.manifest import Utterance, write_manifest
from slmscale.cli import main
from slmscale.files import StageError
from slmscale.units.config import TokenizerConfig
from slmscale.units.dedup import dedup
from slmscale.units.extraction import checked_extractor
from slmscale.units.kmeans import Assigner
from slmscale.units.shards import open_split
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import load_tokenizer, train_tokenizer
from slmscale.vocoder.config import VocoderConfig
from slmscale.vocoder.hifigan import CodeHiFiGAN, fold_weight_norm, load_code_hifigan, save_code_hifigan
from slmscale.vocoder.load import check_vocoder, load_vocoder
from slmscale.vocoder.mean_mel import load_mean_mel, train_vocoder
from slmscale.vocoder.quality import edit_distance, mel_cepstral_distortion, unit_error_rate

SENTENCES = ("the dog ran home", "a big red ball", "the girl smiled", "an old man walked slowly",
             "the boy saw the dog", "she ran across the field", "the ball was red", "he smiled at her")
SMALL = TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """espeak speech: 6 train and 2 test sentences, a k=16 tokenizer, its units and vocoder."""
    from slmscale.audio.espeak import EspeakBackend
    root = tmp_path_factory.mktemp("voc")
    corpus = root / "corpus"
    corpus.mkdir()
    backend, utterances = EspeakBackend(), []
    for n, text in enumerate(SENTENCES):
        samples = backend.synthesize(text, "en-us").samples
        sf.write(str(corpus / f"u{n}.wav"), samples, 16000, subtype="PCM_16")
        utterances.append(Utterance(f"u{n}", f"u{n}.wav", len(samples) / 16000, 16000, "s",
                                    "train" if n < 6 else "test", text))
    write_manifest(corpus, utterances)
    train_tokenizer(corpus, root / "tok", SMALL)
    tokenize_corpus(corpus, root / "tok", root / "units", workers=1)
    train_vocoder(corpus, root / "tok", root / "voc", VocoderConfig(workers=1))
    return {"root": root, "corpus": corpus, "tok": root / "tok", "units": root / "units", "voc": root / "voc"}


def _test_utterances(world: dict[str, Path]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(original samples, deduplicated units, durations) of the held-out utterances."""
    split = open_split(world["units"], "test")
    durations = np.fromfile(world["units"] / "test.dur", dtype=np.uint16).astype(np.int64)
    out = []
    for i, uid in enumerate(split.ids):
        start, end = int(split.offsets[i]), int(split.offsets[i + 1]) - 1
        samples = sf.read(str(world["corpus"] / f"{uid}.wav"), dtype="float32")[0]
        out.append((samples, split.utterance(i).astype(np.int64), durations[start:end]))
    return out


def test_training_writes_safetensors_and_json_bound_to_the_tokenizer(world):
    info = json.loads((world["voc"] / "vocoder.json").read_text())
    tok = load_tokenizer(world["tok"])
    assert info["kind"] == "mean-mel" and info["tokenizer_fingerprint"] == tok.fingerprint and info["k"] == 16
    assert info["frame_rate"] == 100 and info["mel_frames_per_unit"] == 1
    assert info["trained_on"]["utterances"] == 6 and info["trained_on"]["frames"] > 500
    assert not list(world["voc"].glob("*.pt")) and not list(world["voc"].glob("*.pkl"))
    vocoder = load_mean_mel(world["voc"])
    assert vocoder.mel.shape == (16, 1, 80) and np.isfinite(vocoder.mel).all()
    # Runs of a unit last at least one frame; their mean is what dedup took away.
    assert (vocoder.duration_mean >= 1).all() and (vocoder.duration_std >= 0).all()
    # A rerun with the same inputs is skipped; another config into the same dir is refused.
    stamp = (world["voc"] / ".completed").stat().st_mtime_ns
    train_vocoder(world["corpus"], world["tok"], world["voc"], VocoderConfig(workers=1))
    assert (world["voc"] / ".completed").stat().st_mtime_ns == stamp
    with pytest.raises(StageError, match="different config"):
        train_vocoder(world["corpus"], world["tok"], world["voc"], VocoderConfig(smoothing_frames=5, workers=1))


def test_resynthesis_keeps_length_and_beats_random_units(world):
    """Vocoding the true units re-tokenizes closer to them, and sounds closer to the original,
    than vocoding random units of the same length and durations."""
    vocoder = load_vocoder(world["voc"])
    tok = load_tokenizer(world["tok"])
    extract, assign = checked_extractor(tok.spec), Assigner(tok.centroids)
    rng = np.random.default_rng(0)
    for samples, units, durations in _test_utterances(world):
        wave = vocoder.synthesize(units, durations)
        assert wave.dtype == np.float32 and len(wave) == durations.sum() * 160 and np.abs(wave).max() <= 1.0
        random_units = rng.integers(0, tok.k, len(units))
        noise = vocoder.synthesize(random_units, durations)
        uer = unit_error_rate(units, dedup(assign(extract(wave)))[0])
        uer_random = unit_error_rate(units, dedup(assign(extract(noise)))[0])
        assert uer < 0.6 and uer < uer_random
        assert mel_cepstral_distortion(samples, wave) < mel_cepstral_distortion(samples, noise)
        # Deduplicated units without durations take each unit's mean run length.
        predicted = vocoder.predict_durations(units)
        assert (predicted >= 1).all() and len(vocoder.synthesize(units)) == predicted.sum() * 160


def test_a_vocoder_of_another_tokenizer_is_refused_naming_both(world, tmp_path):
    other = tmp_path / "other"
    train_tokenizer(world["corpus"], other, replace(SMALL, seed=1))
    theirs, ours = load_tokenizer(other).fingerprint, load_tokenizer(world["tok"]).fingerprint
    with pytest.raises(StageError, match=f"{ours}.*{theirs}"):
        check_vocoder(load_vocoder(world["voc"]), world["voc"], other)
    check_vocoder(load_vocoder(world["voc"]), world["voc"], world["tok"])


def test_bad_vocoder_dirs_are_clear_errors(world, tmp_path):
    with pytest.raises(StageError, match="no such vocoder"):
        load_vocoder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="not a vocoder"):
        load_vocoder(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(world["voc"], broken)
    (broken / "vocoder.safetensors").write_bytes(b"garbage")
    with pytest.raises(StageError, match="unreadable vocoder"):
        load_vocoder(broken)
    vocoder = load_vocoder(world["voc"])
    with pytest.raises(StageError, match=r"\[0, 16\)"):
        vocoder.synthesize(np.array([3, 16]))
    with pytest.raises(StageError, match="durations"):
        vocoder.synthesize(np.array([3, 4]), np.array([1, 0]))


def test_vocoder_cli_trains_and_reports(world, tmp_path, capsys):
    out = tmp_path / "voc"
    assert main(["vocoder", "train", str(world["corpus"]), "--tokenizer", str(world["tok"]), "--out", str(out),
                 "--workers", "1", "smoothing_frames=1"]) == 0
    assert "mean-mel vocoder of 16 units" in capsys.readouterr().out
    assert json.loads((out / "vocoder.json").read_text())["smoothing_frames"] == 1
    assert main(["vocoder", "train", str(world["corpus"]), "--tokenizer", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "v2")]) == 2
    assert "nope" in capsys.readouterr().err


# --- the unit HiFi-GAN -----------------------------------------------------------------------

def hifigan_config(k: int = 16, **extra) -> dict:
    """A tiny generator in the speech-resynthesis config format: 10 x 16 = 160 samples per unit
    frame (100 Hz units at 16 kHz), with a duration predictor."""
    return {"resblock": "1", "upsample_rates": [10, 16], "upsample_kernel_sizes": [20, 32],
            "upsample_initial_channel": 16, "resblock_kernel_sizes": [3, 5],
            "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]], "num_embeddings": k, "embedding_dim": 8,
            "model_in_dim": 8, "dur_predictor_params": {"encoder_embed_dim": 8, "var_pred_hidden_dim": 8,
                                                        "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
            "sampling_rate": 16000, "code_hop_size": 160, **extra}


def weight_normed_checkpoint(directory: Path, config: dict, parametrizations: bool = False) -> CodeHiFiGAN:
    """Random weights saved as upstream training saves them: torch weight norm on every generator
    convolution, then torch.save({"generator": state_dict}) to g_00000000 beside config.json.
    Returns the weight-normed model (the reference output)."""
    torch.manual_seed(0)
    model = CodeHiFiGAN(config)
    norm = torch.nn.utils.parametrizations.weight_norm if parametrizations else torch.nn.utils.weight_norm
    convs = [model.conv_pre, *model.ups, model.conv_post] + [
        conv for block in model.resblocks for conv in (*block.convs1, *block.convs2)]
    for conv in convs:
        norm(conv)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    torch.save({"generator": model.state_dict()}, directory / "g_00000000")
    return model.eval()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.nn.utils.weight_norm, as upstream used it
@pytest.mark.parametrize("parametrizations", [False, True])
def test_hifigan_checkpoint_in_the_upstream_layout_loads_and_matches(tmp_path, parametrizations):
    reference = weight_normed_checkpoint(tmp_path / "hifi", hifigan_config(), parametrizations)
    keys = torch.load(tmp_path / "hifi" / "g_00000000", weights_only=True)["generator"].keys()
    direction = ("conv_pre.parametrizations.weight.original1" if parametrizations else "conv_pre.weight_v")
    assert direction in keys and "dur_predictor.conv1.0.weight" in keys and "dict.weight" in keys
    vocoder = load_vocoder(tmp_path / "hifi")
    assert vocoder.k == 16 and vocoder.frame_rate == 100 and vocoder.samples_per_frame == 160
    units, durations = np.array([1, 5, 5, 9, 0]), np.array([2, 1, 3, 1, 2])
    wave = vocoder.synthesize(units, durations)
    assert wave.shape == (9 * 160,) and np.abs(wave).max() <= 1.0
    with torch.no_grad():
        expected = reference(torch.from_numpy(units)[None], torch.from_numpy(durations)).reshape(-1).numpy()
    np.testing.assert_allclose(wave, expected, atol=1e-5)
    predicted = vocoder.predict_durations(units)
    assert (predicted >= 1).all() and len(vocoder.synthesize(units)) == predicted.sum() * 160


def test_hifigan_save_roundtrip_multispeaker_and_resblock2(tmp_path):
    config = hifigan_config(resblock="2", resblock_dilation_sizes=[[1, 3], [1, 3]], multispkr=True,
                            num_speakers=3, model_in_dim=16)
    del config["dur_predictor_params"]
    model = CodeHiFiGAN(config).eval()
    path = save_code_hifigan(model, config, tmp_path / "h", step=1234)
    assert path.name == "g_00001234"
    state = torch.load(path, weights_only=True)["generator"]
    assert "ups.1.weight_g" in state and state["ups.1.weight_g"].shape == (8, 1, 1)
    assert torch.allclose(fold_weight_norm(state)["ups.1.weight"], model.ups[1].weight)
    loaded = load_code_hifigan(path)  # the file itself, config.json beside it
    units = np.array([3, 3, 7])
    with torch.no_grad():
        expected = model(torch.from_numpy(units)[None], torch.ones(3, dtype=torch.long)).reshape(-1).numpy()
    np.testing.assert_allclose(loaded.synthesize(units, np.ones(3)), expected, atol=1e-6)
    with pytest.raises(StageError, match="no duration predictor"):
        loaded.synthesize(units)


def test_bad_hifigan_checkpoints_are_clear_errors(tmp_path, world):
    with pytest.raises(StageError, match="'f0'"):
        CodeHiFiGAN(hifigan_config(f0=True))
    with pytest.raises(StageError, match="upsample_rates"):
        CodeHiFiGAN({k: v for k, v in hifigan_config().items() if k != "upsample_rates"})
    model = CodeHiFiGAN(hifigan_config())
    save_code_hifigan(model, hifigan_config(k=12), tmp_path / "mismatch")
    with pytest.raises(StageError, match="does not match"):
        load_vocoder(tmp_path / "mismatch")
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    (unsafe / "config.json").write_text(json.dumps(hifigan_config()))
    # Any object that is not plain data makes weights_only refuse the file (no code runs).
    torch.save({"generator": {}, "payload": Fraction(1, 3)}, unsafe / "g_00000001")
    with pytest.raises(StageError, match="not a loadable torch checkpoint"):
        load_vocoder(unsafe)
    # Bound to another tokenizer, or with another number of units: refused, naming both.
    save_code_hifigan(model, hifigan_config(tokenizer_fingerprint="0123456789abcdef"), tmp_path / "bound")
    ours = load_tokenizer(world["tok"]).fingerprint
    with pytest.raises(StageError, match=f"0123456789abcdef.*{ours}"):
        check_vocoder(load_vocoder(tmp_path / "bound"), tmp_path / "bound", world["tok"])
    small = CodeHiFiGAN(hifigan_config(k=8))
    save_code_hifigan(small, hifigan_config(k=8), tmp_path / "k8")
    with pytest.raises(StageError, match="8 units.*k=16"):
        check_vocoder(load_vocoder(tmp_path / "k8"), tmp_path / "k8", world["tok"])


# --- quality measures ------------------------------------------------------------------------

def _reference_edit_distance(a: list[int], b: list[int]) -> int:
    table = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1][-1]


def test_edit_distance_matches_the_textbook_recurrence():
    rng = np.random.default_rng(3)
    for _ in range(40):
        a, b = rng.integers(0, 4, rng.integers(0, 12)), rng.integers(0, 4, rng.integers(0, 12))
        assert edit_distance(a, b) == _reference_edit_distance(a.tolist(), b.tolist())
    assert edit_distance([1, 2, 3], [1, 3]) == 1 and unit_error_rate(np.array([1, 2, 3, 4]), np.array([1, 2])) == 0.5
    with pytest.raises(ValueError):
        unit_error_rate(np.array([]), np.array([1]))


def test_mcd_is_zero_for_identical_audio_and_grows_with_distortion(world):
    samples = _test_utterances(world)[0][0]
    assert mel_cepstral_distortion(samples, samples) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    slight = samples + 0.003 * rng.standard_normal(len(samples)).astype(np.float32)
    heavy = samples + 0.05 * rng.standard_normal(len(samples)).astype(np.float32)
    assert 0 < mel_cepstral_distortion(samples, slight) < mel_cepstral_distortion(samples, heavy)
