"""`slmscale generate`: a spoken prompt continued by a trained run and vocoded, unconditional
generation, unigram runs, the neural vocoder, and the errors a user can meet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from slmscale.audio.fixtures import make_speech_corpus, speech_like
from slmscale.audio.io import load_audio, write_wav
from slmscale.cli import main
from slmscale.files import StageError
from slmscale.lm.config import SamplingConfig, TrainConfig
from slmscale.lm.trainer import train
from slmscale.units.config import TokenizerConfig, UnigramConfig
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import load_tokenizer, train_tokenizer
from slmscale.units.unigram import UnigramModel, decode_to_units, encode_units, train_unigram
from slmscale.vocoder.config import VocoderConfig
from slmscale.vocoder.hifigan import CodeHiFiGAN, save_code_hifigan
from slmscale.vocoder.mean_mel import train_vocoder
from slmscale.vocoder.speech_continuation import generate_speech

TRAIN = TrainConfig(size="tiny-L1", tokens=2048, context=32, tokens_per_update=256, lr=1e-2)
SMALL_TOKENIZER = TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-token decoding of a tiny model is faster on one thread (2x measured on the shared 2-core machine)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A corpus of 1 s speech-like utterances, a k=16 tokenizer, deduplicated units, a tiny run
    on them, a unigram run on their pieces, a mean-mel vocoder and a prompt."""
    root = tmp_path_factory.mktemp("gen")
    corpus = make_speech_corpus(root / "corpus", utterances=24, held_out=2)
    train_tokenizer(corpus, root / "tok", SMALL_TOKENIZER)
    tokenize_corpus(corpus, root / "tok", root / "units", workers=1)
    train(root / "units", root / "run", TRAIN)
    train_unigram(root / "units", root / "spm", UnigramConfig(vocab_size=40))
    encode_units(root / "units", root / "spm", root / "pieces")
    train(root / "pieces", root / "unigram_run", TRAIN)
    train_vocoder(corpus, root / "tok", root / "voc", VocoderConfig(workers=1))
    prompt = root / "prompt.wav"
    write_wav(prompt, speech_like(np.random.default_rng(7), 0.6, 16000)[:, 0])
    return {"root": root, "corpus": corpus, "tok": root / "tok", "run": root / "run", "voc": root / "voc",
            "unigram_run": root / "unigram_run", "units": root / "units", "prompt": prompt}


def _read(path: Path) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(str(path), dtype="float32")
    return samples, rate


def test_output_is_the_prompt_then_a_continuation_of_exactly_the_requested_length(world, tmp_path):
    out = tmp_path / "out.wav"
    summary = generate_speech(world["run"], out, 2.5, world["prompt"], world["voc"], SamplingConfig(seed=1),
                              units_out=tmp_path / "units.json")
    samples, rate = _read(out)
    prompt = load_audio(world["prompt"]).samples
    assert rate == 16000 and samples.ndim == 1 and len(samples) == 40_000
    np.testing.assert_allclose(samples[:len(prompt)], prompt, atol=2 / 32768)
    continuation = samples[len(prompt):]
    assert np.sqrt(np.mean(continuation ** 2)) > 1e-3  # sound, not silence
    saved = json.loads((tmp_path / "units.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["prompt_seconds"] == pytest.approx(0.6) and saved["dedup"] is True
    assert len(saved["units"]) == len(saved["durations"]) and all(0 <= u < 16 for u in saved["units"])
    # The continuation's units cover the remaining 1.9 s, with no unit to spare.
    frames = np.cumsum(saved["durations"])
    assert frames[-1] >= 190 and (len(frames) == 1 or frames[-2] < 190)
    assert saved["prompt_units"] and len(saved["prompt_units"]) == len(saved["prompt_durations"])
    # The same seed gives the same audio; another seed other units.
    again = generate_speech(world["run"], tmp_path / "again.wav", 2.5, world["prompt"], world["voc"],
                            SamplingConfig(seed=1))
    assert again["units"] == saved["units"] and np.array_equal(_read(tmp_path / "again.wav")[0], samples)
    other = generate_speech(world["run"], tmp_path / "other.wav", 2.5, world["prompt"], world["voc"],
                            SamplingConfig(seed=2))
    assert other["units"] != saved["units"]


def test_a_44k_stereo_prompt_is_resampled_and_unconditional_generation_works(world, tmp_path):
    stereo = speech_like(np.random.default_rng(3), 0.5, 44100, channels=2)
    sf.write(str(tmp_path / "p.flac"), stereo, 44100)
    summary = generate_speech(world["run"], tmp_path / "a.wav", 1.0, tmp_path / "p.flac", world["voc"],
                              SamplingConfig(top_k=5, temperature=0.8))
    assert summary["prompt_conversions"] == ["resampled 44100 -> 16000 Hz", "down-mixed 2 channels to mono"]
    samples = _read(tmp_path / "a.wav")[0]
    assert len(samples) == 16000
    np.testing.assert_allclose(samples[:8000], load_audio(tmp_path / "p.flac").samples, atol=2 / 32768)
    free = generate_speech(world["run"], tmp_path / "free.wav", 0.73, None, world["voc"], SamplingConfig(top_p=0.9))
    assert free["prompt_seconds"] == 0 and len(_read(tmp_path / "free.wav")[0]) == 11_680


def test_unigram_run_decodes_pieces_to_units(world, tmp_path):
    summary = generate_speech(world["unigram_run"], tmp_path / "u.wav", 1.5, world["prompt"], world["voc"])
    assert len(_read(tmp_path / "u.wav")[0]) == 24_000
    assert all(0 <= u < 16 for u in summary["units"]) and all(0 <= t < 42 for t in summary["tokens"])
    assert int(np.sum(summary["durations"])) >= 90  # the 0.9 s after the prompt, at 100 frames/s
    # The vocoded units are what the sampled pieces spell (EOS and PAD dropped).
    model = UnigramModel(world["root"] / "spm")
    pieces = [t for t in summary["tokens"] if 0 < t < model.vocab_size]
    spelled = decode_to_units(pieces, model)
    assert spelled[:len(summary["units"])].tolist() == summary["units"]


def test_default_vocoder_is_learned_from_the_tokenizers_corpus_and_cached(world, tmp_path):
    cache = tmp_path / "cache"
    first = generate_speech(world["run"], tmp_path / "d.wav", 1.0, world["prompt"], cache_dir=cache)
    fingerprint = load_tokenizer(world["tok"]).fingerprint
    assert Path(first["vocoder"]) == cache / "vocoders" / fingerprint
    assert (cache / "vocoders" / fingerprint / "vocoder.safetensors").is_file()
    assert len(_read(tmp_path / "d.wav")[0]) == 16000


@pytest.fixture
def relative_world(tmp_path, monkeypatch) -> dict[str, Path]:
    """A corpus, tokenizer, units dir and run made, as a user types them, with paths relative to
    WORK/; the test then runs in another directory."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(make_speech_corpus(work / "corpus", utterances=16, held_out=2).parent)
    train_tokenizer("corpus", "tok", SMALL_TOKENIZER)
    tokenize_corpus("corpus", "tok", "units", workers=1)
    train("units", "run", TRAIN)
    write_wav(work / "prompt.wav", speech_like(np.random.default_rng(7), 0.4, 16000)[:, 0])
    monkeypatch.chdir(elsewhere)
    return {"work": work, "corpus": work / "corpus", "tok": work / "tok", "run": work / "run",
            "prompt": work / "prompt.wav", "elsewhere": elsewhere}


def test_generate_runs_from_another_directory_after_relative_training_paths(relative_world, tmp_path):
    w = relative_world
    recorded = json.loads((w["tok"] / "tokenizer.json").read_text())["trained_on"]["corpus"]
    assert recorded == str(w["corpus"])  # absolute: it names the same dir from anywhere
    assert yaml.safe_load((w["work"] / "units" / "config.yaml").read_text())["tokenizer"] == str(w["tok"])
    summary = generate_speech(w["run"], "out.wav", 1.0, w["prompt"], cache_dir=tmp_path / "cache")
    assert len(_read(w["elsewhere"] / "out.wav")[0]) == 16000
    assert json.loads((Path(summary["vocoder"]) / "vocoder.json").read_text())["trained_on"]["corpus"] == \
        str(w["corpus"])
    # A tokenizer written before the path was stored absolute holds it as typed: found from its dir's parent.
    desc = json.loads((w["tok"] / "tokenizer.json").read_text())
    desc["trained_on"]["corpus"] = "corpus"
    (w["tok"] / "tokenizer.json").write_text(json.dumps(desc))
    old = generate_speech(w["run"], "old.wav", 1.0, w["prompt"], cache_dir=tmp_path / "cache2")
    assert json.loads((Path(old["vocoder"]) / "vocoder.json").read_text())["trained_on"]["corpus"] == \
        str(w["corpus"])
    assert np.array_equal(_read(w["elsewhere"] / "old.wav")[0], _read(w["elsewhere"] / "out.wav")[0])


def test_a_cached_default_vocoder_serves_once_the_corpus_is_gone(relative_world, tmp_path, monkeypatch):
    w, cache = relative_world, tmp_path / "cache"
    monkeypatch.chdir(w["work"])  # where the corpus was named from, so the vocoder is learnable by any version
    first = generate_speech(w["run"], tmp_path / "a.wav", 1.0, w["prompt"], cache_dir=cache)
    shutil.rmtree(w["corpus"])
    again = generate_speech(w["run"], tmp_path / "b.wav", 1.0, w["prompt"], cache_dir=cache)
    assert again["vocoder"] == first["vocoder"]
    assert np.array_equal(_read(tmp_path / "a.wav")[0], _read(tmp_path / "b.wav")[0])
    # Without a cached one, the corpus is needed and its absence is the error ...
    with pytest.raises(StageError, match="training corpus.*--vocoder VOC"):
        generate_speech(w["run"], tmp_path / "c.wav", 1.0, w["prompt"], cache_dir=tmp_path / "empty")
    # ... but a bad prompt is named first, not hidden behind it.
    with pytest.raises(StageError, match="--prompt .*nowhere.wav: no such audio file"):
        generate_speech(w["run"], tmp_path / "c.wav", 1.0, tmp_path / "nowhere.wav", cache_dir=tmp_path / "empty")
    assert not (tmp_path / "c.wav").exists()


def test_arguments_are_checked_before_the_model_loads_or_a_vocoder_is_learned(world, tmp_path, capsys,
                                                                             monkeypatch):
    cache = tmp_path / "cache"
    with pytest.raises(StageError, match=r"--prompt .*prompt.wav lasts 0.60 s.*--seconds 0.5"):
        generate_speech(world["run"], tmp_path / "x.wav", 0.5, world["prompt"], cache_dir=cache)
    assert not (cache / "vocoders").exists()  # refused before learning one

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")
    monkeypatch.setattr("slmscale.lm.hf.load_pretrained", no_model)
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_dir").mkdir()

    def fails(extra: list[str], *fragments: str) -> None:
        args = ["generate", str(world["run"]), "--seconds", "1", "--vocoder", str(world["voc"])]
        assert main(args + (["--out", str(tmp_path / "y.wav")] if "--out" not in extra else []) + extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err  # one line, no traceback
        for fragment in fragments:
            assert fragment in err, (fragment, err)

    fails(["--out", str(tmp_path / "a_dir")], f"--out {tmp_path / 'a_dir'}: is a directory")
    fails(["--out", str(tmp_path / "a_file" / "o.wav")], "--out", f"{tmp_path / 'a_file'} is not a directory")
    fails(["--units-out", str(tmp_path / "a_dir")], f"--units-out {tmp_path / 'a_dir'}: is a directory")
    fails(["--units-out", str(tmp_path / "y.wav")], "--units-out", "is the --out file")
    fails(["--prompt", str(tmp_path / "a_dir")], f"--prompt {tmp_path / 'a_dir'}: is a directory")
    fails(["--prompt", str(tmp_path / "a_file")], "--prompt", "a_file: empty file")
    assert not (tmp_path / "y.wav").exists()


def test_neural_vocoder_checkpoint_generates_the_requested_length(world, tmp_path):
    fingerprint = load_tokenizer(world["tok"]).fingerprint
    config = {"resblock": "1", "upsample_rates": [10, 16], "upsample_kernel_sizes": [20, 32],
              "upsample_initial_channel": 16, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
              "num_embeddings": 16, "embedding_dim": 8, "model_in_dim": 8, "sampling_rate": 16000,
              "dur_predictor_params": {"encoder_embed_dim": 8, "var_pred_hidden_dim": 8, "var_pred_kernel_size": 3,
                                       "var_pred_dropout": 0.5}, "tokenizer_fingerprint": fingerprint}
    save_code_hifigan(CodeHiFiGAN(config), config, tmp_path / "hifi")
    summary = generate_speech(world["run"], tmp_path / "n.wav", 1.2, world["prompt"], tmp_path / "hifi")
    assert len(_read(tmp_path / "n.wav")[0]) == 19_200 and summary["frame_rate"] == 100


def test_cli_generates_and_reports_errors_naming_the_thing(world, tmp_path, capsys):
    out = tmp_path / "cli.wav"
    assert main(["generate", str(world["run"]), "--prompt", str(world["prompt"]), "--seconds", "1.2",
                 "--out", str(out), "--vocoder", str(world["voc"]), "--temperature", "0.7", "--top-k", "8",
                 "--seed", "3", "--units-out", str(tmp_path / "u.json")]) == 0
    assert "1.20 s at 16000 Hz" in capsys.readouterr().out and len(_read(out)[0]) == 19_200
    assert json.loads((tmp_path / "u.json").read_text())["sampling"]["top_k"] == 8

    def fails(args: list[str], *fragments: str) -> None:
        assert main(["generate", *args, "--out", str(tmp_path / "x.wav"), "--vocoder", str(world["voc"])]) == 2
        err = capsys.readouterr().err
        for fragment in fragments:
            assert fragment in err, (fragment, err)
        assert not (tmp_path / "x.wav").exists()

    fails([str(tmp_path / "missing_run"), "--seconds", "1"], "missing_run", "no such run")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio\n")
    fails([str(world["run"]), "--prompt", str(not_audio), "--seconds", "1"], "notes.wav", "not readable as audio")
    fails([str(world["run"]), "--prompt", str(world["prompt"]), "--seconds", "0.5"], "0.60 s", "--seconds 0.5")
    fails([str(world["run"]), "--seconds", "1", "--top-p", "1.5"], "top_p")


def test_text_arm_runs_and_vocoders_of_other_tokenizers_are_refused(world, tmp_path):
    # A text-arm run: its units dir has a vocab.json of characters.
    units, run = tmp_path / "text_units", tmp_path / "text_run"
    shutil.copytree(world["units"], units)
    shutil.copytree(world["run"], run)
    (units / "vocab.json").write_text(json.dumps({"tokens": list("abc")}))
    record = json.loads((run / "run.json").read_text())
    record["units"]["path"] = str(units)
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(StageError, match="text-arm run"):
        generate_speech(run, tmp_path / "t.wav", 1.0, None, world["voc"])
    # A vocoder learned for another tokenizer (same corpus, another seed).
    other_tok = tmp_path / "tok2"
    train_tokenizer(world["corpus"], other_tok, TokenizerConfig(k=16, frames_sample=2000, kmeans_iterations=5,
                                                                seed=5, workers=1))
    train_vocoder(world["corpus"], other_tok, tmp_path / "voc2", VocoderConfig(workers=1, max_seconds=3))
    ours, theirs = load_tokenizer(world["tok"]).fingerprint, load_tokenizer(other_tok).fingerprint
    with pytest.raises(StageError, match=f"{theirs}.*{ours}"):
        generate_speech(world["run"], tmp_path / "v.wav", 1.0, world["prompt"], tmp_path / "voc2")
    assert not (tmp_path / "v.wav").exists()
