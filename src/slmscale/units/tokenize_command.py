"""`slmscale tokenize CORPUS_OR_WAV_FOLDER --tokenizer TOK --out UNITS [--shard I/N | --merge]`."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("A corpus dir (manifest.jsonl) gives one units split per corpus split; a folder of "
                     "audio files (e.g. a ZeroSpeech lexical/dev or StoryCloze sSC folder) gives one split "
                     "named after the folder, ids = file stems. UNITS gets <split>.bin/.idx/.ids(/.dur) and "
                     "meta.json. Rerunning a finished command does nothing. A large corpus: run --shard I/N for "
                     "I = 0 .. N-1 (e.g. a Slurm array, in parallel; each resumable), then the same command with "
                     "--merge, which writes the units dir an unsharded run writes.")
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
    parser.add_argument("--shard", metavar="I/N",
                        help="tokenize only shard I of N (0 <= I < N) into UNITS.shards/; --merge joins them")
    parser.add_argument("--merge", action="store_true",
                        help="merge the complete shards of UNITS.shards/ into UNITS (the same units as unsharded)")
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
    corpus = (source / MANIFEST).is_file()
    if args.shard is None and not args.merge:
        tokenize = tokenize_corpus if corpus else tokenize_audio_folder
        print_meta(tokenize(source, args.tokenizer, args.out, dedup=cfg.dedup, skip_bad=cfg.skip_bad,
                            workers=cfg.workers, hubert_path=cfg.hubert_path, device=cfg.device,
                            batch_seconds=cfg.batch_seconds))
        return 0
    from slmscale.units.extraction import folder_items
    from slmscale.units.tokenize import ordered_corpus_items
    from slmscale.units.tokenize_shards import merge_shards, parse_shard, tokenize_shard
    if args.shard is not None and args.merge:
        raise StageError("give --shard I/N or --merge, not both")
    items = ordered_corpus_items(source, args.tokenizer) if corpus else folder_items(source)
    where = str(source.resolve())
    if args.merge:
        print_meta(merge_shards(items, args.tokenizer, args.out, cfg.dedup, cfg.skip_bad, where))
        return 0
    index, count = parse_shard(args.shard)
    meta = tokenize_shard(items, args.tokenizer, args.out, index, count, cfg.dedup, cfg.skip_bad, cfg.workers, where,
                          cfg.hubert_path, device=cfg.device, batch_seconds=cfg.batch_seconds)
    print(f"shard {index}/{count}:" if "shard" in meta else "merged already:")
    print_meta(meta)
    return 0
