"""`slmscale vocoder train CORPUS --tokenizer TOK --out VOC`: learn the weight-free vocoder."""

from __future__ import annotations

import argparse

from slmscale.cli import IntermixedParser, add_config_arguments, build_config, show_config
from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    # Intermixed, so `key=value` overrides may follow the options of `train`.
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=IntermixedParser)
    train = sub.add_parser(
        "train", help="learn each unit's mean log-mel spectrum and run lengths from a corpus (seconds)",
        description="Learn the mean-mel vocoder of a tokenizer from the audio of a corpus (the tokenizer's own "
                    "training corpus is best). Writes VOC/vocoder.json + vocoder.safetensors. A HiFi-GAN "
                    "checkpoint (config.json + g_XXXXXXXX of speech-resynthesis/textlesslib) needs no "
                    "training here: pass its dir to `slmscale generate --vocoder`.")
    train.add_argument("corpus", nargs="?", metavar="CORPUS", help="corpus dir (manifest.jsonl + 16 kHz audio)")
    train.add_argument("--tokenizer", metavar="TOK", help="tokenizer dir whose units are vocoded")
    train.add_argument("--out", metavar="VOC", help="output vocoder dir")
    train.add_argument("--workers", type=int, metavar="N", help="feature processes (config key workers)")
    add_config_arguments(train)


def run(args: argparse.Namespace) -> int:
    from slmscale.vocoder.config import VocoderConfig
    from slmscale.vocoder.mean_mel import train_vocoder
    if args.show_config:
        return show_config(VocoderConfig)
    if not (args.corpus and args.tokenizer and args.out):
        raise StageError("give CORPUS, --tokenizer TOK and --out VOC (see slmscale vocoder train --help)")
    cfg = build_config(VocoderConfig, args, {"workers": "workers"})
    vocoder = train_vocoder(args.corpus, args.tokenizer, args.out, cfg)
    trained = vocoder.info["trained_on"]
    print(f"{args.out}: mean-mel vocoder of {vocoder.k} units (tokenizer {vocoder.tokenizer_fingerprint}) from "
          f"{trained['audio_seconds']:.0f} s, {trained['utterances']} utterances; "
          f"{len(vocoder.info['unseen_units'])} units unseen")
    return 0
