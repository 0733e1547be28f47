"""Typed configs: strict loading, overrides, docstrings, and every committed config."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Literal, Optional

import pytest

from slmscale.config import (ConfigError, apply_overrides, describe, field_docs, fingerprint,
                             from_dict, load_config, to_dict)

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    """A float."""
    names: tuple[str, ...] = ("a", "b")
    """A tuple of strings."""


@dataclasses.dataclass(frozen=True)
class Outer:
    steps: int = 10
    """An int."""
    flag: bool = False
    """A bool."""
    mode: Literal["fast", "slow"] = "fast"
    """A choice."""
    out: Optional[Path] = None
    """An optional path."""
    inner: Inner = Inner()
    """A nested group."""


def test_overrides_parse_types_and_nested_keys():
    cfg = apply_overrides(Outer(), ["steps=1e3", "flag=true", "mode=slow", "out=/tmp/x",
                                    "inner.rate=2", "inner.names=x,y,z"])
    assert cfg == Outer(1000, True, "slow", Path("/tmp/x"), Inner(2.0, ("x", "y", "z")))
    assert apply_overrides(cfg, ["out=none"]).out is None


@pytest.mark.parametrize("override, needle", [
    ("stpes=3", "stpes"), ("inner.rat=1", "inner.rat"), ("steps=abc", "'abc'"),
    ("steps=1.5", "steps"), ("flag=maybe", "flag"), ("mode=medium", "medium"),
    ("inner=3", "group"), ("steps", "key=value"), ("steps.x=1", "steps.x"),
])
def test_bad_overrides_name_the_key_or_value(override, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        apply_overrides(Outer(), [override])


@dataclasses.dataclass(frozen=True)
class Typed:
    count: Optional[int] = None
    """An optional int."""
    rate: Optional[float] = None
    """An optional float."""
    split: Optional[Literal["train", "test"]] = None
    """An optional choice."""
    sizes: tuple[int, ...] = ()
    """A tuple of ints."""
    groups: tuple[Inner, ...] = ()
    """A tuple of groups."""


@pytest.mark.parametrize("override, message", [
    ("count=abc", "count: value 'abc' is not an integer or null (write integers as 20000, 20_000 or 2e4)"),
    ("rate=abc", "rate: value 'abc' is not a float or null"),
    ("split=dev", "split: value 'dev' is not one of ['train', 'test'] or null"),
    ("sizes=1,x", "sizes[1]: value 'x' is not an integer (write integers as 20000, 20_000 or 2e4)"),
    ({"groups": 3}, "groups: value 3 is not a list, each item a mapping of Inner keys"),
    ({"rate": True}, "rate: value True is not a float or null"),
])
def test_a_bad_value_names_the_type_it_needs_in_words(override, message):
    # An Optional field's message once read "value 'abc' is not a valid Optional".
    with pytest.raises(ConfigError) as err:
        if isinstance(override, dict):  # from a YAML file
            from_dict(Typed, override)
        else:
            apply_overrides(Typed(), [override])
    assert str(err.value) == message


@pytest.mark.parametrize("text, value", [
    ("2e4", 20_000), ("20_000", 20_000), ("2.5e4", 25_000), ("1E3", 1000), ("-3", -3),
    ("12345678901234567891", 12345678901234567891),  # exact: not rounded through a float
])
def test_int_keys_take_integers_written_as_numbers(text, value):
    assert apply_overrides(Outer(), [f"steps={text}"]).steps == value
    assert from_dict(Outer, {"steps": text}).steps == value  # YAML reads `steps: 2e4` as a string


@pytest.mark.parametrize("text", ["2.5", "2.5e-1", "nan", "inf", "1e99999", "0x10", ""])
def test_int_keys_refuse_what_is_not_an_integer(text):
    with pytest.raises(ConfigError, match=r"steps: value .* is not an integer"):
        apply_overrides(Outer(), [f"steps={text}"])


def test_yaml_file_is_strict_and_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 5\ninner:\n  rate: 0.25\n")
    cfg = load_config(Outer, path, ["steps=7"])
    assert (cfg.steps, cfg.inner.rate, cfg.inner.names) == (7, 0.25, ("a", "b"))
    path.write_text("steps: 5\ninner:\n  speed: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*inner\.speed"):
        load_config(Outer, path)
    path.write_text("steps: five\n")
    with pytest.raises(ConfigError, match="steps"):
        load_config(Outer, path)


def test_round_trip_and_fingerprint():
    cfg = apply_overrides(Outer(), ["inner.names=q", "out=/a"])
    assert from_dict(Outer, to_dict(cfg)) == cfg
    assert fingerprint(cfg) == fingerprint(from_dict(Outer, to_dict(cfg)))
    assert fingerprint(cfg) != fingerprint(Outer())


def test_field_docs_and_describe():
    assert field_docs(Outer)["mode"] == "A choice."
    keys = [k for k, _, _ in describe(Outer)]
    assert keys == ["steps", "flag", "mode", "out", "inner.rate", "inner.names"]


def _config_classes():
    """Every stage config class, by the configs/<stage>/ folder that holds its YAML files."""
    from slmscale.audio.config import SynthConfig
    from slmscale.evaluate.config import EvalConfig
    from slmscale.lm.config import TrainConfig
    from slmscale.scaling.config import FitConfig
    from slmscale.study.config import StudyConfig
    from slmscale.sweep.config import SweepConfig
    from slmscale.units.config import TokenizerConfig
    from slmscale.world.config import WorldConfig
    return {"world": WorldConfig, "synth": SynthConfig, "tokenizer": TokenizerConfig, "train": TrainConfig,
            "eval": EvalConfig, "fit": FitConfig, "sweep": SweepConfig, "study": StudyConfig}


def _all_config_classes():
    from slmscale.audio.config import FolderImportConfig, LibriSpeechImportConfig, TinyStoriesImportConfig
    from slmscale.lm.config import CheckpointImportConfig, SamplingConfig
    from slmscale.lm.model import ModelShape
    from slmscale.sweep.config import Grid, SlurmConfig, Variant, WithRun
    from slmscale.units.config import ImportConfig, PackedImportConfig, TextUnitsConfig, UnigramConfig
    from slmscale.vocoder.config import VocoderConfig
    return [*_config_classes().values(), FolderImportConfig, LibriSpeechImportConfig, TinyStoriesImportConfig,
            TextUnitsConfig, UnigramConfig, SamplingConfig, ModelShape, Grid, Variant, SlurmConfig, VocoderConfig,
            ImportConfig, CheckpointImportConfig, PackedImportConfig, WithRun]


def test_every_config_field_is_documented():
    def check(cls):
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            assert docs.get(f.name), f"{cls.__name__}.{f.name} has no docstring"
            if dataclasses.is_dataclass(hints[f.name]):
                check(hints[f.name])
    for cls in _all_config_classes():
        check(cls)


def test_every_committed_config_loads():
    classes = _config_classes()
    files = sorted((ROOT / "configs").rglob("*.yaml"))
    assert files, "no committed configs found"
    for path in files:
        stage = path.relative_to(ROOT / "configs").parts[0]
        assert stage in classes, f"{path}: no config class registered for configs/{stage}/"
        load_config(classes[stage], path)


def test_describe_shows_a_groups_defaults_from_the_enclosing_config():
    from slmscale.config import describe
    from slmscale.study.config import StudyConfig
    rows = {key: default for key, default, _ in describe(StudyConfig)}
    assert rows["world.stories"] == "1200" and rows["unigram.vocab_size"] == "1000"
