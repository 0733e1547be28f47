"""`slmscale units check UNITS [--tokenizer TOK]`: validate a units dir;
`slmscale units import-packed DIR --out UNITS [--tokenizer TOK] [--valid-ids F] [--test-ids F]`: the
paper pipeline's packed units as a units dir."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import IntermixedParser, add_config_arguments, add_show_config_argument
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=IntermixedParser)
    check = sub.add_parser("check", help="validate a units dir (and that a given tokenizer made it)",
                           description="Check every split of UNITS (offsets, ids, EOS after every utterance, "
                                       "token range, counts in meta.json); with --tokenizer, also that the "
                                       "units were made by that tokenizer.")
    check.add_argument("units", nargs="?", metavar="UNITS", help="units dir")
    check.add_argument("--tokenizer", metavar="TOK", help="tokenizer dir the units must come from")
    add_show_config_argument(check)
    packed = sub.add_parser(
        "import-packed", help="the paper pipeline's packed units (shard-*/audio.bin ...) as a units dir",
        description="Verify every shard-* folder of DIR (the sha256 checksums of its meta.json, counts, one EOS "
                    "ending each utterance) and write its units as the units dir UNITS (train/valid/test, split "
                    "by a hash of each id, or by lists of ids), which `slmscale train --units` takes. With "
                    "--tokenizer (a tokenizer dir of the same k-means, `tokenizer import-kmeans`), eval and "
                    "generate can also tokenize audio for runs on UNITS.")
    packed.add_argument("packed", nargs="?", metavar="DIR", help="packed-units dir (shard-*/ folders)")
    packed.add_argument("--out", metavar="UNITS", help="units dir to write")
    packed.add_argument("--tokenizer", metavar="TOK", help="tokenizer dir of the same units (config key tokenizer)")
    packed.add_argument("--valid-ids", metavar="FILE", help="ids of the valid split, one a line (config key valid_ids)")
    packed.add_argument("--test-ids", metavar="FILE", help="ids of the test split, one a line (config key test_ids)")
    add_config_arguments(packed)


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


def import_packed_units(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.units.config import PackedImportConfig
    from slmscale.units.packed_import import import_packed
    if args.show_config:
        return show_config(PackedImportConfig)
    if args.packed is None or args.out is None:
        raise StageError("give DIR and --out UNITS (see slmscale units import-packed --help)")
    cfg = build_config(PackedImportConfig, args, {"tokenizer": "tokenizer", "valid_ids": "valid_ids",
                                                  "test_ids": "test_ids"})
    meta = import_packed(args.packed, args.out, cfg)
    for split, counts in meta["splits"].items():
        print(f"{split}: {counts['utterances']} utterances, {counts['tokens']} tokens")
    return 0


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import show_no_config
    if args.action == "import-packed":
        return import_packed_units(args)
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
