"""`slmscale export RUN --out DIR`: a trained run as a Hugging Face model directory."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Copy a trained run's weights and config into DIR in the layout "
                          "`transformers.LlamaForCausalLM.from_pretrained(DIR)` loads "
                          "(the run dir itself loads too).")
    parser.add_argument("run", metavar="RUN", help="run dir from `slmscale train`")
    parser.add_argument("--out", metavar="DIR", required=True, help="output model dir")


def run(args: argparse.Namespace) -> int:
    from slmscale.lm.hf import export
    print(f"exported {args.run} -> {export(args.run, args.out)}")
    return 0
