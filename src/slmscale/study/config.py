"""Typed config of `slmscale study`: every stage's config in one file (configs/study/*.yaml).

The study makes its own data variants for the sweep's grids to name:
- `raw`: units of the whole corpus (stories and sentence records);
- `stories` / `sentences`: the same units split by corpus (the paper's Figure 3);
- `unigram`: sentencepiece unigram pieces over the raw units (Figure 5);
- `text`: the world's text in the text arm's alphabet (the speech-vs-text comparison of
  Figures 2 and 4 and Table 4, measured on the same world).
Only the variants some grid uses are built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from slmscale.audio.config import SynthConfig
from slmscale.config import ConfigError
from slmscale.lm.config import TrainConfig
from slmscale.scaling.config import FitConfig
from slmscale.sweep.config import Grid, SweepConfig, Variant, check_overrides
from slmscale.units.config import TextUnitsConfig, TokenizerConfig, UnigramConfig
from slmscale.world.config import WorldConfig

STUDY_VARIANTS = ("raw", "stories", "sentences", "unigram", "text")
TINY_SIZES = ("tiny-L2", "tiny-L3", "tiny-L4", "tiny-L5")
"""139k to 1.67M parameters (12x) at the world's vocabulary of 202. tiny-L1 (width 32, one head)
sits off the law every larger size follows (docs/LOG.md, 2026-12-07: refits of the GPU ladder pilots)."""

TINY_WORLD = WorldConfig(stories=1200, text_only_stories=8400, syntax_pairs_per_subtype=70,
                         cloze_per_subtype=20, lexical_nonwords_per_word=1)
"""About 12 h of speech (1.7M deduplicated units: one pass covers the largest budget); 8,400 more
stories and sentence records as text only (about 1M subword tokens for the text arm); 1,330 syntax
pairs (a ±3-point 95% interval on the sBLIMP macro) and 100 items per StoryCloze set, whose 20-s
stories are most of the scoring cost."""

TINY_SWEEP = SweepConfig(
    grids=(Grid("main", ("raw",), TINY_SIZES, tokens=(400_000, 800_000, 1_600_000)),
           Grid("corpus", ("stories", "sentences"), ("tiny-L3", "tiny-L4"), tokens=(400_000,)),
           # The unigram pieces hold about 590k tokens of the same speech: single-epoch budgets below it.
           Grid("unigram", ("unigram",), TINY_SIZES, tokens=(150_000, 300_000)),
           # The text arm in subwords over a compute range overlapping the speech grid's (1e11-4e12 FLOPs).
           Grid("text", ("text",), TINY_SIZES, tokens=(100_000, 200_000, 400_000))),
    # Validation once at the end and a short checkpoint interval: at 100-400 updates per run the
    # trainer's default of 10 validations would cost about half of the training itself.
    train=("eval_every=1000", "eval_tokens=65536", "checkpoint_every=50"))
"""The tiny study's grids: the main N x D grid on raw units, the corpus comparison at equal tokens,
the unigram variant and the text arm (docs/LOG.md has how it was chosen)."""


@dataclass(frozen=True)
class StudyFitConfig:
    """How the report fits every law (Chinchilla, its extrapolation check, the data-constrained law's
    base and decay constants): the settings of `slmscale fit` that apply to all of them. The others
    (law, metric, extrapolate_below, ...) choose one fit of one table and have no place here."""
    delta: float = 1e-3
    """Huber delta on log-loss residuals (Hoffmann's 1e-3; Cuervo & Marxer 2024 used 0.03)."""
    tie_alpha_beta: bool = False
    """Fit one exponent for N and D (Muennighoff et al.'s base law)."""
    fix: str = ""
    """Parameters held constant, "name=value,name=value" (E, A, B, alpha, beta)."""
    bootstrap: int = 200
    """Resamples for every interval of the report (0 = none)."""
    seed: int = 0
    """Seed of the bootstraps."""

    def __post_init__(self) -> None:
        self.fixed()  # a bad value is an error when the config is read, not after the sweep

    def fixed(self) -> dict[str, float]:
        """`fix` parsed and checked as `slmscale fit` checks it (ConfigError naming the item)."""
        from slmscale.scaling.chinchilla import free_parameters
        cfg = FitConfig(delta=self.delta, tie_alpha_beta=self.tie_alpha_beta, fix=self.fix,
                        bootstrap=self.bootstrap, seed=self.seed)
        fixed = cfg.fixed()
        try:
            free_parameters(fixed, self.tie_alpha_beta)
        except ValueError as err:
            raise ConfigError(f"fit.fix: {err}") from None
        return fixed


@dataclass(frozen=True)
class StudyShrink:
    """A large study's wiring at tiny scale, for a CPU: every model size of the grids replaced by a tiny
    stand-in and every budget cut, so its variants, grids, stages and report run in minutes. A check
    that the config runs, not a study: its numbers mean nothing. Off while `sizes` is empty."""
    sizes: tuple[str, ...] = ()
    """`size=stand-in` pairs, one for every size the grids name, e.g. 85m=tiny-L4; each stand-in a size
    preset used once, so every grid keeps its shape (its sizes x budgets); none = the study as written."""
    tokens_per_param_base: int = 1000
    """A grid's `tokens_per_param` budget r becomes r x this many tokens, the same for every size (the
    stand-ins' own N, 60x apart, would give budgets 60x apart)."""
    tokens_scale: float = 0.0002
    """Absolute budgets (`tokens`, `unique_tokens`) are multiplied by this (rounded, at least 1)."""
    train: tuple[str, ...] = ("context=64", "tokens_per_update=1024", "compile=false", "eval_every=0")
    """TrainConfig overrides every shrunk run gets last (after the sweep's and its variant's): a short
    context and batch for the tiny budgets, no compilation (minutes on a CPU). Not `precision`."""

    def __post_init__(self) -> None:
        from slmscale.lm.sizes import get_preset
        seen: dict[str, str] = {}
        for pair in self.sizes:
            size, _, stand_in = (part.strip() for part in pair.partition("="))
            if not size or not stand_in:
                raise ConfigError(f"shrink.sizes: {pair!r} is not size=stand-in (e.g. 85m=tiny-L4)")
            try:
                get_preset(stand_in)
            except KeyError as err:
                raise ConfigError(f"shrink.sizes: {pair!r}: {err.args[0]}") from None
            if size in seen or stand_in in seen.values():
                raise ConfigError(f"shrink.sizes: {pair!r}: each size and each stand-in may appear once")
            seen[size] = stand_in
        if self.tokens_per_param_base < 1:
            raise ConfigError(f"shrink.tokens_per_param_base: must be at least 1, got {self.tokens_per_param_base}")
        if not 0 < self.tokens_scale <= 1:
            raise ConfigError(f"shrink.tokens_scale: must be in (0, 1], got {self.tokens_scale}")
        if any(item.split("=", 1)[0].strip() == "precision" for item in self.train):
            raise ConfigError("shrink.train: precision is chosen once per sweep; set it in sweep.train")
        check_overrides("shrink.train", TrainConfig, self.train)

    def stand_ins(self) -> dict[str, str]:
        return {size.strip(): stand_in.strip() for size, _, stand_in in (p.partition("=") for p in self.sizes)}

    def grids(self, grids: tuple[Grid, ...]) -> tuple[Grid, ...]:
        """The grids at tiny scale (unchanged while off); a size without a stand-in is a ConfigError.
        `max_flops` is dropped: the tiny runs' FLOPs say nothing of the full-size runs' it caps."""
        if not self.sizes:
            return grids
        stand_ins = self.stand_ins()
        shrunk = []
        for grid in grids:
            missing = [size for size in grid.sizes if size not in stand_ins]
            if missing:
                raise ConfigError(f"shrink.sizes: no stand-in for {', '.join(missing)} (grid {grid.name}); "
                                  "give one pair size=stand-in for every size of the grids")
            tokens = tuple(dict.fromkeys([*(max(1, round(t * self.tokens_scale)) for t in grid.tokens),
                                          *(max(1, round(r * self.tokens_per_param_base)) for r in grid.tokens_per_param)]))
            shrunk.append(dataclasses.replace(
                grid, sizes=tuple(stand_ins[size] for size in grid.sizes), tokens=tokens, tokens_per_param=(),
                unique_tokens=tuple(max(1, round(u * self.tokens_scale)) for u in grid.unique_tokens), max_flops=0.0))
        return tuple(shrunk)


@dataclass(frozen=True)
class StudyConfig:
    """One scaling study, end to end."""
    world: WorldConfig = TINY_WORLD
    """The built-in story world (slmscale world)."""
    synth: SynthConfig = SynthConfig()
    """How it is spoken (slmscale synth)."""
    tokenizer: TokenizerConfig = TokenizerConfig()
    """The speech tokenizer (slmscale tokenizer train)."""
    unigram: UnigramConfig = UnigramConfig(vocab_size=1000)
    """The unigram variant (the paper used 5,000 pieces over 500 HuBERT units; 1,000 over 200 MFCC units here)."""
    text: TextUnitsConfig = TextUnitsConfig(alphabet="subwords")
    """The text arm's alphabet: subwords, as text LMs read text (characters learned nothing the unit
    5-gram does not know at the tiny study's budgets; docs/LOG.md, 2026-12-04)."""
    text_train: tuple[str, ...] = ("tokens_per_update=1024",)
    """TrainConfig overrides of the text arm's runs (after sweep.train): its few tokens need a smaller
    batch to take more than a few dozen updates."""
    unigram_train: tuple[str, ...] = ("tokens_per_update=1024",)
    """TrainConfig overrides of the unigram variant's runs (after sweep.train): its pieces are about 2.9
    raw units each, so its single-epoch budgets are a third of the raw grid's and need a smaller batch
    for enough updates (at 4,096 tokens, 150k tokens is 37 updates; docs/LOG.md, 2026-12-07)."""
    story_prefix: str = "story-"
    """Utterance ids of the world's stories start with this (the `stories` variant)."""
    sentence_prefix: str = "sentences-"
    """Utterance ids of the world's sentence records start with this (the `sentences` variant)."""
    prepared: tuple[Variant, ...] = ()
    """Real data: units dirs made beforehand (tokenize, unigram encode), as sweep variants. When given,
    the world, synth, tokenizer and units stages are skipped and the grids name these variants.
    Relative units paths are taken from the current directory, as `--out` is."""
    benchmarks: tuple[str, ...] = ()
    """Real data: spoken benchmarks (sLM21 tree, StoryCloze folders) every speech run is evaluated on
    (relative paths from the current directory)."""
    sweep: SweepConfig = TINY_SWEEP
    """The grids over the variants (leave `variants` and `benchmarks` empty: the study fills them); its
    `with_runs` (run dirs relative to the current directory) add runs from outside to the results."""
    fit: StudyFitConfig = StudyFitConfig()
    """Fit settings of the report's laws, used by every fit the report makes."""
    shrink: StudyShrink = StudyShrink()
    """Off by default: every size of the grids replaced by a tiny stand-in and every budget cut, to run a
    large study's wiring on a CPU (tests/test_study.py runs configs/study/gpu.yaml so)."""

    def __post_init__(self) -> None:
        for name in ("text_train", "unigram_train"):  # a typo fails here, not in every run of the variant
            check_overrides(name, TrainConfig, getattr(self, name))
        self.shrink.grids(self.sweep.grids)  # a size without a stand-in fails when the config is read
