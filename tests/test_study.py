"""The study configs, and a miniature study end to end (integration): every stage, the report,
and a rerun that skips everything."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slmscale.config import ConfigError, load_config
from slmscale.study.config import StudyConfig
from slmscale.study.study import run_study
from slmscale.sweep.config import Grid, Variant
from slmscale.sweep.grid import expand
from slmscale.units.fixtures import make_units_dir

ROOT = Path(__file__).resolve().parents[1]
PAPER_TOTALS = {"20m": 20_710_912, "85m": 85_339_392, "155m": 154_680_320, "309m": 308_845_568,
                "823m": 823_179_264}


def test_tiny_yaml_is_the_default_study():
    assert load_config(StudyConfig, ROOT / "configs/study/tiny.yaml") == StudyConfig()


def test_paper_study_loads_and_expands_to_the_papers_grid(tmp_path):
    cfg = load_config(StudyConfig, ROOT / "configs/study/paper.yaml")
    # HuBERT k=500 units: vocabulary 502, as the paper's (fake dirs stand in for the real data).
    prepared = tuple(dataclasses.replace(v, units=str(make_units_dir(tmp_path / v.name, units=500)), mixture=())
                     for v in cfg.prepared)
    sweep = dataclasses.replace(cfg.sweep, variants=prepared)
    runs = expand(sweep, tmp_path)
    main = [r for r in runs if "main" in r.grids]
    assert len(main) == 5 * 8 and {r.params for r in main} == set(PAPER_TOTALS.values())
    assert {round(r.tokens / r.params) for r in main} == {2, 4, 8, 10, 20, 32, 64, 100}
    epochs = [r for r in runs if r.unique_tokens]
    assert {round(r.tokens / r.unique_tokens) for r in epochs} == {2, 4, 8, 10}
    assert max(r.tokens / r.unique_tokens for r in epochs if r.size == "823m") == 8
    assert {r.variant for r in runs} == {"raw", "unigram"} and cfg.fit.delta == 0.03
    assert len(runs) > 50  # "more than 50 SLMs", as the paper trained


def test_study_config_errors(tmp_path):
    bad = dataclasses.replace(StudyConfig(), sweep=dataclasses.replace(
        StudyConfig().sweep, grids=(Grid("x", ("nope",), ("tiny-L1",), tokens=(1000,)),)))
    with pytest.raises(ConfigError, match="unknown variant.*nope"):
        run_study(tmp_path, bad)
    bad = dataclasses.replace(StudyConfig(), sweep=dataclasses.replace(
        StudyConfig().sweep, variants=(Variant("raw", "x"),)))
    with pytest.raises(ConfigError, match="the study fills them"):
        run_study(tmp_path, bad)


def test_the_report_gets_every_fit_setting_of_the_study(tmp_path, monkeypatch):
    """The study's fit settings reach every fit of the report, not only bootstrap and seed."""
    import slmscale.report.report as report_module
    from slmscale.study import study
    seen: dict = {}
    monkeypatch.setattr(report_module, "make_report", lambda *args, **kwargs: seen.update(kwargs) or {})
    cfg = load_config(StudyConfig, ROOT / "configs/study/paper.yaml", ["fit.tie_alpha_beta=true", "fit.fix=E=1.7"])
    (tmp_path / "report").mkdir()
    study._report(tmp_path / "sweep", tmp_path / "report", cfg, "stamp")
    assert seen == {"bootstrap": 1000, "seed": 0, "delta": 0.03, "tie_alpha_beta": True, "fixed": {"E": 1.7}}


def test_the_text_and_unigram_variants_get_their_own_train_overrides(tmp_path):
    """Their runs see fewer tokens than the raw grid's: the study gives them a smaller batch, and
    only them (the sweep's `train` still applies to every run, before these)."""
    from slmscale.study import study
    cfg = load_config(StudyConfig, None, ["unigram_train=[tokens_per_update=512]"])
    sweep = study._sweep_config(cfg, tmp_path, {"raw", "stories", "unigram", "text"})
    trains = {v["name"]: v["train"] for v in sweep["variants"]}
    assert trains == {"raw": [], "stories": [], "unigram": ["tokens_per_update=512"],
                      "text": ["tokens_per_update=1024"]}
    with pytest.raises(ConfigError, match="unigram_train: unknown config key 'tokens_per_updat'"):
        load_config(StudyConfig, None, ["unigram_train=[tokens_per_updat=512]"])


def test_a_relative_out_dir_gives_a_sweep_config_the_sweep_reads(tmp_path, monkeypatch):
    """`make demo` passes --out out/demo: the sweep reads sweep.yaml's relative paths from the study
    dir, so the study writes them absolute (its own paths are relative to the current directory)."""
    import yaml

    from slmscale.study import study
    from slmscale.sweep.sweep import resolve
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo" / "speech" / "benchmarks").mkdir(parents=True)
    (tmp_path / "demo" / "world" / "benchmarks").mkdir(parents=True)
    for name in ("raw", "text"):
        make_units_dir(tmp_path / "demo" / "units" / name)
    cfg = load_config(StudyConfig, None, ["sweep.grids=[{name: g, variants: [raw, text], sizes: [tiny-L1], "
                                          "tokens: [1000]}]"])
    sweep_yaml = tmp_path / "demo" / "sweep.yaml"
    sweep_yaml.write_text(yaml.safe_dump(study._sweep_config(cfg, Path("demo"), {"raw", "text"})))
    resolved, runs = resolve(Path("demo") / "sweep.yaml")
    assert [v.units for v in resolved.variants] == [str(tmp_path / "demo" / "units" / n) for n in ("raw", "text")]
    assert resolved.benchmarks == (str(tmp_path / "demo" / "speech" / "benchmarks"),) and len(runs) == 2
    # Real data named relative to the current directory, as on the command line.
    prepared = load_config(StudyConfig, None, ["prepared=[{name: raw, units: demo/units/raw}]",
                                               "benchmarks=[demo/speech/benchmarks]",
                                               "sweep.grids=[{name: g, variants: [raw], sizes: [tiny-L1], tokens: [1000]}]"])
    sweep_yaml.write_text(yaml.safe_dump(study._sweep_config(prepared, Path("demo"), set())))
    resolved, _ = resolve(sweep_yaml)
    assert resolved.variants[0].units == str(tmp_path / "demo" / "units" / "raw")
    assert resolved.benchmarks == (str(tmp_path / "demo" / "speech" / "benchmarks"),)


def test_study_fit_settings_are_those_every_law_reads():
    for override, message in (("fit.law=kaplan", "unknown config key"), ("fit.metric=sblimp", "unknown config key"),
                              ("fit.fix=gamma=1", "unknown parameter"), ("fit.fix=alpha", "is not name=number"),
                              ("fit.delta=0", "must be > 0")):
        with pytest.raises(ConfigError, match=message):
            load_config(StudyConfig, None, [override])


MINI = ["world.stories=60", "world.sentence_records=60", "world.text_only_stories=60",
        "world.syntax_pairs_per_subtype=4", "world.cloze_per_subtype=2", "world.lexical_oov_words=10",
        "world.valid_fraction=0.1", "world.test_fraction=0.1", "tokenizer.k=32", "tokenizer.frames_sample=20000",
        "unigram.vocab_size=60", "fit.bootstrap=20"]


@pytest.mark.integration
def test_a_miniature_study_end_to_end_then_a_rerun_skips_everything(tmp_path):
    from slmscale.cli import main
    grids = ("[{name: main, variants: [raw], sizes: [tiny-L1, tiny-L2, tiny-L3], tokens: [4096, 8192, 16384]},"
             " {name: corpus, variants: [stories, sentences], sizes: [tiny-L1, tiny-L2], tokens: [4096]},"
             " {name: unigram, variants: [unigram], sizes: [tiny-L1, tiny-L2], tokens: [4096]},"
             " {name: text, variants: [text], sizes: [tiny-L1, tiny-L2], tokens: [4096, 8192]}]")
    args = ["study", "--out", str(tmp_path / "study"), *MINI, f"sweep.grids={grids}",
            "sweep.train=[context=64, tokens_per_update=1024, eval_every=0]", "sweep.eval=[bootstrap=20]"]
    assert main(args) == 0
    record = json.loads((tmp_path / "study" / "study.json").read_text())
    assert record["sweep"]["status"] == {"completed": 9 + 4 + 2 + 4}
    assert set(record["stages"]) >= {"world", "synth", "tokenizer", "units", "units-stories", "unigram", "text",
                                     "sweep", "report"}
    report = (tmp_path / "study" / "report" / "report.md").read_text()
    assert "![" in report and list((tmp_path / "study" / "report").glob("*.png"))
    assert main(args) == 0
    again = json.loads((tmp_path / "study" / "study.json").read_text())
    assert all(stage["skipped"] for stage in again["stages"].values()), again["stages"]
    assert again["wall_seconds"] < 30


def test_a_stage_output_of_another_config_is_moved_aside_and_redone(tmp_path: Path) -> None:
    """An edited study (or a changed default) finds its old stage outputs: each moves to
    OUT/superseded/ and the stage runs again, instead of the stage refusing the directory."""
    from slmscale.files import StageError, check_output_dir, mark_completed
    from slmscale.study.study import _Stages
    out = tmp_path / "study"
    old = out / "units" / "raw"
    old.mkdir(parents=True)
    mark_completed(old, "old-config")
    (old / "data").write_text("old")

    def work() -> str:
        if check_output_dir(old, "new-config"):
            return "skipped"
        old.mkdir(parents=True, exist_ok=True)
        mark_completed(old, "new-config")
        return "made"

    stages = _Stages(out)
    assert stages("units", lambda: True, work) == "made"
    assert stages.timings["units"]["skipped"] is False
    [moved] = stages.superseded
    assert moved.parent == out / "superseded" and moved.name.startswith("units-raw-")
    assert (moved / "data").read_text() == "old" and not (old / "data").exists()
    assert stages("units", lambda: True, work) == "skipped" and len(stages.superseded) == 1
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    mark_completed(outside, "old-config")
    with pytest.raises(StageError, match="different config"):  # not the study's to move
        stages("other", lambda: True, lambda: check_output_dir(outside, "new-config"))
