"""The configs of the LM stages: the trainer's (one run of one model size on one token budget), the
mixture of units dirs it may train on, the sampling of `slmscale generate`, and
`slmscale import-checkpoint`'s."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from slmscale.config import ConfigError

# A run whose plan repeats its data more often than this is refused (lm.plan.RunPlan.check_epochs)
# unless the caller raises the limit (`train --max-epochs`): `--tokens 1e15` on a small units dir
# planned 244 billion updates and ran with a warning only. No study comes near it: the paper's
# epoch runs repeat the corpus 1.4-7.6 times (configs/study/paper.yaml), data-constrained scaling
# studies up to about 40-60 (Muennighoff et al. 2023), the tiny study's grids about one.
MAX_EPOCHS = 1000.0


@dataclass(frozen=True)
class TrainConfig:
    size: str = "tiny-L2"
    """Model size preset (`slmscale sizes` lists them): its shape, context, batch and LR."""
    tokens: int = 0
    """Training budget D: the run stops after exactly this many predicted tokens."""
    unique_tokens: Optional[int] = None
    """Train only on the first U tokens of the train split (D/U epochs, the paper's
    data-constrained runs); none = the whole split."""
    sampling: Literal["random", "epochs"] = "random"
    """`random`: windows at random offsets, with replacement (the paper's nanoGPT-style loader).
    `epochs`: non-overlapping windows, reshuffled each epoch, so every unique token is seen
    once per epoch."""
    context: Optional[int] = None
    """Sequence length; none = the preset's (2050 for the paper's sizes, 256 for tiny)."""
    tokens_per_update: Optional[int] = None
    """Tokens per optimizer update (a multiple of the context); none = the preset's batch."""
    micro_batch_size: Optional[int] = None
    """Sequences per forward pass and process; updates accumulate gradients over micro-batches.
    None = the largest that fits `memory_gb` (lm.plan.auto_micro_batch): the whole update for
    every tiny size, 16-24 sequences of 2050 tokens for 823m on an 80 GB GPU."""
    memory_gb: float = 80.0
    """Memory per process (GB) the automatic micro-batch is planned to fit."""
    lr: Optional[float] = None
    """Peak learning rate; none = the preset's (5e-4 for the paper's sizes)."""
    final_lr_fraction: float = 0.1
    """The cosine decays to this fraction of the peak (5e-4 -> 5e-5 in the paper)."""
    warmup_min_steps: int = 100
    """Warmup lasts max(warmup_min_steps, warmup_fraction x steps), at most half the run."""
    warmup_fraction: float = 0.01
    """See warmup_min_steps."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2."""
    weight_decay: float = 0.1
    """AdamW weight decay, on tensors of 2+ dimensions only (not norms)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Training matmul precision: bf16 autocast over fp32 weights and optimizer state, or fp32.
    `auto`: bf16 on GPUs that support it, and on CPUs with native bf16 (AVX512-BF16/AMX) from
    width 128; fp32 elsewhere (10x faster than bf16 on an AVX2 CPU, benchmarks/RESULTS.md).
    That rule is per run: a sweep resolves `auto` once for all its runs (slmscale.sweep.precision)
    and passes the result here, so one grid never mixes precisions. Validation and test losses are fp32 whatever this says
    (TF32 matmuls on CUDA), each process evaluating a share (lm/data.py `split_loss_sum`)."""
    compile: bool = False
    """Wrap the model in torch.compile for training."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` = CUDA when available (each torchrun process takes its LOCAL_RANK GPU)."""
    threads: Optional[int] = None
    """torch CPU threads per process; none = torch's default."""
    seed: int = 0
    """Seeds the initial weights and every training window."""
    eval_every: Optional[int] = None
    """Validation loss every this many updates; none (or 0, which sweeps' train overrides pass) = about
    10 times per run."""
    eval_tokens: int = 131_072
    """Validation tokens per periodic evaluation (from the start of the split)."""
    test_tokens: Optional[int] = None
    """Cap on the final test evaluation; none = the whole test split."""
    checkpoint_every: Optional[int] = None
    """Save a resumable checkpoint every this many updates; none = at every evaluation."""
    log_every: int = 10
    """Write a training row to metrics.jsonl every this many updates."""
    train_split: str = "train"
    """Split of the units dir to train on."""
    valid_split: str = "valid"
    """Split for the periodic validation loss (skipped when absent)."""
    test_split: str = "test"
    """Split for the final test loss and bits per second."""

    def __post_init__(self) -> None:
        # Checked here, where every caller (the command, a sweep, a study) builds the config, not where
        # a value is used: there `threads=-1` was a traceback from torch.set_num_threads, and `lr=0`,
        # `threads=0` or `context=0` silently meant the default (the trainer reads `x or default`).
        if self.tokens < 0:  # 0 is the unset default; plan_run refuses it with the same words
            raise ConfigError(f"tokens: the training budget D must be positive, got {self.tokens}")
        for key in ("unique_tokens", "context", "tokens_per_update", "micro_batch_size", "threads",
                    "eval_every", "checkpoint_every"):
            value, least = getattr(self, key), 0 if key == "eval_every" else 1
            if value is not None and value < least:
                raise ConfigError(f"{key}: must be at least {least} or none (the default), got {value}")
        for key, least in (("log_every", 1), ("warmup_min_steps", 0), ("seed", 0)):
            if getattr(self, key) < least:
                raise ConfigError(f"{key}: must be at least {least}, got {getattr(self, key)}")
        for key in ("eval_tokens", "test_tokens"):  # fewer than 2 tokens predict nothing: a loss of 0
            value = getattr(self, key)
            if value is not None and value < 2:
                raise ConfigError(f"{key}: must be at least 2 (one token predicted from another)"
                                  f"{' or none' if key == 'test_tokens' else ''}, got {value}")
        for key, low, high in (("final_lr_fraction", 0, 1), ("warmup_fraction", 0, 1)):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"{key}: must be between {low} and {high}, got {value}")
        for key in ("beta1", "beta2"):  # AdamW's own range; beta 1 would never forget a gradient
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 0 and below 1, got {getattr(self, key)}")
        for key in ("weight_decay", "grad_clip"):  # a negative clip silently disabled clipping
            if not 0 <= getattr(self, key) < math.inf:
                raise ConfigError(f"{key}: must be a finite number >= 0, got {getattr(self, key)}")
        if not 0 < self.memory_gb < math.inf:
            raise ConfigError(f"memory_gb: must be a finite positive number of GB, got {self.memory_gb}")
        if self.lr is not None and not 0 < self.lr < math.inf:
            raise ConfigError(f"lr: must be a positive number or none (the preset's), got {self.lr}")
        for key in ("train_split", "valid_split", "test_split"):
            if not getattr(self, key):
                raise ConfigError(f"{key}: must name a split of the units dir, got an empty name")


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    """Softmax temperature; 0 = greedy (argmax)."""
    top_k: int | None = None
    """Sample among the k most likely tokens only; none = all."""
    top_p: float | None = None
    """Nucleus sampling: the smallest set of tokens whose probability reaches p; none = all."""
    seed: int = 0
    """Seed of the sampling generator: the same seed and prompt give the same units."""

    def __post_init__(self) -> None:
        if (self.top_k is not None and self.top_k < 1) or (
                self.top_p is not None and not 0 < self.top_p <= 1) or self.temperature < 0:
            raise ConfigError(f"sampling needs temperature >= 0, top_k >= 1 and 0 < top_p <= 1, got "
                              f"{self.temperature}, {self.top_k}, {self.top_p}")


@dataclass(frozen=True)
class CheckpointImportConfig:
    """How `slmscale import-checkpoint` makes a run dir of a checkpoint trained elsewhere."""
    name: str = ""
    """The released model's name (e.g. gslm-scaling-85m-43p5b), which gives its size and tokens seen;
    "" = the checkpoint dir's own name."""
    tokens: Optional[int] = None
    """D, the tokens the checkpoint was trained on; none = what its name gives (a name that gives none
    leaves the run out of results tables and fits)."""
    unique_tokens: Optional[int] = None
    """U, the distinct tokens its training drew from; none = D (one pass, as the released runs are
    documented: at most one corpus epoch)."""
    test_split: str = "test"
    """Split of the units dir the test loss is measured on (as `train` measures its own runs')."""
    test_tokens: Optional[int] = None
    """Cap on the test tokens; none = the whole test split."""
    batch_size: int = 8
    """Windows per forward pass when measuring the test loss (does not change it)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` = CUDA when available."""

    def __post_init__(self) -> None:
        for key in ("tokens", "unique_tokens"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key}: must be at least 1 or none, got {value}")
        if self.test_tokens is not None and self.test_tokens < 2:
            raise ConfigError(f"test_tokens: must be at least 2 (one token predicted from another) or none, "
                              f"got {self.test_tokens}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be at least 1, got {self.batch_size}")
        if not self.test_split:
            raise ConfigError("test_split: must name a split of the units dir, got an empty name")


@dataclass(frozen=True)
class MixtureCorpus:
    """One units dir of a training mixture (lm/mixture.py): the paper trained on seven corpora at once
    and measured its test loss on the natural-speech ones only (docs/PAPER.md §3)."""
    units: str = ""
    """The units dir (relative to the mixture file's folder, or to the sweep config's)."""
    name: str = ""
    """Its label in run.json (letters, digits, '_', '-'); "" = the units dir's name."""
    weight: Optional[float] = None
    """Relative share of the training windows drawn from it (normalised over the mixture); none for every
    corpus = in proportion to their train tokens. Give every corpus a weight or none."""
    in_test_loss: bool = True
    """Whether its test split counts in the headline test loss: false for synthetic speech (the paper's
    sTinyStories), whose test loss is still recorded beside the others."""

    @property
    def label(self) -> str:
        return self.name or Path(self.units).name

    def __post_init__(self) -> None:
        if not self.units:
            raise ConfigError("mixture: every corpus needs `units` (a units dir)")
        if not _LABEL.match(self.label):
            raise ConfigError(f"mixture: corpus name {self.label!r} must be letters, digits, '_' or '-' (key name)")
        if self.weight is not None and not 0 < self.weight < math.inf:
            raise ConfigError(f"mixture ({self.label}).weight: must be a finite positive number or none, "
                              f"got {self.weight}")


@dataclass(frozen=True)
class MixtureConfig:
    """What `slmscale train --mixture FILE` trains on: several units dirs of one tokenizer."""
    corpora: tuple[MixtureCorpus, ...] = ()
    """The units dirs, each with its optional weight and whether it counts in the headline test loss."""

    def __post_init__(self) -> None:
        if self.corpora:  # the empty default is what a mixture file fills in (train_command.load_mixture)
            check_mixture(self.corpora, "mixture")


_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")


def check_mixture(corpora: tuple[MixtureCorpus, ...], where: str) -> None:
    """A mixture's own rules, for a mixture file and a sweep variant alike (ConfigError naming `where`)."""
    if not corpora:
        raise ConfigError(f"{where}: names no corpus (corpora: [{{units: DIR}}, ...])")
    labels = [c.label for c in corpora]
    twice = next((label for label in labels if labels.count(label) > 1), None)
    if twice:
        raise ConfigError(f"{where}: corpus name {twice!r} is used twice (give each a distinct `name`)")
    weighted = [c.weight is not None for c in corpora]
    if any(weighted) and not all(weighted):
        raise ConfigError(f"{where}: corpus {labels[weighted.index(False)]!r} has no weight while others have "
                          "one; give every corpus a weight or none (none = in proportion to their tokens)")
    if not any(c.in_test_loss for c in corpora):
        raise ConfigError(f"{where}: no corpus counts in the test loss (every one has in_test_loss: false)")
