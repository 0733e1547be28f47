"""A study for one GPU (configs/study/gpu.yaml): the throughput table behind `sweep plan --gpu NAME`,
the plan of gpu.yaml, the shrink that puts tiny stand-ins in place of every size, and (integration)
gpu.yaml's wiring end to end on a CPU at tiny shapes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from slmscale.cli import main
from slmscale.config import ConfigError, load_config
from slmscale.lm.sizes import PAPER_CONTEXT, PAPER_VOCAB, flops_per_token, get_preset
from slmscale.study import study
from slmscale.study.config import StudyConfig
from slmscale.sweep.gpu_throughput import GPUS, RunEstimate, estimate_run, get_gpu, gpu_wall_seconds
from slmscale.sweep.sweep import plan_table
from slmscale.units.fixtures import make_units_dir

ROOT = Path(__file__).resolve().parents[1]
GPU_YAML = ROOT / "configs/study/gpu.yaml"
STAND_INS = "shrink.sizes=[tiny-L6=tiny-L1, tiny-L7=tiny-L2, 20m=tiny-L3, 85m=tiny-L4]"


def test_a_measured_preset_takes_its_tokens_over_its_measured_tokens_per_second():
    h200 = get_gpu("h200")
    for size, tokens_per_s in h200.tokens_per_second.items():
        shape = get_preset(size).shape(PAPER_VOCAB)
        tokens = 10 ** 9
        updates = -(-tokens // get_preset(size).tokens_per_update)
        estimate = estimate_run(h200, size, shape, tokens, updates, compiled=True)
        assert estimate.compute_seconds == pytest.approx(tokens / tokens_per_s, rel=1e-9)
        assert estimate.bound == "compute" and estimate.seconds == pytest.approx(
            tokens / tokens_per_s + h200.run_seconds, rel=1e-9)
    # The 85m's measured MFU, as benchmarks/RESULTS.md prints it (datasheet peak).
    assert h200.mfu("85m") == pytest.approx(0.466, abs=5e-4) and h200.mfu("823m") == pytest.approx(0.572, abs=5e-4)


def test_unmeasured_sizes_interpolate_the_mfu_and_tiny_ones_hit_the_update_floor():
    h200 = get_gpu("h200")
    assert h200.mfu("85m") < h200.mfu("155m") < h200.mfu("309m")
    assert h200.mfu("tiny-L7") == h200.mfu("20m")  # clamped below the smallest measured size
    shape = get_preset("tiny-L7").shape(202)
    estimate = estimate_run(h200, "tiny-L7", shape, 4096 * 1000, 1000, compiled=False)
    assert estimate.bound == "overhead" and estimate.floor_seconds == pytest.approx(1000 * h200.update_seconds)
    assert estimate.seconds == pytest.approx(1000 * h200.update_seconds + h200.eager_run_seconds)
    # Compute at the run's own context: a shorter one costs fewer FLOPs per token.
    short = estimate_run(h200, "85m", get_preset("85m").shape(202, 256), 10 ** 9, 1, compiled=False)
    long = estimate_run(h200, "85m", get_preset("85m").shape(202, PAPER_CONTEXT), 10 ** 9, 1, compiled=False)
    assert short.compute_seconds < long.compute_seconds


def test_the_h100_is_the_h200_by_the_ratio_of_peaks_and_says_it_is_an_estimate():
    h100, h200 = GPUS["h100"], GPUS["h200"]
    assert h100.peak_tflops == h200.peak_tflops == 989.0
    assert h100.tokens_per_second == pytest.approx(h200.tokens_per_second)
    assert h100.source.startswith("estimate") and "gpu_check_h200_2026-12-04.json" in h200.source
    assert (ROOT / "benchmarks/results/gpu_check_h200_2026-12-04.json").is_file()
    measured = {row["size"]: row["tokens_per_s"] for row in json.loads(
        (ROOT / "benchmarks/results/gpu_check_h200_2026-12-04.json").read_text())["sections"]["train"]["result"]
        if row["impl"] == "slmscale"}
    assert {size: round(tps) for size, tps in measured.items()} == h200.tokens_per_second
    assert get_gpu("H100") is h100


def test_an_unknown_gpu_is_a_one_line_error_naming_it_and_the_known_ones(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"--gpu 'a100'.*known GPUs: h100, h200"):
        get_gpu("a100")
    make_units_dir(tmp_path / "units")
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "variants": [{"name": "raw", "units": "units"}],
        "grids": [{"name": "g", "variants": ["raw"], "sizes": ["tiny-L1"], "tokens": [4096]}]}))
    assert main(["sweep", "plan", str(tmp_path / "sweep.yaml"), "--gpu", "a100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'a100'" in err and "h100, h200" in err
    assert main(["sweep", "plan", str(tmp_path / "sweep.yaml"), "--gpu", "h100", "train=[precision=fp32]"]) == 2
    assert "is bf16" in capsys.readouterr().err


def test_several_workers_on_one_gpu_overlap_only_what_is_not_compute():
    runs = [RunEstimate(100.0, 10.0, 5.0), RunEstimate(1.0, 50.0, 5.0)]  # compute-bound, overhead-bound
    assert gpu_wall_seconds(runs, 1) == pytest.approx(105 + 55)  # one after the other
    assert gpu_wall_seconds(runs, 2) == pytest.approx(101)  # never below the summed compute
    tiny = [RunEstimate(1.0, 50.0, 0.0)] * 4
    assert gpu_wall_seconds(tiny, 2) == pytest.approx(100)  # overhead-bound runs overlap


def _planned_sweep(tmp_path: Path, overrides: list[str] | None = None) -> tuple[StudyConfig, Path]:
    """gpu.yaml's sweep.yaml on fake units dirs of the world's vocabularies (202 units, 1,002 subwords)."""
    cfg = load_config(StudyConfig, GPU_YAML, overrides or [])
    used = study._used_variants(cfg)
    for name in used:
        make_units_dir(tmp_path / "units" / name, units=1000 if name == "text" else 200)
    for folder in ("world/benchmarks", "speech/benchmarks"):
        (tmp_path / folder).mkdir(parents=True)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(study._sweep_config(cfg, tmp_path, used), sort_keys=False))
    return cfg, path


def test_gpu_yaml_expands_and_plans_at_about_six_hours_on_an_h100(tmp_path):
    cfg, path = _planned_sweep(tmp_path)
    assert cfg.sweep.workers == 1 and {g.name for g in cfg.sweep.grids} == {"main", "main_85m", "corpus", "text"}
    sizes = {size for grid in cfg.sweep.grids for size in grid.sizes}
    assert sizes == {"tiny-L6", "tiny-L7", "20m", "85m"}
    ratios = {r for grid in cfg.sweep.grids for r in grid.tokens_per_param}
    assert min(ratios) == 2 and max(ratios) == 64
    assert cfg.world.stories * 12.7 / 1200 > 250  # a few hundred hours of speech
    lines, totals = plan_table(path, gpu="h100")
    from slmscale.sweep.sweep import resolve
    _, specs = resolve(path)
    assert totals["runs"] == len(specs) == 3 * 6 + 5 + 4 + 12
    assert totals["flops"] == pytest.approx(sum(6 * s.params * s.tokens for s in specs))
    assert 3 * 3600 < totals["train_seconds"] == totals["wall_seconds"] < 9 * 3600
    assert totals["compute_seconds"] < totals["train_seconds"] and totals["gpu"] == "h100"
    assert any("NVIDIA H100" in line and "h run after run" in line for line in lines)
    # The 85m at D/N 32 from its measured 623,636 tokens/s (at vocabulary 502; 202 here, a little faster).
    [row] = [line for line in lines if line.startswith("raw-85m-d2723487744 ")]
    minutes = float(row.split()[-1].rstrip("m"))
    assert 2_723_487_744 / 640_000 / 60 < minutes < 2_723_487_744 / 623_636 / 60 + 1


def test_study_plan_before_any_stage_gives_the_plan_of_the_built_units_and_writes_nothing(tmp_path, capsys):
    _, path = _planned_sweep(tmp_path / "built")  # fake units of the vocab the study's stages make
    _, built = plan_table(path, gpu="h100")
    fresh = tmp_path / "fresh"
    assert main(["study", "--out", str(fresh), "--config", str(GPU_YAML), "--plan", "--gpu", "h100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not fresh.exists()
    assert f"{built['flops']:.3g} FLOPs" in lines[-2] and "on one NVIDIA H100" in lines[-2]
    assert lines[-1].startswith("4 variant(s) not built yet (raw, stories, sentences, text)")
    assert not any("epochs unknown" in line for line in lines[:-1])  # said once, on the last line
    rows = {line.split()[0]: line.split()[-1] for line in lines if line.startswith(("raw-", "text-", "stories-", "sentences-"))}
    assert len(rows) == built["runs"] and rows["raw-85m-d2723487744"].endswith("m")
    assert main(["study", "--out", str(fresh), "--plan"]) == 0  # the tiny study, no GPU: no time here
    assert "no time estimated (give --gpu NAME" in capsys.readouterr().out
    assert main(["study", "--out", str(fresh), "--gpu", "h100"]) == 2
    assert capsys.readouterr().err.strip().endswith("--gpu goes with --plan (slmscale study --out DIR --plan --gpu NAME)")


def test_the_shrink_maps_every_size_to_a_stand_in_and_keeps_each_grid_shape(tmp_path):
    cfg = load_config(StudyConfig, GPU_YAML, [STAND_INS])
    shrunk = cfg.shrink.grids(cfg.sweep.grids)
    for grid, small in zip(cfg.sweep.grids, shrunk):
        assert small.name == grid.name and small.variants == grid.variants
        assert len(small.sizes) == len(grid.sizes) and all(s.startswith("tiny-L") for s in small.sizes)
        assert len(small.tokens) == len(grid.tokens) + len(grid.tokens_per_param) and not small.tokens_per_param
    assert shrunk[0].tokens == tuple(r * cfg.shrink.tokens_per_param_base for r in (2, 4, 8, 16, 32, 64))
    assert shrunk[2].tokens == (34_000,) and shrunk[3].tokens == (600, 1200, 2400)
    sweep = study._sweep_config(cfg, tmp_path, study._used_variants(cfg))
    trains = {v["name"]: v["train"] for v in sweep["variants"]}
    assert trains["text"] == ["context=256", "tokens_per_update=16384", *cfg.shrink.train]  # the shrink's last
    assert load_config(StudyConfig, GPU_YAML).shrink.grids(cfg.sweep.grids) == cfg.sweep.grids  # off by default


@pytest.mark.parametrize("override, message", [
    ("shrink.sizes=[85m]", r"shrink.sizes: '85m' is not size=stand-in"),
    ("shrink.sizes=[85m=tiny-L9]", r"shrink.sizes: '85m=tiny-L9': unknown size 'tiny-L9'"),
    ("shrink.sizes=[85m=tiny-L1, 20m=tiny-L1]", r"each size and each stand-in may appear once"),
    ("shrink.sizes=[85m=tiny-L1]", r"shrink.sizes: no stand-in for tiny-L6, tiny-L7, 20m \(grid main\)"),
    ("shrink.tokens_scale=0", r"shrink.tokens_scale: must be in \(0, 1\]"),
    ("shrink.train=[precision=bf16]", r"shrink.train: precision is chosen once per sweep"),
    ("shrink.train=[contxt=64]", r"shrink.train: unknown config key 'contxt'"),
])
def test_a_bad_shrink_is_a_one_line_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(StudyConfig, GPU_YAML, [override])
    assert "\n" not in str(err.value)


SHRUNK_WORLD = ["world.stories=60", "world.sentence_records=60", "world.text_only_stories=60",
                "world.syntax_pairs_per_subtype=4", "world.cloze_per_subtype=2", "world.lexical_oov_words=10",
                "world.lexical_words=40", "world.lexical_nonwords_per_word=1",
                "world.valid_fraction=0.1", "world.test_fraction=0.1", "tokenizer.k=32",
                "tokenizer.frames_sample=20000", "fit.bootstrap=20", "sweep.eval=[bootstrap=20]", "sweep.workers=2"]


@pytest.mark.integration
def test_gpu_yaml_at_tiny_shapes_runs_end_to_end_on_a_cpu(tmp_path, capsys):
    """gpu.yaml's wiring (its variants, four grids, the text arm and the corpus contrast, the report)
    with every size shrunk to a tiny stand-in and a 60-story world: what the GPU run will exercise."""
    out = tmp_path / "gpu"
    cfg = load_config(StudyConfig, GPU_YAML)
    assert main(["study", "--out", str(out), "--config", str(GPU_YAML), STAND_INS, *SHRUNK_WORLD]) == 0
    record = json.loads((out / "study.json").read_text())
    expected = 3 * 6 + 5 + 2 * 2 + 4 * 3
    assert record["sweep"]["status"] == {"completed": expected}
    with open(out / "sweep" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    shrunk = load_config(StudyConfig, GPU_YAML, [STAND_INS]).shrink.grids(cfg.sweep.grids)
    for grid, small in zip(cfg.sweep.grids, shrunk):
        mine = [r for r in rows if grid.name in r["grids"].split(",")]
        assert {r["variant"] for r in mine} == set(grid.variants)
        assert {r["size"] for r in mine} == set(small.sizes) and len(small.sizes) == len(grid.sizes)
        assert len(mine) == len(grid.variants) * len(grid.sizes) * len(small.tokens)
    assert {r["modality"] for r in rows if r["variant"] == "text"} == {"text"}
    report = (out / "report" / "report.md").read_text()
    assert "Findings" in report and "stories" in report
    # The plan of what ran, on the named GPU: every run, nothing trained.
    capsys.readouterr()
    assert main(["sweep", "plan", str(out / "sweep.yaml"), "--gpu", "h100"]) == 0
    printed = capsys.readouterr().out
    assert f"{expected} runs" in printed and "NVIDIA H100" in printed
