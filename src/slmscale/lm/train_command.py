"""`slmscale train --units UNITS --size NAME --tokens D [--unique-tokens U] --out RUN [key=value ...]`;
`--mixture MIX.yaml` in place of `--units` trains on several units dirs at once (lm/train_data.py).

Runs under torchrun unchanged for data parallelism:
`torchrun --nproc-per-node 2 -m slmscale train ...`.
"""

from __future__ import annotations

import argparse
import math
import os

from slmscale.lm.config import MAX_EPOCHS, TrainConfig


def _max_epochs(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # nan too: it would compare below every plan and disable the check unasked
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of epochs (inf for no limit)")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import add_config_arguments
    parser.description = (
        "Train a Llama unit LM on the train split of UNITS to exactly D tokens, writing the run dir "
        "RUN: run.json (the run record), metrics.jsonl, checkpoint/, train.yaml, and the HF layout "
        "config.json + model.safetensors. Rerunning resumes from the last checkpoint or skips a "
        "completed run. For DDP, launch the same command with torchrun.")
    parser.add_argument("--units", metavar="UNITS", help="units dir (from `slmscale tokenize` or `unigram encode`)")
    parser.add_argument("--mixture", metavar="MIX", help="instead of --units: a mixture file (corpora: [{units: DIR, "
                        "name, weight, in_test_loss}, ...], units relative to the file) of units dirs of one tokenizer")
    parser.add_argument("--out", metavar="RUN", help="run dir")
    parser.add_argument("--size", metavar="NAME", help="size preset (`slmscale sizes`); default tiny-L2")
    # No argparse type: the values go through the config's own int rule, so `--tokens 2e4` and
    # `tokens=2e4` are accepted (and `2.5` refused) alike, with the same message.
    parser.add_argument("--tokens", metavar="D", help="training tokens (the budget D): 20000, 20_000 or 2e4")
    parser.add_argument("--unique-tokens", metavar="U",
                        help="train on the first U tokens of the train split only (D/U epochs)")
    parser.add_argument("--max-epochs", type=_max_epochs, default=MAX_EPOCHS, metavar="E",
                        help=f"refuse a run that repeats its data more than E times (default {MAX_EPOCHS:g}: "
                             "far beyond any study, so a mistyped budget is caught); inf for no limit")
    add_config_arguments(parser)


def load_mixture(path: str):
    """A mixture file as a MixtureConfig, its units dirs taken relative to the file's folder."""
    import dataclasses
    from pathlib import Path

    from slmscale.config import load_config
    from slmscale.files import StageError
    from slmscale.lm.config import MixtureConfig
    if not Path(path).is_file():
        raise StageError(f"{path}: mixture file not found")
    mixture = load_config(MixtureConfig, path)
    if not mixture.corpora:
        raise StageError(f"{path}: names no corpus (corpora: [{{units: DIR}}, ...])")
    base = Path(path).resolve().parent
    return dataclasses.replace(mixture, corpora=tuple(
        dataclasses.replace(c, units=str(base / c.units), name=c.label) for c in mixture.corpora))


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError
    from slmscale.lm.trainer import train
    if args.show_config:
        return show_config(TrainConfig)
    if bool(args.units) == bool(args.mixture) or not args.out:
        raise StageError("train needs --units UNITS (or --mixture MIX, not both) and --out RUN")
    cfg = build_config(TrainConfig, args, {"size": "size", "tokens": "tokens", "unique_tokens": "unique_tokens"})
    record = train(args.units or load_mixture(args.mixture), args.out, cfg, max_epochs=args.max_epochs)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports
    bits = record.get("test_bits_per_second")
    print(f"{args.out}: {record['status']}; test loss {record['test_loss']:.4f} nats/token"
          + (f", {bits:.1f} bits/s" if bits is not None else "")
          + f"; {record['tokens']:,} tokens in {record['wall_seconds']:.0f} s")
    for entry in (record.get("test_losses") or []) if record.get("mixture") else []:
        print(f"  {entry['corpus']}: test loss {entry['loss']:.4f}" + ("" if entry["in_test_loss"] else
                                                                     " (not in the headline loss)"))
    return 0
