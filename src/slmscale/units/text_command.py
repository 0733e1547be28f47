"""`slmscale tokenize-text TEXT.jsonl --out UNITS [--alphabet chars|phonemes]`, and with
`--vocab UNITS/vocab.json` a benchmark file (W/benchmarks/syntax.jsonl) in the same symbols."""

from __future__ import annotations

import argparse

from slmscale.units.config import TextUnitsConfig
from slmscale.units.text_units import encode_benchmark, tokenize_text


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import add_config_arguments
    # Neither is required by argparse, which would refuse `--show-config` without them; run checks them.
    parser.add_argument("input", nargs="?", metavar="JSONL",
                        help="a world's text.jsonl (id, text, kind, split), or with --vocab a benchmark "
                             "file (id, positive, negative, ...)")
    parser.add_argument("--out", metavar="UNITS", help="output units dir")
    parser.add_argument("--alphabet", choices=("chars", "phonemes"), help="symbols (default chars)")
    parser.add_argument("--vocab", metavar="VOCAB",
                        help="encode a benchmark file with this vocab.json (or the units dir holding it); "
                             "ids are <item id>/positive and <item id>/negative, in one split named "
                             "after the file")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError
    if args.show_config:
        return show_config(TextUnitsConfig)
    if args.input is None or args.out is None:
        raise StageError("give JSONL and --out UNITS (see slmscale tokenize-text --help)")
    if args.vocab:
        if args.alphabet or args.config or args.overrides:
            raise StageError("--vocab fixes the alphabet and settings; drop --alphabet, --config and overrides")
        meta = encode_benchmark(args.input, args.vocab, args.out)
        print(f"{meta['benchmark']}: {meta['items']} items, {meta['splits'][meta['benchmark']]['tokens']} "
              f"{meta['alphabet']} tokens")
        return 0
    cfg = build_config(TextUnitsConfig, args, {"alphabet": "alphabet"})
    meta = tokenize_text(args.input, args.out, cfg)
    for split, counts in meta["splits"].items():
        print(f"{split}: {counts['utterances']} texts, {counts['tokens']} tokens "
              f"({counts['tokens_per_character']} per character, {counts['tokens_per_word']} per word)")
    return 0
