"""`slmscale export RUN --out DIR`: a trained run as a Hugging Face model directory."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Copy a trained run's weights and config into DIR in the layout "
                          "`transformers.LlamaForCausalLM.from_pretrained(DIR)` loads "
                          "(the run dir itself loads too).")
    from slmscale.cli import add_show_config_argument
    # Not required by argparse, which would refuse `--show-config` without them; run checks them.
    parser.add_argument("run", nargs="?", metavar="RUN", help="run dir from `slmscale train`")
    parser.add_argument("--out", metavar="DIR", help="output model dir")
    add_show_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import show_no_config
    from slmscale.files import StageError
    from slmscale.lm.hf import export
    if args.show_config:
        return show_no_config("export")
    if args.run is None or args.out is None:
        raise StageError("give RUN and --out DIR (see slmscale export --help)")
    print(f"exported {args.run} -> {export(args.run, args.out)}")
    return 0
