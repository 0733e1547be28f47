"""`slmscale tokenize CORPUS_OR_WAV_FOLDER --tokenizer TOK --out UNITS`."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("A corpus dir (manifest.jsonl) gives one units split per corpus split; a folder of "
                     "audio files (e.g. a ZeroSpeech lexical/dev or StoryCloze sSC folder) gives one split "
                     "named after the folder, ids = file stems. UNITS gets <split>.bin/.idx/.ids(/.dur) and "
                     "meta.json. Rerunning a finished command does nothing.")
    parser.add_argument("source", metavar="CORPUS_OR_WAV_FOLDER", help="corpus dir or folder of audio files")
    parser.add_argument("--tokenizer", required=True, metavar="TOK", help="tokenizer dir")
    parser.add_argument("--out", required=True, metavar="UNITS", help="output units dir")
    parser.add_argument("--no-dedup", dest="dedup", action="store_const", const=False, default=None,
                        help="keep repeated units (default: the tokenizer's dedup setting)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out unreadable/empty files (listed in meta.json) instead of stopping")
    parser.add_argument("--workers", type=int, default=0, metavar="N", help="worker processes (0 = one per core)")
    parser.add_argument("--hubert-path", metavar="DIR",
                        help="where the tokenizer's HuBERT model lies now, if it moved (checked to be the same weights)")


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
    from slmscale.units.tokenize import tokenize_audio_folder, tokenize_corpus

    source = Path(args.source)
    tokenize = tokenize_corpus if (source / MANIFEST).is_file() else tokenize_audio_folder
    print_meta(tokenize(source, args.tokenizer, args.out, dedup=args.dedup, skip_bad=args.skip_bad,
                        workers=args.workers, hubert_path=args.hubert_path))
    return 0
