"""`slmscale corpus import-librispeech | import-folder | import-tinystories`: real data in the corpus format."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmscale.audio.config import FolderImportConfig, LibriSpeechImportConfig, TinyStoriesImportConfig
from slmscale.audio.folder import import_folder
from slmscale.audio.import_common import absolute
from slmscale.audio.librispeech import import_librispeech
from slmscale.audio.manifest import SPLITS
from slmscale.audio.tinystories import import_tinystories
from slmscale.cli import IntermixedParser, add_config_arguments, build_config, show_config
from slmscale.files import StageError


@dataclass(frozen=True)
class _Importer:
    config: type
    run: Callable[[Path, Path, Any], dict[str, Any]]
    flags: dict[str, str]
    """argparse dest → config key."""


IMPORTERS = {
    "import-librispeech": _Importer(LibriSpeechImportConfig, import_librispeech,
                                    {"split": "split", "copy": "copy", "skip_bad": "skip_bad",
                                     "verify_in_place": "verify_in_place", "workers": "workers"}),
    "import-folder": _Importer(FolderImportConfig, import_folder,
                               {"split": "split", "transcripts": "transcripts", "skip_bad": "skip_bad",
                                "workers": "workers"}),
    "import-tinystories": _Importer(TinyStoriesImportConfig, import_tinystories,
                                    {"limit": "limit", "split": "split", "split_fractions": "split_fractions",
                                     "seed": "seed"}),
}


def _common(parser: argparse.ArgumentParser, source: str, source_help: str) -> None:
    parser.add_argument("source", nargs="?", metavar=source, help=source_help)
    parser.add_argument("--out", metavar="DIR", help="output directory (created; a rerun skips or resumes)")


def _audio_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-bad", action="store_true", default=None,
                        help="leave out unusable files (listed in import.json) instead of failing")
    parser.add_argument("--workers", type=int, metavar="N", help="processes for conversion (default: all cores)")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="importer", metavar="IMPORTER", required=True, parser_class=IntermixedParser)

    p = sub.add_parser("import-librispeech", help="a LibriSpeech subset folder, or the LibriSpeech folder of several",
                       description="Import LibriSpeech: ROOT/<speaker>/<chapter>/*.flac + *.trans.txt. 16 kHz mono "
                                   "files are referenced in place unless --copy; train-*/dev-*/test-* subsets go to "
                                   "train/valid/test. Writes DIR/manifest.jsonl, config.yaml, import.json.")
    _common(p, "ROOT", "LibriSpeech/ or one subset folder such as LibriSpeech/train-clean-100")
    p.add_argument("--split", choices=SPLITS, help="force the split of a single subset")
    p.add_argument("--copy", action="store_true", default=None,
                   help="write 16 kHz mono wavs inside DIR even for files that need no conversion")
    p.add_argument("--verify-in-place", action="store_true", default=None,
                   help="decode files referenced in place too (slow on a full LibriSpeech)")
    _audio_options(p)
    add_config_arguments(p)

    p = sub.add_parser("import-folder", help="every audio file under a folder, converted to 16 kHz mono wav",
                       description="Import any folder of audio (recursive): ids from relative paths, speaker from "
                                   "the parent folder, text from a sibling .txt/.lab or --transcripts.")
    _common(p, "SRC", "folder of audio files")
    p.add_argument("--split", choices=SPLITS, help="split of every utterance (default train)")
    p.add_argument("--transcripts", metavar="FILE", help="lines 'RELATIVE/PATH[.suffix] TRANSCRIPT'")
    _audio_options(p)
    add_config_arguments(p)

    p = sub.add_parser("import-tinystories", help="the TinyStories text release as text.jsonl for `slmscale synth`",
                       description="Stream a TinyStories .txt file (stories separated by <|endoftext|>) into "
                                   "DIR/text.jsonl (id, text, kind=story, split).")
    _common(p, "FILE", "TinyStories-train.txt, TinyStories-valid.txt or a V2 GPT-4 file")
    p.add_argument("--limit", type=int, metavar="N", help="keep the first N non-empty stories")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--split-fractions", metavar="TRAIN,VALID,TEST",
                       help="default 0.99,0.01,0 (synthetic speech stays out of the test loss; "
                            "0.98,0.01,0.01 keeps a test split)")
    group.add_argument("--split", choices=SPLITS, help="put every story in this split")
    p.add_argument("--seed", type=int, help="seed of the split draw (default 0)")
    add_config_arguments(p)


def run(args: argparse.Namespace) -> int:
    importer = IMPORTERS[args.importer]
    if args.show_config:
        return show_config(importer.config)
    if args.source is None or args.out is None:
        raise StageError(f"{args.importer} needs a source and --out DIR (see --help)")
    if getattr(args, "transcripts", None) is not None:
        args.transcripts = str(absolute(args.transcripts))  # recorded as given, so make it cwd-independent
    cfg = build_config(importer.config, args, importer.flags)
    summary = importer.run(Path(args.source), Path(args.out), cfg)
    if "stories" in summary:
        print(f"{absolute(args.out)}: {summary['stories']} stories, "
              f"{summary['empty_stories_skipped']} empty ones skipped")
    else:
        print(f"{absolute(args.out)}: {summary['utterances']} utterances, {summary['hours']:.3f} h, "
              f"{len(summary['skipped'])} skipped")
    return 0
