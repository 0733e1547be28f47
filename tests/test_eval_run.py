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
from slmscale.evaluate.eval_config import EvalConfig
from slmscale.evaluate.evaluate import evaluate_run
from slmscale.evaluate.fixtures import FakeTrial as T
from slmscale.evaluate.fixtures import make_pairs_manifest, make_slm21, make_storycloze
from slmscale.evaluate.submission import score_submission
from slmscale.files import StageError
from slmscale.lm.train_config import TrainConfig
from slmscale.lm.trainer import train
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import TokenizerConfig, train_tokenizer

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
    record = json.loads((run / "run.json").read_text())
    assert record["downstream"] == metrics and record["status"] == "completed"
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
    from slmscale.units.unigram import UnigramConfig, encode_units, train_unigram
    model = train_unigram(world["units"], tmp_path / "spm", UnigramConfig(vocab_size=40))
    encode_units(world["units"], model, tmp_path / "pieces")
    train(tmp_path / "pieces", tmp_path / "run", replace(TRAIN, tokens=1024))
    out = evaluate_run(tmp_path / "run", [world["bench"] / "cloze" / "sSC"], _cfg(world, ngram_order=3))
    task = out["benchmarks"]["sSC"]["tasks"]["sSC"]
    raw = evaluate_run(world["run"], [world["bench"] / "cloze" / "sSC"], _cfg(world, ngram_order=0))
    assert task["tokens"] < raw["benchmarks"]["sSC"]["tasks"]["sSC"]["tokens"]  # pieces span several units
    assert task["baseline"]["name"] == "kn3"


def test_text_arm_run_scores_text_pairs(tmp_path):
    from slmscale.units.text_units import TextUnitsConfig, tokenize_text
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
