"""The `slmscale` command: one subcommand per stage, each a thin wrapper.

A command module exposes `configure(parser)` and `run(args) -> int`; it is
imported only when its subcommand runs, so `slmscale --help` stays fast. Stage
configs come from `--config FILE.yaml` and trailing `key=value` overrides.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, TypeVar

from slmscale import __version__
from slmscale.config import ConfigError, describe, load_config
from slmscale.files import StageError

T = TypeVar("T")

# (name, module, one-line help), in pipeline order.
COMMANDS: list[tuple[str, str, str]] = [
    ("world", "slmscale.world.world_command", "generate the built-in story world: text corpus and benchmark pairs"),
    ("synth", "slmscale.audio.synth_command", "speak a text.jsonl or world offline (espeak-ng, Piper) into a corpus and benchmark folders"),
    ("corpus", "slmscale.audio.import_command", "import real data (LibriSpeech, a folder of audio, TinyStories) into the corpus format"),
    ("tokenizer", "slmscale.units.tokenizer_command", "train a speech tokenizer (features + k-means) or import a k-means file"),
    ("tokenize", "slmscale.units.tokenize_command", "turn a corpus or a folder of benchmark audio into a units dir"),
    ("units", "slmscale.units.units_command", "check a units dir (and that a given tokenizer made it), or import the paper's packed units"),
    ("unigram", "slmscale.units.unigram_command", "train a sentencepiece unigram over units, or encode a units dir with it"),
    ("tokenize-text", "slmscale.units.text_command", "the text arm: a text.jsonl or benchmark file as characters or phonemes, in the units format"),
    ("sizes", "slmscale.lm.sizes_command", "list the model size presets with exact parameter counts"),
    ("train", "slmscale.lm.train_command", "train a Llama unit LM to an exact token budget (resumable; DDP under torchrun)"),
    ("import-checkpoint", "slmscale.lm.import_checkpoint_command", "a checkpoint of the paper's code (its released models) as a run dir"),
    ("export", "slmscale.lm.export_command", "export a run as a Hugging Face LlamaForCausalLM dir, or in the paper code's format"),
    ("eval", "slmscale.evaluate.eval_command", "zero-shot accuracy of a run on sWUGGY, sBLIMP, StoryCloze or any minimal pairs; or score a submission"),
    ("sweep", "slmscale.sweep.sweep_command", "run an N x D grid of unit LMs (train + eval) on local processes or Slurm; `sweep plan` to preview"),
    ("fit", "slmscale.scaling.fit_command", "fit a scaling law (Chinchilla, data-constrained, Kaplan, isoFLOP) or downstream scaling to a results table"),
    ("report", "slmscale.report.report_command", "the study's report from a sweep: the paper's figures, fitted laws and exponents with intervals, report.md"),
    ("generate", "slmscale.vocoder.generate_command", "continue a spoken prompt with a trained run and vocode it to a 16 kHz wav"),
    ("vocoder", "slmscale.vocoder.vocoder_command", "learn the weight-free unit vocoder (mean log-mel + durations) of a tokenizer from a corpus"),
    ("study", "slmscale.study.study_command", "the main job: world to report, the whole scaling study (tiny by default), resumable"),
]


class IntermixedParser(argparse.ArgumentParser):
    """An argparse parser for subcommands that lets `key=value` overrides follow options
    (`ROOT --out DIR workers=4`); plain argparse would leave them unrecognized."""

    _parsing = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._parsing:  # parse_known_intermixed_args calls back into parse_known_args
            return super().parse_known_args(args, namespace)
        self._parsing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, `--show-config` and trailing `key=value` overrides."""
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML config file (defaults otherwise)")
    parser.add_argument("--show-config", action="store_true",
                        help="print every config key with its default and meaning, then exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted config overrides, applied after --config and the flags")


def build_config(cls: type[T], args: argparse.Namespace, flags: dict[str, str] | None = None) -> T:
    """Resolve a stage config: defaults < --config file < flags < key=value overrides."""
    from_flags = [f"{key}={getattr(args, dest)}" for dest, key in (flags or {}).items()
                  if getattr(args, dest, None) is not None]
    return load_config(cls, args.config, from_flags + list(args.overrides))


def show_config(cls: type, *items: tuple[str, type]) -> int:
    """Print every key of `cls` with its default and meaning. `items`: (key, item class) of a key that
    holds a list of mappings (a sweep's `grids`), whose item keys are listed too, as `grids[].sizes`."""
    rows = describe(cls) + [row for key, item in items for row in describe(item, f"{key}[].")]
    for key, default, doc in rows:
        print(f"{key} = {default}\n    {doc}")
    return 0


def add_show_config_argument(parser: argparse.ArgumentParser) -> None:
    """`--show-config` alone, for a command whose settings are all options: every command answers
    it (the README promises so, and a test runs it for each), here by saying there are no keys."""
    parser.add_argument("--show-config", action="store_true",
                        help="say that this command has no config keys (its options are all flags), then exit")


def show_no_config(command: str) -> int:
    print(f"slmscale {command} has no config keys: its settings are the options of `slmscale {command} --help`")
    return 0


class _StoreOnce(argparse._StoreAction):
    """A single-valued option given twice is an error: argparse would keep the last value, so
    `train --units A --units B` silently trained on B."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_options_given", set())
        if self.dest in seen:
            parser.error(f"{option_string} was given twice; it takes one value")
        seen.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


def refuse_repeated_options(parser: argparse.ArgumentParser) -> None:
    """Make every single-valued option of `parser` (and of its subcommands) a `_StoreOnce`."""
    for action in parser._actions:
        if type(action) is argparse._StoreAction and action.option_strings:
            action.__class__ = _StoreOnce
        elif isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                refuse_repeated_options(sub)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slmscale",
        description="The scaling study of speech language models (Cuervo & Marxer 2024), end to end.",
        epilog="Run `slmscale COMMAND --help` for a command's options; `--show-config` lists its config keys.")
    parser.add_argument("--version", action="version", version=f"slmscale {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module, help_text in COMMANDS:
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def command_parser(command: str) -> tuple[Any, argparse.ArgumentParser]:
    """The module of a stage and its full parser (what `main` parses a command's arguments with)."""
    module_name, help_text = next((m, h) for n, m, h in COMMANDS if n == command)
    module: Any = importlib.import_module(module_name)
    full = argparse.ArgumentParser(prog=f"slmscale {command}", description=help_text)
    module.configure(full)
    refuse_repeated_options(full)
    return module, full


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    # First pass: find the command without importing every stage.
    known, _ = parser.parse_known_args(argv) if argv and argv[0] not in ("-h", "--help") else (None, None)
    if known is None:
        parser.parse_args(argv)  # prints help / usage and exits
        return 0
    from slmscale.log import setup_logging
    setup_logging(-1 if known.quiet else known.verbose)
    module, full = command_parser(known.command)
    rest = argv[argv.index(known.command) + 1:]
    # Intermixed parsing lets `key=value` overrides follow options (`--out DIR k=v`);
    # argparse cannot intermix for commands that have their own subcommands.
    has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in full._actions)
    args = full.parse_args(rest) if has_subcommands else full.parse_intermixed_args(rest)
    try:
        return int(module.run(args) or 0)
    except (ConfigError, StageError) as err:
        print(f"slmscale {known.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"slmscale {known.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
