"""`slmscale units check UNITS [--tokenizer TOK]`: validate a units dir."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate a units dir (and that a given tokenizer made it)",
                           description="Check every split of UNITS (offsets, ids, EOS after every utterance, "
                                       "token range, counts in meta.json); with --tokenizer, also that the "
                                       "units were made by that tokenizer.")
    check.add_argument("units", nargs="?", metavar="UNITS", help="units dir")
    check.add_argument("--tokenizer", metavar="TOK", help="tokenizer dir the units must come from")
    from slmscale.cli import add_show_config_argument
    add_show_config_argument(check)


def check_units(units_dir: str | Path, tokenizer_dir: str | Path | None = None) -> dict[str, Any]:
    """`check_units_dir`, plus the tokenizer's fingerprint and vocabulary when one is named."""
    from slmscale.units.shards import check_units_dir, read_meta
    from slmscale.units.tokenizer import load_tokenizer

    report = check_units_dir(units_dir)
    if tokenizer_dir is not None:
        tok, meta = load_tokenizer(tokenizer_dir), read_meta(units_dir)
        made_by = meta.get("tokenizer_fingerprint")
        if made_by != tok.fingerprint:
            raise StageError(f"{units_dir} was made by tokenizer {made_by} (meta.json tokenizer_fingerprint), "
                             f"not by {tokenizer_dir} (fingerprint {tok.fingerprint})")
        if meta["vocab_size"] != tok.vocab_size or meta["eos_id"] != tok.eos_id:
            raise StageError(f"{units_dir}: vocab_size {meta['vocab_size']} / eos_id {meta['eos_id']} disagree with "
                             f"{tokenizer_dir} ({tok.vocab_size} / {tok.eos_id})")
    return report


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import show_no_config
    if args.show_config:
        return show_no_config("units check")
    if args.units is None:
        raise StageError("give UNITS (see slmscale units check --help)")
    report = check_units(args.units, args.tokenizer)
    for split, counts in report.items():
        print(f"{split}: {counts['utterances']} utterances, {counts['tokens']} tokens: ok")
    if args.tokenizer:
        print(f"made by {args.tokenizer}: ok")
    return 0
