"""`slmscale eval` on a trained run: eval.json, cached benchmark units, score files, the
n-gram baseline, unigram and text-arm runs, and the errors a user can meet."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from slmscale.audio.fixtures import make_speech_corpus
from slmscale.cli import main
from slmscale.evaluate.config import EvalConfig
from slmscale.evaluate.evaluate import evaluate_run
from slmscale.evaluate.fixtures import FakeTrial as T
from slmscale.evaluate.fixtures import make_pairs_manifest, make_slm21, make_storycloze
from slmscale.evaluate.submission import score_submission
from slmscale.files import StageError
from slmscale.lm.config import TrainConfig
from slmscale.lm.trainer import train
from slmscale.units.config import TokenizerConfig
from slmscale.units.tokenize import tokenize_audio_folder, tokenize_corpus
from slmscale.units.tokenizer import train_tokenizer

TRAIN = TrainConfig(size="tiny-L1", tokens=2048, context=32, tokens_per_update=256, eval_every=0, lr=1e-2)
SMALL_TOKENIZER = TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    corpus = make_speech_corpus(root / "corpus")
    train_tokenizer(corpus, root / "tok", SMALL_TOKENIZER)
    tokenize_corpus(corpus, root / "tok", root / "units", workers=1)
    train(root / "units", root / "run", TRAIN)
    bench = root / "benchmarks"
    make_slm21(bench / "zr", [T(str(i), "win", voice=v, frequency=i, length=3 + i % 2) for i in range(4)
                              for v in ("a", "b")],
               [T(str(i), "win", voice=v, type=t, subtype="x") for i in range(3) for t in ("P", "Q")
                for v in ("a", "b")], seed=1)
    make_storycloze(bench / "cloze" / "sSC", [T(f"s{i}", "win") for i in range(4)], seed=2)
    make_storycloze(bench / "cloze" / "tSC", [T(f"s{i}", "win") for i in range(3)], seed=3)
    make_pairs_manifest(root / "extra" / "mine.jsonl", [T(f"p{i}", "win", type="K") for i in range(3)], seed=4)
    return {"root": root, "run": root / "run", "bench": bench, "manifest": root / "extra" / "mine.jsonl",
            "units": root / "units", "tok": root / "tok"}


def _cfg(world, **kw) -> EvalConfig:
    return EvalConfig(cache_dir=str(world["root"] / "cache"), threads=1, workers=1, bootstrap=200, **kw)


def test_eval_json_has_every_task_both_variants_and_the_baseline(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    trained = (run / "run.json").read_bytes()
    out = evaluate_run(run, [world["bench"], world["manifest"]], _cfg(world), write_scores=tmp_path / "scores")
    assert set(out["benchmarks"]) == {"zr", "sSC", "tSC", "mine"}
    zr = out["benchmarks"]["zr"]
    assert zr["layout"] == "sLM21" and zr["files"] == 2 * (8 + 12) and len(zr["content_hash"]) == 16
    lexical = zr["tasks"]["lexical/dev"]
    assert lexical["model"]["mean"]["n_pairs"] == 4 and lexical["model"]["sum"]["n_trials"] == 8
    assert lexical["baseline"]["name"] == "kn5" and "by_frequency" in lexical["baseline"]["mean"]
    assert set(lexical["model"]["mean"]["length_bias"]) == {"positive_longer", "negative_longer", "same_length"}
    syntactic = zr["tasks"]["syntactic/dev"]["model"]["mean"]
    assert set(syntactic["by_type"]) == {"P", "Q"} and syntactic["macro"]["types"] == 2
    metrics = out["metrics"]
    for name in ("swuggy", "swuggy_invocab", "sblimp", "sblimp_pairs", "ssc", "tsc", "mine", "swuggy_sum",
                 "kn5_sblimp", "kn5_ssc_sum"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["sblimp"] == syntactic["macro"]["accuracy"]
    # Each headline accuracy carries its item count, for the downstream law's binomial noise: the
    # macro mean over T types counts as T²/Σ(1/n_type) items.
    per_type = [entry["n"] for entry in syntactic["by_type"].values()]
    assert metrics["sblimp_n"] == pytest.approx(4 / sum(1 / n for n in per_type), abs=1e-3)
    assert metrics["sblimp_pairs_n"] == syntactic["n_pairs"] and metrics["swuggy_n"] == 4
    assert metrics["ssc_n"] == out["benchmarks"]["sSC"]["tasks"][next(iter(out["benchmarks"]["sSC"]["tasks"]))][
        "model"]["mean"]["n_pairs"]
    # run.json is the trainer's alone: the metrics are in eval.json, the record stays byte for byte.
    assert (run / "run.json").read_bytes() == trained
    assert json.loads((run / "eval.json").read_text())["git_revision"] == out["git_revision"]
    # The score files, scored with no model, give the same accuracies.
    report = score_submission(tmp_path / "scores" / "zr", world["bench"] / "zr")
    assert report["lexical"]["accuracy"] == lexical["model"]["mean"]["accuracy"]
    assert report["syntactic"]["macro"] == metrics["sblimp"]
    assert score_submission(tmp_path / "scores" / "sSC.txt", world["bench"] / "cloze" / "sSC")[
        "storycloze"]["accuracy"] == metrics["ssc"]


def test_a_second_evaluation_extracts_no_features_and_a_rerun_skips(world, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(world["run"], first)
    shutil.copytree(world["run"], second)
    evaluate_run(first, [world["bench"] / "cloze"], _cfg(world))
    import slmscale.units.tokenize as tokenize

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted again")
    monkeypatch.setattr(tokenize, "extract", no_extraction)
    again = evaluate_run(second, [world["bench"] / "cloze"], _cfg(world, seed=1))
    import slmscale.lm.hf as hf

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a finished evaluation")
    monkeypatch.setattr(hf, "load_pretrained", no_model)
    assert evaluate_run(second, [world["bench"] / "cloze"], _cfg(world, seed=1))["metrics"] == again["metrics"]


def test_eval_cli_prints_metrics_and_batching_does_not_change_them(world, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    args = ["eval", str(run), "--benchmark", str(world["bench"] / "zr"), f"cache_dir={world['root'] / 'cache'}",
            "threads=1", "bootstrap=100"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "sblimp" in printed and "n-gram baseline" in printed
    # Item counts are shown as counts beside their accuracy, not as a percentage of their own.
    assert re.search(r": sblimp \d+\.\d% of [\d,]+ items \(n-gram baseline", printed)
    assert "sblimp_n" not in printed
    first = json.loads((run / "eval.json").read_text())["metrics"]
    assert main(args + ["tokens_per_batch=40"]) == 0
    assert json.loads((run / "eval.json").read_text())["metrics"] == first


def test_unigram_run_scores_pieces(world, tmp_path):
    from slmscale.units.config import UnigramConfig
    from slmscale.units.unigram import encode_units, train_unigram
    model = train_unigram(world["units"], tmp_path / "spm", UnigramConfig(vocab_size=40))
    encode_units(world["units"], model, tmp_path / "pieces")
    train(tmp_path / "pieces", tmp_path / "run", replace(TRAIN, tokens=1024))
    out = evaluate_run(tmp_path / "run", [world["bench"] / "cloze" / "sSC"], _cfg(world, ngram_order=3))
    task = out["benchmarks"]["sSC"]["tasks"]["sSC"]
    raw = evaluate_run(world["run"], [world["bench"] / "cloze" / "sSC"], _cfg(world, ngram_order=0))
    assert task["tokens"] < raw["benchmarks"]["sSC"]["tasks"]["sSC"]["tokens"]  # pieces span several units
    assert task["baseline"]["name"] == "kn3"


def test_text_arm_run_scores_text_pairs(tmp_path):
    from slmscale.units.config import TextUnitsConfig
    from slmscale.units.text_units import tokenize_text
    rng = np.random.default_rng(0)
    words = ["the dog runs", "the dogs run", "a cat sleeps", "the cats sleep", "my bird sings"]
    rows = [{"id": f"t{i}", "text": " ".join(rng.choice(words, 3)), "kind": "story",
             "split": "train" if i < 80 else "valid" if i < 90 else "test"} for i in range(100)]
    (tmp_path / "text.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tokenize_text(tmp_path / "text.jsonl", tmp_path / "units", TextUnitsConfig())
    train(tmp_path / "units", tmp_path / "run", TRAIN)
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    items = [{"id": f"s{i}", "positive": "the dog runs", "negative": "the dog run", "type": "agreement",
              "subtype": "verb" if i % 2 else "noun"} for i in range(4)]
    (bench / "syntax.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    out = evaluate_run(tmp_path / "run", [bench], EvalConfig(cache_dir=str(tmp_path / "cache"), threads=1,
                                                             bootstrap=100))
    task = out["benchmarks"]["benchmarks"]["tasks"]["syntax"]
    assert task["kind"] == "syntactic" and task["model"]["mean"]["n_pairs"] == 4
    assert "sblimp" in out["metrics"] and "kn5_sblimp" in out["metrics"]


def test_errors_name_the_problem(world, tmp_path):
    with pytest.raises(StageError, match="no run.json"):
        evaluate_run(tmp_path, [world["bench"]], _cfg(world))
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "failed"}))
    with pytest.raises(StageError, match="status is 'failed'"):
        evaluate_run(run, [world["bench"]], _cfg(world))
    (run / "run.json").write_text(json.dumps(record))
    text_pairs = tmp_path / "syntax.jsonl"
    text_pairs.write_text(json.dumps({"id": "a", "positive": "the dog runs", "negative": "the dog run"}) + "\n")
    with pytest.raises(StageError, match=r"syntax.jsonl:1: positive file 'the dog runs' not found"):
        evaluate_run(run, [text_pairs], _cfg(world))
    with pytest.raises(StageError, match="no such benchmark"):
        evaluate_run(run, [tmp_path / "nowhere"], _cfg(world))


def test_a_corrupt_benchmark_file_names_it_and_what_eval_can_do(world, tmp_path, capsys):
    bench = tmp_path / "extra"
    shutil.copytree(world["manifest"].parent, bench)
    bad = bench / "audio" / "p1-negative.wav"
    bad.write_bytes(b"RIFF not really a wav")
    assert main(["eval", str(world["run"]), "--benchmark", str(bench / "mine.jsonl"),
                 f"cache_dir={tmp_path / 'cache'}", "threads=1", "workers=1"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and str(bad) in errors[0]
    error = errors[0]
    # eval has no --skip-bad: the hint is what a user of eval can do.
    assert "--skip-bad" not in error
    assert error.endswith(f"fix or replace the file, or remove its pair from {bench / 'mine.jsonl'}")


def _without_extraction(monkeypatch) -> None:
    import slmscale.units.tokenize as tokenize

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were extracted: the units dir was not used")
    monkeypatch.setattr(tokenize, "extract", no_extraction)


def test_a_units_dir_tokenized_from_a_benchmark_folder_scores_as_the_folder(world, tmp_path, monkeypatch):
    cloze, lexical = world["bench"] / "cloze" / "sSC", world["bench"] / "zr" / "lexical" / "dev"
    tokenize_audio_folder(cloze, world["tok"], tmp_path / "ub_ssc", workers=1)
    tokenize_audio_folder(lexical, world["tok"], tmp_path / "ub_lex", workers=1)
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    folders = evaluate_run(run, [cloze, world["bench"] / "zr"], _cfg(world))
    _without_extraction(monkeypatch)
    units = evaluate_run(run, [tmp_path / "ub_ssc", tmp_path / "ub_lex"], _cfg(world, ngram_order=0))
    assert set(units["benchmarks"]) == {"sSC", "zr", "ub_ssc", "ub_lex"}
    assert units["benchmarks"]["ub_lex"]["layout"] == "sLM21" and units["benchmarks"]["ub_lex"]["files"] == 16
    for ub, folder, task in (("ub_ssc", "sSC", "sSC"), ("ub_lex", "zr", "lexical/dev")):
        got, want = units["benchmarks"][ub]["tasks"][task], folders["benchmarks"][folder]["tasks"][task]
        assert got["inputs"] == want["inputs"] and got["tokens"] == want["tokens"]
        assert got["model"] == want["model"] and got["pairs"]["keys"] == want["pairs"]["keys"]


def test_a_units_dir_of_another_tokenizer_or_without_its_folder_is_refused(world, tmp_path, monkeypatch):
    ub = tmp_path / "ub"
    tokenize_audio_folder(world["bench"] / "cloze" / "tSC", world["tok"], ub, workers=1)
    meta = json.loads((ub / "meta.json").read_text())
    run_fp = meta["tokenizer_fingerprint"]
    (ub / "meta.json").write_text(json.dumps({**meta, "tokenizer_fingerprint": "0123456789abcdef"}))
    with pytest.raises(StageError, match=f"made by tokenizer 0123456789abcdef .* from tokenizer {run_fp} "):
        evaluate_run(world["run"], [ub], _cfg(world))
    # The units hold no pairs: without the folder they were made of there is nothing to score.
    folder = tmp_path / "tSC"
    shutil.copytree(world["bench"] / "cloze" / "tSC", folder)
    tokenize_audio_folder(folder, world["tok"], tmp_path / "ub2", workers=1)
    shutil.rmtree(folder)
    with pytest.raises(StageError, match=r"ub2: its source .*tSC' \(meta.json `source`\) does not exist; "
                                         r"units hold no pairs"):
        evaluate_run(world["run"], [tmp_path / "ub2"], _cfg(world))
    with pytest.raises(StageError, match="units of the corpus"):
        evaluate_run(world["run"], [world["units"]], _cfg(world))


def test_two_evaluations_filling_the_cache_at_once_extract_once(world, tmp_path, monkeypatch):
    """Sweep workers share one cache: the entry is made under a lock and renamed into place once
    complete, so a second process waits and reads it rather than extracting again or racing."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import slmscale.units.tokenize as tokenize
    from slmscale.evaluate.inputs import audio_units, completed_record, run_vocabulary
    from slmscale.evaluate.layouts import read_benchmark
    vocab = run_vocabulary(world["run"], completed_record(world["run"], "evaluated"))
    task = read_benchmark(world["bench"] / "cloze" / "sSC", "audio")[0].tasks[0]
    real, calls, lock = tokenize.extract, [], threading.Lock()

    def slow_extract(*args, **kwargs):
        with lock:
            calls.append(1)
        time.sleep(0.5)  # a window for the other evaluation to start extracting too
        yield from real(*args, **kwargs)
    monkeypatch.setattr(tokenize, "extract", slow_extract)
    # flock excludes two open files of one process as of two processes: threads stand in for workers.
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: audio_units(task, vocab, tmp_path / "cache", workers=1), range(2))
    assert len(calls) == 1
    assert first.keys() == second.keys() == task.inputs.keys()
    assert all(np.array_equal(first[key], second[key]) for key in first)
    entries = [p for p in (tmp_path / "cache" / "units").iterdir() if p.is_dir()]
    leftovers = [p.name for entry in entries for p in entry.iterdir() if p.name.startswith(".") and p.is_dir()]
    assert len(entries) == 1 and leftovers == []
