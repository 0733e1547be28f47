"""A sweep's `train` and `eval` overrides are checked when the sweep config is read, so a misspelt key
fails `sweep plan` in one line naming it instead of inside every worker; and configs/sweep/example.yaml,
the documented schema, loads through the loader `slmscale sweep` uses."""

from __future__ import annotations

import dataclasses
import shutil
import typing
from pathlib import Path

import pytest
import yaml

from slmscale.cli import main
from slmscale.config import ConfigError
from slmscale.sweep.config import SweepConfig
from slmscale.sweep.sweep import resolve
from slmscale.units.fixtures import make_units_dir

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "sweep" / "example.yaml"


def _sweep(tmp_path: Path, variant_train: list[str] | None = None, **keys) -> Path:
    if not (tmp_path / "units").exists():
        make_units_dir(tmp_path / "units")
    variant = {"name": "raw", "units": "units", "corpus": "all", "tokenizer": "raw", "train": variant_train or []}
    data = {"variants": [variant], "grids": [{"name": "main", "variants": ["raw"], "sizes": ["tiny-L1"],
                                              "tokens": [2000]}], **keys}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_misspelt_train_key_is_refused_when_the_sweep_is_resolved(tmp_path):
    path = _sweep(tmp_path, train=["eval_evry=3"])
    with pytest.raises(ConfigError, match=r"train: unknown config key 'eval_evry'") as err:
        resolve(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("keys, variant_train, message", [
    ({"eval": ["bootstrp=20"]}, None, r"eval: unknown config key 'bootstrp'"),
    ({"eval": ["bootstrap=2"]}, None, r"eval: bootstrap=2 must be >= 10"),
    ({}, ["tokens_per_update=many"], r"variants \(raw\)\.train: tokens_per_update: value 'many'"),
    ({"train": ["threads"]}, None, r"train: override 'threads' is not of the form key=value"),
])
def test_bad_eval_and_variant_overrides_are_refused_naming_the_key(tmp_path, keys, variant_train, message):
    with pytest.raises(ConfigError, match=message):
        resolve(_sweep(tmp_path, variant_train, **keys))


def test_sweep_plan_reports_the_typo_in_one_line(tmp_path, capsys):
    path = _sweep(tmp_path, train=["eval_evry=3"])
    assert main(["sweep", "plan", str(path), "--no-measure"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("slmscale sweep: error: ") and "'eval_evry'" in err and "\n" not in err
    # The same typo given on the command line instead of in the file.
    good = _sweep(tmp_path, train=["eval_every=3"])
    assert main(["sweep", "plan", str(good), "--no-measure", "train=[eval_evry=3]"]) == 2
    assert "'eval_evry'" in capsys.readouterr().err


def test_valid_overrides_pass(tmp_path):
    path = _sweep(tmp_path, ["tokens_per_update=512"], train=["eval_every=3", "context=64", "precision=fp32"],
                  eval=["bootstrap=20", "ngram_order=0"])
    cfg, specs = resolve(path)
    assert cfg.train == ("eval_every=3", "context=64", "precision=fp32") and specs[0].train == ("tokens_per_update=512",)


def _keys(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_the_example_sweep_names_every_key_and_resolves(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text())
    hints = typing.get_type_hints(SweepConfig)
    assert set(data) == _keys(SweepConfig)
    assert set(data["slurm"]) == _keys(hints["slurm"])
    item = {name: typing.get_args(hints[name])[0] for name in ("variants", "grids")}
    for name, cls in item.items():
        assert data[name] and all(set(entry) == _keys(cls) for entry in data[name]), name
    # The loader checks that units dirs and benchmarks exist: put placeholders where the file points.
    path = tmp_path / "sweep.yaml"
    shutil.copy(EXAMPLE, path)
    for variant in data["variants"]:
        make_units_dir(tmp_path / variant["units"])
    for bench in (*data["benchmarks"], *data["text_benchmarks"]):
        (tmp_path / bench).mkdir(parents=True)
    cfg, specs = resolve(path)
    assert {s.variant for s in specs} == {v["name"] for v in data["variants"]}
    assert {g for s in specs for g in s.grids} == {g["name"] for g in data["grids"]}
    assert cfg.launcher == "local" and all(Path(b).is_absolute() for b in cfg.benchmarks)
