"""Benchmark layouts, pairing, aggregation and score files, on fixtures whose accuracies are
known by construction (each trial's outcome is chosen; the expected numbers are worked out
by hand in the comments)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slmscale.cli import main
from slmscale.evaluate.aggregate import bootstrap_interval, summarize
from slmscale.evaluate.fixtures import FakeTrial, make_pairs_manifest, make_slm21, make_storycloze
from slmscale.evaluate.layouts import read_benchmark
from slmscale.evaluate.submission import score_submission
from slmscale.files import StageError

T = FakeTrial
# Lexical: (id, frequency, length, outcome in voice v1, outcome in v2) -> pair value.
LEXICAL = [("0", 0, 4, "win", "win"),     # 1
           ("1", 0, 5, "win", "loss"),    # 0.5
           ("2", 3, 4, "tie", "tie"),     # 0.5
           ("3", 3, 5, "loss", "loss"),   # 0
           ("4", 10, 4, "win", "tie"),    # 0.75
           ("5", 50, 5, "win", "win"),    # 1
           ("6", 500, 4, "loss", "win")]  # 0.5
# Syntactic ids repeat across subtypes: pairs join on (voice, type, subtype, id).
SYNTACTIC = [("A", "a1", "0", "win", "win"),    # 1
             ("A", "a1", "1", "win", "loss"),   # 0.5
             ("A", "a2", "0", "loss", "loss"),  # 0
             ("A", "a2", "1", "tie", "win"),    # 0.75
             ("B", "b1", "0", "win", "win"),    # 1
             ("B", "b1", "1", "loss", "tie")]   # 0.25


def _slm21(root):
    lexical = [T(i, o, voice=v, frequency=f, length=n) for i, f, n, *outs in LEXICAL
               for v, o in zip(("v1", "v2"), outs)]
    syntactic = [T(i, o, voice=v, type=t, subtype=s) for t, s, i, *outs in SYNTACTIC
                 for v, o in zip(("v1", "v2"), outs)]
    return make_slm21(root, lexical, syntactic, seconds=0.05)


def test_slm21_submission_scores_every_aggregate(tmp_path):
    bench = _slm21(tmp_path / "sLM21")
    report = score_submission(bench.write_scores(tmp_path / "sub"), bench.path)
    lexical, syntactic = report["lexical"], report["syntactic"]
    assert lexical["n_pairs"] == 7
    assert lexical["accuracy"] == pytest.approx(4.25 / 7, abs=1e-6)
    assert lexical["oov"] == pytest.approx(0.75) and lexical["invocab"] == pytest.approx(0.55)
    assert lexical["by_frequency"] == pytest.approx({"oov": 0.75, "1-5": 0.25, "6-20": 0.75, "21-100": 1.0,
                                                     ">100": 0.5})
    assert lexical["by_length"] == pytest.approx({"4": 0.6875, "5": 0.5})
    assert syntactic["n_pairs"] == 6
    assert syntactic["accuracy"] == pytest.approx(3.5 / 6, abs=1e-6)
    assert syntactic["by_type"] == pytest.approx({"A": 0.5625, "B": 0.625})
    assert syntactic["macro"] == pytest.approx(0.59375)
    assert syntactic["macro_ci"][0] <= 0.59375 <= syntactic["macro_ci"][1]
    task = next(t for t in read_benchmark(bench.path, "audio")[0].tasks if t.kind == "syntactic")
    full = summarize(task, bench.scores["syntactic/dev"])
    assert full["by_subtype"]["A/a1"]["accuracy"] == 0.75 and full["by_subtype"]["A/a2"]["accuracy"] == 0.375
    assert full["voices"] == ["v1", "v2"] and full["n_trials"] == 12


def test_storycloze_and_pairs_manifest(tmp_path):
    cloze = make_storycloze(tmp_path / "sSC", [T("s1", "win"), T("s2", "win"), T("s3", "tie"), T("s4", "loss")],
                            seconds=0.05)
    assert score_submission(cloze.write_scores(tmp_path / "ssc.txt"), cloze.path)["storycloze"]["accuracy"] == 0.625
    pairs = make_pairs_manifest(tmp_path / "m" / "pairs.jsonl",
                                [T("p1", "win", type="X"), T("p2", "loss", type="X"), T("p3", "win", type="Y"),
                                 T("p4", "win", type="Y"), T("p5", "tie", type="Y")], seconds=0.05)
    report = score_submission(pairs.write_scores(tmp_path / "pairs.txt"), pairs.path)["pairs"]
    assert report["accuracy"] == pytest.approx(0.7)
    assert report["by_type"] == pytest.approx({"X": 0.5, "Y": 2.5 / 3})


def test_scores_cli_writes_the_report(tmp_path, capsys):
    bench = _slm21(tmp_path / "sLM21")
    sub = bench.write_scores(tmp_path / "sub")
    out = tmp_path / "report.json"
    assert main(["eval", "--scores", str(sub), "--benchmark", str(bench.path), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["syntactic"]["macro"] == pytest.approx(0.59375)
    assert json.loads(capsys.readouterr().out)["lexical"]["n_pairs"] == 7


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[1:], "no score for 1 file"),
    (lambda lines: lines + ["zzzNotAFile -1.0"], "is not a file of the benchmark"),
    (lambda lines: lines + [lines[0]], r"dev.txt:29: .* scored twice \(first on line 1\)"),
    (lambda lines: [lines[0].split()[0] + " abc"] + lines[1:], "'abc' of"),
    (lambda lines: [lines[0] + " 3"] + lines[1:], "expected '<file stem> <score>'"),
])
def test_bad_submissions_are_rejected_naming_the_line(tmp_path, edit, message):
    bench = _slm21(tmp_path / "sLM21")
    sub = bench.write_scores(tmp_path / "sub")
    path = sub / "lexical" / "dev.txt"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(StageError, match=message) as err:
        score_submission(sub, bench.path)
    assert "lexical/dev.txt" in str(err.value)


def test_submission_without_any_file_for_the_set(tmp_path):
    bench = _slm21(tmp_path / "sLM21")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="no score file for set 'dev'"):
        score_submission(tmp_path / "empty", bench.path)


def test_a_submission_missing_a_task_is_an_error_unless_allow_partial(tmp_path, capsys):
    bench = _slm21(tmp_path / "sLM21")
    sub = bench.write_scores(tmp_path / "sub")
    (sub / "syntactic" / "dev.txt").unlink()
    with pytest.raises(StageError, match=r"syntactic/dev.txt: score file missing \(1 of 2 tasks .*--allow-partial"):
        score_submission(sub, bench.path)
    args = ["eval", "--scores", str(sub), "--benchmark", str(bench.path)]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "syntactic/dev.txt: score file missing" in error and len(error.strip().splitlines()) == 1
    # Allowed, the tasks present are scored and each missing one is one warning line and listed.
    assert main(args + ["--allow-partial"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "lexical" in report and "syntactic" not in report
    assert report["missing"] == [str(sub / "syntactic" / "dev.txt")]
    warnings = [line for line in captured.err.splitlines() if "PARTIAL SUBMISSION" in line]
    assert len(warnings) == 1 and "syntactic/dev NOT scored" in warnings[0]


def test_a_submission_path_that_does_not_exist_says_so(tmp_path):
    bench = _slm21(tmp_path / "sLM21")
    with pytest.raises(StageError, match=r"NOPE/zr2021: no such submission file or folder"):
        score_submission(tmp_path / "NOPE" / "zr2021", bench.path)


def test_bad_layouts_are_errors_naming_file_and_key(tmp_path):
    bench = _slm21(tmp_path / "a")
    gold = bench.path / "syntactic" / "dev" / "gold.csv"
    lines = gold.read_text().splitlines()
    # Drop one negative: its trial has no partner.
    negative = next(i for i, line in enumerate(lines) if line.split(",")[5] == "0")
    gold.write_text("\n".join(lines[:negative] + lines[negative + 1:]) + "\n")
    with pytest.raises(StageError, match="has no negative"):
        read_benchmark(bench.path, "audio")
    gold.write_text("filename,voice,correct\n")
    with pytest.raises(StageError, match="missing column.*type"):
        read_benchmark(bench.path, "audio")
    bench = _slm21(tmp_path / "b")
    wav = next((bench.path / "lexical" / "dev").glob("*.wav"))
    wav.unlink()
    with pytest.raises(StageError, match=f"no audio file {wav.stem}.wav"):
        read_benchmark(bench.path, "audio")
    cloze = make_storycloze(tmp_path / "c", [T("s1", "win")], seconds=0.05)
    (cloze.path / "0_s1_correct.wav").rename(cloze.path / "4_s1_incorrect.wav")
    with pytest.raises(StageError, match="second incorrect file"):
        read_benchmark(cloze.path, "audio")
    manifest = make_pairs_manifest(tmp_path / "d" / "p.jsonl", [T("p1", "win")], seconds=0.05)
    (manifest.path.parent / "audio" / "p1-negative.wav").unlink()
    with pytest.raises(StageError, match=r"p.jsonl:1: negative file"):
        read_benchmark(manifest.path, "audio")


def test_a_collection_folder_reads_each_benchmark_inside(tmp_path):
    _slm21(tmp_path / "benchmarks" / "zr2021")
    make_storycloze(tmp_path / "benchmarks" / "storycloze" / "sSC", [T("s1", "win")], seconds=0.05)
    make_storycloze(tmp_path / "benchmarks" / "storycloze" / "tSC", [T("s1", "loss")], seconds=0.05)
    benches = read_benchmark(tmp_path / "benchmarks", "audio")
    assert [b.name for b in benches] == ["sSC", "tSC", "zr2021"]
    assert [t.name for t in benches[2].tasks] == ["lexical/dev", "syntactic/dev"]
    assert benches[2].files == 2 * (len(LEXICAL) + len(SYNTACTIC)) * 2
    again = read_benchmark(tmp_path / "benchmarks" / "zr2021", "audio")[0]
    assert again.content_hash == benches[2].content_hash
    with pytest.raises(StageError, match="text-arm run scores text pairs"):
        read_benchmark(tmp_path / "benchmarks" / "storycloze", "text")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="empty: not a benchmark"):
        read_benchmark(tmp_path / "empty", "audio")


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_pairs():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 2, 40).astype(float)
    large = rng.integers(0, 2, 4000).astype(float)
    low, high = bootstrap_interval(small, np.random.default_rng(1))
    assert low < small.mean() < high
    low2, high2 = bootstrap_interval(large, np.random.default_rng(1))
    assert high2 - low2 < (high - low) / 5
    assert bootstrap_interval(np.ones(10), np.random.default_rng(1)) == [1.0, 1.0]


def test_length_bias_splits_trials_by_the_longer_side(tmp_path):
    bench = make_pairs_manifest(tmp_path / "p.jsonl", [T("p1", "win"), T("p2", "loss"), T("p3", "tie"),
                                                      T("p4", "win")], seconds=0.05)
    task = read_benchmark(bench.path, "audio")[0].tasks[0]
    lengths = dict(zip([f"audio/{i}-{s}.wav" for i in ("p1", "p2", "p3", "p4") for s in ("positive", "negative")],
                       [5, 3, 2, 4, 3, 3, 6, 2]))
    bias = summarize(task, bench.scores["p"], lengths)["length_bias"]
    assert (bias["positive_longer"]["accuracy"], bias["positive_longer"]["n"]) == (1.0, 2)
    assert (bias["negative_longer"]["accuracy"], bias["negative_longer"]["n"]) == (0.0, 1)
    assert bias["same_length"]["accuracy"] == 0.5
