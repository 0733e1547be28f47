"""An imported checkpoint of the paper's code used as a run: eval and generate take it, and a sweep
draws it beside its own runs (`sweep --with`) in the results table and the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from slmscale.audio.fixtures import make_speech_corpus, speech_like
from slmscale.audio.io import write_wav
from slmscale.cli import main
from slmscale.evaluate.config import EvalConfig
from slmscale.evaluate.evaluate import evaluate_run
from slmscale.evaluate.fixtures import FakeTrial as T
from slmscale.evaluate.fixtures import make_slm21
from slmscale.lm.config import CheckpointImportConfig, SamplingConfig
from slmscale.lm.import_checkpoint import import_checkpoint
from slmscale.lm.slm_scaling_fixtures import write_native_checkpoint
from slmscale.report.report import make_report, run_outcomes
from slmscale.report.runs import read_sweep
from slmscale.units.config import TokenizerConfig
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import train_tokenizer
from slmscale.vocoder.config import VocoderConfig
from slmscale.vocoder.mean_mel import train_vocoder
from slmscale.vocoder.speech_continuation import generate_speech

TRAIN = ["context=32", "tokens_per_update=256", "eval_every=0", "lr=0.01", "threads=1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A k=16 tokenizer and its units (vocabulary 18; a train split of about 1,600 tokens), an sLM21
    tree, and a native checkpoint of vocabulary 18 imported on those units."""
    root = tmp_path_factory.mktemp("imported")
    corpus = make_speech_corpus(root / "corpus", utterances=48, held_out=3)
    train_tokenizer(corpus, root / "tok", TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1))
    tokenize_corpus(corpus, root / "tok", root / "units", workers=1)
    make_slm21(root / "bench", [T(str(i), "win", voice=v, frequency=i) for i in range(3) for v in ("a", "b")],
               [T(str(i), "win", voice=v, type=t, subtype="x") for i in range(2) for t in ("P", "Q")
                for v in ("a", "b")], seed=1)
    src = write_native_checkpoint(root / "native", vocab_size=18, block_size=256)
    import_checkpoint(src, root / "units", root / "released", CheckpointImportConfig(tokens=3000))
    return {"root": root, "corpus": corpus, "tok": root / "tok", "units": root / "units", "bench": root / "bench",
            "run": root / "released"}


def _eval(world, run: Path) -> dict:
    cfg = EvalConfig(cache_dir=str(world["root"] / "cache"), threads=1, workers=1, bootstrap=20)
    return evaluate_run(run, [world["bench"]], cfg)


def test_eval_and_generate_take_an_imported_run(world, tmp_path):
    record = (world["run"] / "run.json").read_bytes()
    out = _eval(world, world["run"])
    assert {"swuggy", "sblimp"} <= set(out["metrics"]) and out["tokens"] == 3000
    assert (world["run"] / "run.json").read_bytes() == record  # evaluation leaves the record as imported
    train_vocoder(world["corpus"], world["tok"], tmp_path / "voc", VocoderConfig(workers=1))
    prompt = tmp_path / "prompt.wav"
    write_wav(prompt, speech_like(np.random.default_rng(7), 0.6, 16000)[:, 0])
    summary = generate_speech(world["run"], tmp_path / "out.wav", 1.5, prompt, tmp_path / "voc",
                              SamplingConfig(seed=1))
    assert summary["units"] and all(0 <= u < 16 for u in summary["units"])
    assert (tmp_path / "out.wav").stat().st_size > 40_000  # 1.5 s of 16-bit 16 kHz audio


def test_packed_units_without_a_tokenizer_are_refused_by_eval_in_one_line(world, tmp_path, capsys):
    from slmscale.units.packed_fixtures import make_packed_dir
    units = tmp_path / "packed_units"
    assert main(["units", "import-packed", str(make_packed_dir(tmp_path / "packed", k=16)), "--out", str(units),
                 "test_fraction=0.2"]) == 0
    assert main(["import-checkpoint", str(world["root"] / "native"), "--units", str(units), "--out",
                 str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--benchmark", str(world["bench"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names no tokenizer" in err[0] and "--tokenizer TOK" in err[0], err
    assert main(["units", "import-packed", str(tmp_path / "packed"), "--out", str(tmp_path / "with_tok"),
                 "--tokenizer", str(world["tok"]), "test_fraction=0.2"]) == 0
    meta = json.loads((tmp_path / "with_tok" / "meta.json").read_text())
    assert meta["tokenizer"] == str(world["tok"].resolve()) and meta["dedup"] is True


def test_a_sweep_draws_an_imported_run_beside_its_own(world, tmp_path):
    _eval(world, world["run"])
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "variants": [{"name": "raw", "units": str(world["units"]), "corpus": "all", "tokenizer": "raw"}],
        "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1", "tiny-L2"], "tokens": [512, 1024]}],
        "train": TRAIN, "benchmarks": [str(world["bench"])], "eval": ["bootstrap=20", "threads=1", "workers=1"]}))
    sweep = tmp_path / "sweep"
    assert main(["sweep", str(config), "--out", str(sweep), "--workers", "1", "--with", str(world["run"])]) == 0
    with (sweep / "results.csv").open() as handle:
        rows = {row["run_id"]: row for row in csv.DictReader(handle)}
    released = rows.pop("released")
    assert len(rows) == 4 and all(r["grids"] == "main" and not r["run_dir"] for r in rows.values())
    scores = json.loads((world["run"] / "eval.json").read_text())["metrics"]
    assert released["grids"] == "with" and released["variant"] == "raw" and released["run_dir"] == str(world["run"])
    assert int(released["tokens"]) == 3000 and float(released["loss"]) == json.loads(
        (world["run"] / "run.json").read_text())["test_loss"]
    assert float(released["sblimp"]) == scores["sblimp"] and float(released["swuggy"]) == scores["swuggy"]
    assert released["epochs"] == "1"
    # The report reads it as one more run of the variant every figure draws, with its per-pair outcomes.
    table = read_sweep(sweep).variants["raw"]
    assert "released" in table.table.run_ids and len(table.single_epoch()) == 5
    assert run_outcomes(sweep, read_sweep(sweep).rows)("released", "sblimp") is not None
    report = make_report(sweep, tmp_path / "report", bootstrap=0)
    assert report["variants"]["raw"]["n_runs"] == 5 and "released" in {r["run_id"] for r in report["runs"]}
    assert any(f["figure"] == "1" for f in report["figures"])
    # The row is rebuilt from the sweep's recorded config (sweep.yaml), also by a later call without --with.
    assert yaml.safe_load((sweep / "sweep.yaml").read_text())["with_runs"] == [{"run": str(world["run"]),
                                                                                "variant": ""}]


def test_a_run_that_cannot_join_a_results_table_is_refused_before_the_sweep(world, tmp_path, capsys):
    run = tmp_path / "no_tokens"
    import_checkpoint(world["root"] / "native", world["units"], run, CheckpointImportConfig())
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "variants": [{"name": "raw", "units": str(world["units"])}],
        "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [1024]}], "train": TRAIN}))
    capsys.readouterr()
    assert main(["sweep", str(config), "--out", str(tmp_path / "sweep"), "--with", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run.json: no tokens" in err and "--tokens D" in err, err
    assert not (tmp_path / "sweep").exists()
    other = yaml.safe_load(config.read_text())
    other["with_runs"] = [{"run": str(world["run"]), "variant": "nope"}]
    config.write_text(yaml.safe_dump(other))
    assert main(["sweep", str(config), "--out", str(tmp_path / "sweep")]) == 2
    assert "with_runs[0].variant: unknown variant 'nope'" in capsys.readouterr().err
