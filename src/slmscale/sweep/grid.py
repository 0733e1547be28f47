"""A sweep config expanded into runs with stable ids, FLOPs and (optionally) time estimates.

A run id names what the run is, `<variant>-<size>-d<D>[-u<U>]` (e.g. `raw-tiny-L3-d500k`),
so ids do not depend on grid order and a rerun of an edited config finds the runs it
already has. Budgets print as k/M/B only when that is exact.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmscale.config import ConfigError, apply_overrides
from slmscale.files import StageError
from slmscale.lm.sizes import count_params, flops_per_token, get_preset
from slmscale.sweep.config import SweepConfig, Variant
from slmscale.units.shards import read_meta

NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class RunSpec:
    run_id: str
    variant: str
    size: str
    tokens: int
    unique_tokens: int | None
    params: int
    flops: float
    """6 N D (N total, the paper's convention)."""
    flops_with_attention: float
    units: str
    """Absolute units dir (a mixture's first, whose vocabulary and tokenizer its corpora share)."""
    modality: str
    """"audio" or "text" (a units dir with vocab.json)."""
    grids: list[str] = field(default_factory=list)
    corpus: str = ""
    tokenizer: str = ""
    train: tuple[str, ...] = ()
    """The variant's own TrainConfig overrides (applied after the sweep's)."""
    mixture: list[dict[str, Any]] = field(default_factory=list)
    """A mixture variant's corpora (MixtureCorpus fields, units absolute); [] for one units dir."""


def training_data(spec: RunSpec) -> Any:
    """What the trainer takes for this run: its units dir, or its mixture (a MixtureConfig)."""
    from slmscale.lm.config import MixtureConfig, MixtureCorpus
    if not spec.mixture:
        return spec.units
    return MixtureConfig(tuple(MixtureCorpus(**corpus) for corpus in spec.mixture))


def data_dirs(spec: RunSpec) -> tuple[str, ...]:
    return tuple(corpus["units"] for corpus in spec.mixture) or (spec.units,)


def short_count(n: int) -> str:
    """2000000 -> "2M", 1500000 -> "1.5M", 250000 -> "250k", 1234567 -> "1234567": a unit
    only when the number reads exactly in it with at most two decimals and below 1000."""
    for unit, scale in (("B", 10 ** 9), ("M", 10 ** 6), ("k", 10 ** 3)):
        value = n / scale
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        if 1 <= value < 1000 and round(float(text) * scale) == n:
            return text + unit
    return str(n)


def train_split_tokens(units_dir: str | Path, train: tuple[str, ...] | list[str]) -> int | None:
    """Tokens of the train split a run of this units dir draws from (`train_split` as the sweep's
    train overrides set it; SweepConfig checked that they parse), or None when that is not known yet:
    no units built, or no such split."""
    from slmscale.lm.config import TrainConfig
    split = apply_overrides(TrainConfig(), list(train)).train_split
    try:
        tokens = read_meta(units_dir).get("splits", {}).get(split, {}).get("tokens")
    except StageError:
        return None
    return int(tokens) if tokens else None


def train_tokens_of(specs, train: tuple[str, ...] | list[str]) -> dict[str, int | None]:
    """Run id -> the train tokens its data holds (a mixture's summed; None while a dir is not built),
    each units dir read once."""
    per_dir = {units: train_split_tokens(units, train) for spec in specs for units in data_dirs(spec)}
    counts = {spec.run_id: [per_dir[units] for units in data_dirs(spec)] for spec in specs}
    return {run_id: None if None in found else sum(found) for run_id, found in counts.items()}


def unique_and_epochs(spec: RunSpec, train_tokens: int | None) -> tuple[int | None, float | None]:
    """U and D/U of a run before it trains: its own unique_tokens, else the whole train split
    (the trainer's rule); (None, None) when neither is known. Without unique_tokens a run with
    D above the split repeats it: epochs > 1, not one pass."""
    unique = spec.unique_tokens or train_tokens
    return (unique, spec.tokens / unique) if unique else (None, None)


def resolve_units(variant: Variant, base: Path) -> Path:
    """The variant's units dir, absolute (a mixture's first)."""
    path = Path(variant.mixture[0].units if variant.mixture else variant.units)
    return (path if path.is_absolute() else base / path).resolve()


def _mixture(variant: Variant, base: Path) -> list[dict[str, Any]]:
    """The variant's corpora for its runs, each units dir absolute and checked to be one."""
    corpora = [dataclasses.asdict(corpus) for corpus in variant.resolved(base).mixture]
    for corpus in corpora:
        read_meta(corpus["units"])
    return corpora


def expand(cfg: SweepConfig, base: str | Path = ".") -> list[RunSpec]:
    """Every run of the sweep, deduplicated across grids, in grid order; `base` is the directory
    relative paths of the config are resolved against."""
    base = Path(base)
    variants: dict[str, Variant] = {}
    for index, variant in enumerate(cfg.variants):
        if not NAME.match(variant.name):
            raise ConfigError(f"variants[{index}].name {variant.name!r} must be letters, digits or '_'")
        if variant.name in variants:
            raise ConfigError(f"variants[{index}]: name {variant.name!r} is used twice")
        variants[variant.name] = variant
    metas: dict[str, dict[str, Any]] = {}
    runs: dict[str, RunSpec] = {}
    for g, grid in enumerate(cfg.grids):
        where = f"grids[{g}] ({grid.name})"
        if not grid.variants or not grid.sizes or not (grid.tokens or grid.tokens_per_param):
            raise ConfigError(f"{where}: needs variants, sizes, and tokens or tokens_per_param")
        for name in grid.variants:
            if name not in variants:
                raise ConfigError(f"{where}: unknown variant {name!r} (have {', '.join(variants) or 'none'})")
            if name not in metas:
                units = resolve_units(variants[name], base)
                metas[name] = {"dir": units, "meta": read_meta(units), "mixture": _mixture(variants[name], base),
                               "modality": "text" if (units / "vocab.json").is_file() else "audio"}
            info = metas[name]
            for size in grid.sizes:
                try:
                    shape = get_preset(size).shape(int(info["meta"]["vocab_size"]))
                except (KeyError, ValueError) as err:
                    raise ConfigError(f"{where}: size {size!r}: {err}") from None
                params = count_params(shape).total
                budgets = list(grid.tokens) + [int(round(r * params)) for r in grid.tokens_per_param]
                for tokens in budgets:
                    if any(e < 1 for e in grid.epochs):
                        raise ConfigError(f"{where}: epochs {grid.epochs} must all be >= 1")
                    uniques = [None if e == 1 else int(round(tokens / e)) for e in grid.epochs]
                    uniques += [u for u in grid.unique_tokens if u < tokens]
                    for unique in dict.fromkeys(uniques):
                        flops = 6.0 * params * tokens
                        if grid.max_flops and flops > grid.max_flops:
                            continue
                        run_id = f"{name}-{size}-d{short_count(tokens)}" + (
                            f"-u{short_count(unique)}" if unique else "")
                        if run_id not in runs:
                            runs[run_id] = RunSpec(
                                run_id, name, size, tokens, unique, params, flops,
                                float(flops_per_token(shape, with_attention=True)) * tokens, str(info["dir"]),
                                info["modality"], [], variants[name].corpus, variants[name].tokenizer,
                                tuple(variants[name].train), info["mixture"])
                        if grid.name not in runs[run_id].grids:
                            runs[run_id].grids.append(grid.name)
    if not runs:
        raise ConfigError("the sweep has no runs (check grids and max_flops)")
    return list(runs.values())
