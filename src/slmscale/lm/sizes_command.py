"""`slmscale sizes [--json] [--vocab-size V]`: the model size presets."""

from __future__ import annotations

import argparse
import json

from slmscale.lm.sizes import PAPER_VOCAB, size_table


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("List the model sizes `slmscale train --size` accepts: the tiny CPU ladder "
                          "(tiny-L1 .. tiny-L7, one knob: depth) and the paper's five presets, with "
                          "exact parameter counts at the given vocabulary.")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    parser.add_argument("--vocab-size", type=int, default=PAPER_VOCAB, metavar="V",
                        help=f"vocabulary for the embedding counts (default {PAPER_VOCAB}: 500 units + EOS + PAD)")
    from slmscale.cli import add_show_config_argument
    add_show_config_argument(parser)


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k"


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import show_no_config
    from slmscale.files import StageError
    if args.show_config:
        return show_no_config("sizes")
    if args.vocab_size < 1:
        raise StageError(f"--vocab-size must be positive, got {args.vocab_size}")
    rows = size_table(args.vocab_size)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ("name", "layers", "width", "heads", "ffn", "context", "total", "non-emb", "tok/update", "lr")
    lines = [header] + [(r["name"], str(r["layers"]), str(r["width"]), str(r["heads"]), str(r["ffn_hidden"]),
                         str(r["context"]), _millions(r["total"]), _millions(r["non_embedding"]),
                         f"{r['tokens_per_update']:,}", f"{r['lr']:g}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))
    print(f"(vocabulary {args.vocab_size}; total = embedding (tied) + non-embedding)")
    return 0
