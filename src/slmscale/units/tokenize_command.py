"""`slmscale tokenize CORPUS_OR_WAV_FOLDER --tokenizer TOK --out UNITS`."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("A corpus dir (manifest.jsonl) gives one units split per corpus split; a folder of "
                     "audio files (e.g. a ZeroSpeech lexical/dev or StoryCloze sSC folder) gives one split "
                     "named after the folder, ids = file stems. UNITS gets <split>.bin/.idx/.ids(/.dur) and "
                     "meta.json. Rerunning a finished command does nothing.")
    from slmscale.cli import add_config_arguments
    # Not required=True: argparse would refuse `tokenize --show-config` for want of them; run checks them.
    parser.add_argument("source", nargs="?", metavar="CORPUS_OR_WAV_FOLDER", help="corpus dir or folder of audio files")
    parser.add_argument("--tokenizer", metavar="TOK", help="tokenizer dir")
    parser.add_argument("--out", metavar="UNITS", help="output units dir")
    parser.add_argument("--no-dedup", dest="dedup", action="store_const", const=False, default=None,
                        help="keep repeated units (config key dedup; default: the tokenizer's dedup setting)")
    parser.add_argument("--skip-bad", action="store_true", default=None,
                        help="leave out unreadable/empty files (listed in meta.json) instead of stopping "
                             "(config key skip_bad)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker processes (config key workers; 0 = one per core, the default)")
    parser.add_argument("--hubert-path", metavar="DIR",
                        help="where the tokenizer's HuBERT model lies now, if it moved (checked to be the same "
                             "weights; config key hubert_path)")
    add_config_arguments(parser)


def print_meta(meta: dict) -> None:
    for split, s in meta["splits"].items():
        d = s["diagnostics"]
        print(f"{split}: {s['utterances']} utterances, {s['tokens']} tokens, {s['audio_seconds'] / 3600:.2f} h, "
              f"{s['tokens_per_second']:.1f} units/s, dedup ratio {s['dedup_ratio']:.2f}, "
              f"entropy {d['entropy_bits']:.2f} bits (perplexity {d['perplexity']:.1f}, "
              f"{d['units_used']}/{d['units']} units used)")
    for item in meta.get("skipped", []):
        print(f"skipped {item['id']}: {item['problem']}")


def run(args: argparse.Namespace) -> int:
    from slmscale.audio.manifest import MANIFEST
    from slmscale.cli import build_config, show_config
    from slmscale.files import StageError
    from slmscale.units.config import TokenizeConfig
    from slmscale.units.tokenize import tokenize_audio_folder, tokenize_corpus

    if args.show_config:
        return show_config(TokenizeConfig)
    if args.source is None or args.tokenizer is None or args.out is None:
        raise StageError("give CORPUS_OR_WAV_FOLDER, --tokenizer TOK and --out UNITS (see slmscale tokenize --help)")
    cfg = build_config(TokenizeConfig, args, {"dedup": "dedup", "skip_bad": "skip_bad", "workers": "workers",
                                              "hubert_path": "hubert_path"})
    source = Path(args.source)
    tokenize = tokenize_corpus if (source / MANIFEST).is_file() else tokenize_audio_folder
    print_meta(tokenize(source, args.tokenizer, args.out, dedup=cfg.dedup, skip_bad=cfg.skip_bad,
                        workers=cfg.workers, hubert_path=cfg.hubert_path))
    return 0
