"""`slmscale unigram train UNITS --out SPM [--vocab-size V]` and
`slmscale unigram encode UNITS --model SPM --out UNITS2`.

One parser with an ACTION positional rather than argparse subcommands: the CLI can then
parse intermixed, so `key=value` overrides may follow the options as for every other stage.
"""

from __future__ import annotations

import argparse

from slmscale.units.config import UnigramConfig
from slmscale.units.unigram import encode_units, train_unigram


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import add_config_arguments
    parser.description = (
        "train: fit a sentencepiece unigram model (one character per unit) on the train split of "
        "UNITS, writing SPM/unigram.model and SPM/unigram.json. encode: re-tokenize every split of "
        "UNITS with it into the same units dir format (pieces 0..V-1, EOS = V, PAD = V+1), "
        "reporting the compression (units per piece).")
    # Optional for argparse so that `unigram --show-config` needs no ACTION; run checks it.
    parser.add_argument("action", nargs="?", choices=("train", "encode"), help="train a model, or encode a units dir")
    parser.add_argument("units", metavar="UNITS", nargs="?", help="units dir (from `slmscale tokenize`)")
    parser.add_argument("--out", metavar="DIR", help="train: model dir SPM; encode: units dir")
    parser.add_argument("--vocab-size", type=int, metavar="V", help="train: pieces in the model (default 5000)")
    parser.add_argument("--model", metavar="SPM", help="encode: model dir from `slmscale unigram train`")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError
    if args.show_config:
        return show_config(UnigramConfig)
    if args.action is None:
        raise StageError("give an ACTION: `unigram train` or `unigram encode` (see slmscale unigram --help)")
    if not args.units or not args.out:
        raise StageError(f"`unigram {args.action}` needs UNITS and --out")
    if args.action == "train":
        if args.model:
            raise StageError("--model is for `unigram encode`")
        cfg = build_config(UnigramConfig, args, {"vocab_size": "vocab_size"})
        train_unigram(args.units, args.out, cfg)
        return 0
    if not args.model:
        raise StageError("`unigram encode` needs --model SPM")
    if args.vocab_size is not None or args.config or args.overrides:
        raise StageError("`unigram encode` takes its settings from the model; drop --vocab-size, "
                         "--config and overrides")
    meta = encode_units(args.units, args.model, args.out)
    for split, counts in meta["splits"].items():
        print(f"{split}: {counts['utterances']} utterances, {counts['source_units']} units -> "
              f"{counts['tokens'] - counts['utterances']} pieces (compression {counts['compression']}x)")
    return 0
