"""`slmscale export RUN --out DIR [--format hf|slm-scaling]`: a trained or imported run as a Hugging
Face model directory, or as a checkpoint of the authors' own code (their native format)."""

from __future__ import annotations

import argparse

FORMATS = ("hf", "slm-scaling")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Copy a run's weights and config into DIR: in the layout "
                          "`transformers.LlamaForCausalLM.from_pretrained(DIR)` loads (--format hf, the default; "
                          "the run dir itself loads too), or in the native format of the paper's code "
                          "(--format slm-scaling: `slm.TransformerLM.from_pretrained(DIR)`, docs/PAPER.md §11.1).")
    from slmscale.cli import add_show_config_argument
    # Not required by argparse, which would refuse `--show-config` without them; run checks them.
    parser.add_argument("run", nargs="?", metavar="RUN", help="run dir from `slmscale train` or `import-checkpoint`")
    parser.add_argument("--out", metavar="DIR", help="output model dir")
    parser.add_argument("--format", choices=FORMATS, default="hf", help="hf (default) or slm-scaling")
    add_show_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import show_no_config
    from slmscale.files import StageError
    if args.show_config:
        return show_no_config("export")
    if args.run is None or args.out is None:
        raise StageError("give RUN and --out DIR (see slmscale export --help)")
    if args.format == "hf":
        from slmscale.lm.hf import export
    else:
        from slmscale.lm.slm_scaling_format import export
    print(f"exported {args.run} -> {export(args.run, args.out)} ({args.format})")
    return 0
