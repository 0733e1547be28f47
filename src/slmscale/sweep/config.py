"""Typed config of a sweep: the N x D grid(s) of unit LMs, their data variants, and how they run.

A sweep names its data **variants** (a units dir each: raw units of a corpus, unigram pieces,
the text arm) and one or more **grids**, each a product variants x sizes x token budgets x
epochs. The same run in two grids (the main grid and a corpus comparison at equal tokens) is
one run. Budgets are absolute (`tokens`) or tokens per parameter (`tokens_per_param`, D/N
as in the paper's grid, docs/PAPER.md §2.7); `epochs` > 1 trains on D/epochs unique tokens (the
data-constrained runs). The `train` and `eval` overrides are checked against TrainConfig and
EvalConfig when a sweep config is built, so a misspelt key fails `sweep plan`, not every worker.
`with_runs` adds completed runs made elsewhere (e.g. `slmscale import-checkpoint` of the paper's
released models) to the results table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from slmscale.config import ConfigError, apply_overrides
from slmscale.evaluate.config import EvalConfig
from slmscale.lm.config import MixtureCorpus, TrainConfig, check_mixture


def check_overrides(where: str, cls: type, overrides: tuple[str, ...]) -> None:
    """Apply `overrides` to a default `cls` as a worker later applies them to its run's config: an
    unknown key or a bad value is a ConfigError naming `where` and the key, raised now."""
    try:
        apply_overrides(cls(), overrides)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


@dataclass(frozen=True)
class Variant:
    """One units dir the grids train on."""
    name: str = ""
    """Short name, part of run ids (letters, digits, '_')."""
    units: str = ""
    """The units dir (from tokenize, unigram encode or tokenize-text); relative to the config file."""
    corpus: str = ""
    """Label of the corpus (e.g. stories, sentences, all), a column of results.csv."""
    tokenizer: str = ""
    """Label of the tokenization (e.g. raw, unigram, chars), a column of results.csv."""
    train: tuple[str, ...] = ()
    """TrainConfig key=value overrides for this variant's runs, after the sweep's `train`: e.g. a
    smaller `tokens_per_update` for a text arm, whose data hold few tokens (its runs would otherwise
    take a few dozen updates). Not `precision`: a sweep trains every run in one."""
    mixture: tuple[MixtureCorpus, ...] = ()
    """Instead of `units`: several units dirs of one tokenizer trained on at once (relative to the config
    file), each with an optional weight and whether its test split counts in the headline test loss
    (lm/train_data.py; the paper's seven corpora, configs/study/paper.yaml)."""

    def __post_init__(self) -> None:
        if any(item.split("=", 1)[0].strip() == "precision" for item in self.train):
            raise ConfigError(f"variants ({self.name}).train: precision is chosen once per sweep; set it in the "
                              "sweep's `train`")
        check_overrides(f"variants ({self.name}).train", TrainConfig, self.train)
        if self.mixture:
            check_mixture(self.mixture, f"variants ({self.name}).mixture")
            if self.units:
                raise ConfigError(f"variants ({self.name}): give `units` or `mixture`, not both")

    def resolved(self, base: Path) -> Variant:
        """This variant with its units dirs absolute (relative ones taken from `base`)."""
        def absolute(path: str) -> str:
            return str((base / path).resolve())
        return dataclasses.replace(self, units=absolute(self.units) if self.units else "", mixture=tuple(
            dataclasses.replace(c, units=absolute(c.units), name=c.label) for c in self.mixture))


@dataclass(frozen=True)
class Grid:
    """A product of variants x sizes x token budgets x epochs."""
    name: str = "main"
    """Name of the grid, recorded per run (a run can belong to several)."""
    variants: tuple[str, ...] = ()
    """Variant names."""
    sizes: tuple[str, ...] = ()
    """Size presets (`slmscale sizes`)."""
    tokens: tuple[int, ...] = ()
    """Absolute token budgets D."""
    tokens_per_param: tuple[float, ...] = ()
    """Token budgets as D/N (N = total parameters at the variant's vocabulary)."""
    epochs: tuple[float, ...] = (1.0,)
    """Passes over the unique data: 1 = the whole train split is the pool (a D above it repeats it; `sweep
    plan` warns and results.csv records the true epochs); e > 1 trains on D/e unique tokens."""
    unique_tokens: tuple[int, ...] = ()
    """Also train each budget D on these many unique tokens U (D/U epochs) where U < D: the paper's epoch
    runs repeat the whole corpus (e.g. 2-10 epochs of 10.89B tokens). With `epochs: []` only these run."""
    max_flops: float = 0.0
    """Skip runs whose 6ND exceeds this (0 = no cap): a compute-capped grid."""


@dataclass(frozen=True)
class WithRun:
    """A completed run dir from outside the sweep (an imported checkpoint of the paper's released models,
    a run trained by hand) whose row joins results.csv, so the report draws and fits it beside the
    sweep's own runs. The sweep neither trains nor evaluates it: its scores are its eval.json's."""
    run: str = ""
    """The run dir (relative to the config file)."""
    variant: str = ""
    """The variant it is drawn and fitted with; "" = the variant whose units dir the run names (run.json
    units.path), as an import with `--units` of that variant's units dir does."""


@dataclass(frozen=True)
class SlurmConfig:
    """The Slurm launcher (submitit): one array task per run."""
    partition: str = ""
    """Slurm partition ("" = the cluster's default)."""
    cluster: str = ""
    """submitit cluster: "" or "slurm" = Slurm (an error where there is none: it never falls back to
    running here unasked); "local" = submitit's local executor, to try the Slurm path on one machine."""
    gpus_per_run: int = 1
    """GPUs per run, over all its nodes; more than 1 runs torchrun inside the job (DDP)."""
    nodes_per_run: int = 1
    """Nodes per run: more than 1 is a multi-node job (one submitit task per node, torchrun on each
    meeting at a static rendezvous on the job's first host, sweep/slurm_task.py), gpus_per_run / nodes_per_run GPUs on each."""
    cpus_per_run: int = 8
    """CPUs per task."""
    mem_gb: int = 64
    """Memory per task."""
    time_minutes: int = 1440
    """Time limit per run; an interrupted run resumes from its checkpoint when resubmitted."""
    array_parallelism: int = 64
    """Array tasks running at once."""
    max_timeouts: int = 6
    """Time-outs after which a run's task is no longer requeued (submitit's max_num_timeout; a
    preemption does not count): 823m at 87B tokens takes about 88 h on 4 H100s, two 48 h jobs."""

    def __post_init__(self) -> None:
        for key, least in (("gpus_per_run", 0), ("nodes_per_run", 1), ("cpus_per_run", 1), ("time_minutes", 1),
                           ("array_parallelism", 1), ("max_timeouts", 0)):
            if getattr(self, key) < least:
                raise ConfigError(f"slurm.{key}: must be at least {least}, got {getattr(self, key)}")
        if self.nodes_per_run > 1 and (self.gpus_per_run < self.nodes_per_run or self.gpus_per_run % self.nodes_per_run):
            raise ConfigError(f"slurm.nodes_per_run: {self.nodes_per_run} nodes do not share gpus_per_run "
                              f"{self.gpus_per_run} evenly (give a multiple of {self.nodes_per_run} GPUs)")

    @property
    def gpus_per_node(self) -> int:
        return self.gpus_per_run // self.nodes_per_run


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep trains and evaluates."""
    variants: tuple[Variant, ...] = ()
    """The units dirs the grids refer to."""
    grids: tuple[Grid, ...] = ()
    """The grids; their union is the set of runs."""
    train: tuple[str, ...] = ()
    """TrainConfig key=value overrides for every run (e.g. threads=1, eval_every=0)."""
    benchmarks: tuple[str, ...] = ()
    """Spoken benchmarks every speech run is evaluated on (relative to the config file); none = no eval."""
    text_benchmarks: tuple[str, ...] = ()
    """Text pairs (a world's benchmarks/) every text-arm run is evaluated on."""
    eval: tuple[str, ...] = ()
    """EvalConfig key=value overrides (cache_dir defaults to eval's: $SLMSCALE_CACHE or ~/.cache/slmscale)."""
    seed: int = 0
    """Training seed of every run."""
    launcher: Literal["local", "slurm"] = "local"
    """local = worker processes on this machine; slurm = submitit job arrays."""
    workers: int = 0
    """local: runs at once (0 = one per CPU core); cores are split evenly between them."""
    slurm: SlurmConfig = SlurmConfig()
    """The Slurm launcher's resources."""
    with_runs: tuple[WithRun, ...] = ()
    """Completed run dirs from outside the sweep whose rows join results.csv (`sweep --with RUN` adds one)."""

    def __post_init__(self) -> None:
        check_overrides("train", TrainConfig, self.train)
        check_overrides("eval", EvalConfig, self.eval)
