"""`slmscale world`: generate the built-in story world (text corpus and benchmark pairs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from slmscale.cli import add_config_arguments, build_config, show_config
from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    # The benchmarks' sizes are their own keys, not --stories: say which, where a small world is asked for.
    parser.epilog = ("The benchmarks do not shrink with --stories (the defaults make 1,900 syntax and about 1,300 "
                     "lexical pairs): set syntax_pairs_per_subtype (pairs per each of 19 paradigms), "
                     "cloze_per_subtype, lexical_words (lexicon words with pairs; default all 447), "
                     "lexical_oov_words and lexical_nonwords_per_word, e.g. `--stories 20 "
                     "syntax_pairs_per_subtype=2 cloze_per_subtype=2 lexical_words=20 lexical_oov_words=0 "
                     "lexical_nonwords_per_word=1`. `--show-config` lists every key.")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output directory: text.jsonl, benchmarks/, config.yaml, world.json")
    parser.add_argument("--stories", type=int, metavar="N", help="story records (config key: stories)")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed (config key: seed)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.world.config import WorldConfig
    if args.show_config:
        return show_config(WorldConfig)
    if args.out is None:
        raise StageError("--out DIR is required")
    config = build_config(WorldConfig, args, {"stories": "stories", "seed": "seed"})
    from slmscale.world.generate import build_world
    out = build_world(args.out, config)
    print(out)
    return 0
