"""`slmscale import-checkpoint SRC --units UNITS --out RUN [--name NAME] [--tokens D] [key=value ...]`:
a checkpoint of the paper's code as a completed run dir."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from slmscale.cli import add_config_arguments
    parser.description = (
        "Make the run dir RUN of SRC, a checkpoint dir in the native format of the paper's code (config.json "
        "format_version 1 + model.safetensors, as their save_pretrained writes it; docs/PAPER.md §11.1): the "
        "HF layout, run.json and a test loss on the test split of UNITS, so that eval, generate, export, "
        "sweeps and LlamaForCausalLM.from_pretrained take it like a trained run. UNITS says what the token ids "
        "are: a units dir of the same units (tokenized with a tokenizer of the same k-means, or `units "
        "import-packed`). A released model's name (gslm-scaling-85m-43p5b) gives its size and tokens seen. "
        "Nothing is downloaded: SRC is a local dir.")
    # Not required by argparse, which would refuse `--show-config` without them; run checks them.
    parser.add_argument("src", nargs="?", metavar="SRC", help="checkpoint dir (config.json + model.safetensors)")
    parser.add_argument("--units", metavar="UNITS", help="units dir of the model's token ids")
    parser.add_argument("--out", metavar="RUN", help="run dir to write")
    parser.add_argument("--name", help="the released model's name, when SRC's folder is not named after it "
                                       "(config key name)")
    parser.add_argument("--tokens", metavar="D", help="tokens the model was trained on, when its name does not "
                                                      "give them (config key tokens)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError
    from slmscale.lm.config import CheckpointImportConfig
    from slmscale.lm.import_checkpoint import import_checkpoint
    if args.show_config:
        return show_config(CheckpointImportConfig)
    if not args.src or not args.units or not args.out:
        raise StageError("import-checkpoint needs SRC, --units UNITS and --out RUN")
    cfg = build_config(CheckpointImportConfig, args, {"name": "name", "tokens": "tokens"})
    record = import_checkpoint(args.src, args.units, args.out, cfg)
    params, tokens = record["params"]["total"], record.get("tokens")
    print(f"{args.out}: imported {record['origin']['name']}, {params:,} parameters, "
          + (f"{tokens:,} tokens seen" if tokens else "tokens seen unknown (give --tokens D)")
          + f"; test loss {record['test_loss']:.4f} nats/token on {record['test_tokens']:,} tokens")
    return 0
