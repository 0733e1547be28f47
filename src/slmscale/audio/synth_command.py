"""`slmscale synth INPUT --out OUT`: speak a world or a text.jsonl offline."""

from __future__ import annotations

import argparse

from slmscale.cli import add_config_arguments, build_config, show_config
from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("INPUT is a world dir (text.jsonl + benchmarks/), a dir with a text.jsonl, or a "
                     "text.jsonl file. OUT gets corpus/ (manifest.jsonl + 16 kHz wavs), for a world "
                     "benchmarks/zr2021 and benchmarks/storycloze, and synth.json. Rerun to resume.")
    parser.add_argument("input", nargs="?", metavar="INPUT", help="world dir or text.jsonl")
    parser.add_argument("--out", metavar="OUT", help="output dir")
    parser.add_argument("--backend", choices=("espeak", "piper"), help="TTS backend (config key backend)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker processes, default one per core (config key workers)")
    add_config_arguments(parser)


def _print_summary(summary: dict) -> None:
    corpus = summary["corpus"]
    print(f"corpus: {corpus['utterances']} utterances, {corpus['total_hours']:.2f} h, "
          f"{len(corpus['speakers'])} speakers ({summary['backend']})")
    for split, by_kind in corpus["hours"].items():
        parts = ", ".join(f"{kind} {hours:.2f} h" for kind, hours in by_kind.items())
        print(f"  {split}: {parts}")
    for name, counts in summary["benchmarks"].items():
        print(f"benchmark {name}: {counts['items']} items, {counts['files']} files, {counts['hours']:.2f} h "
              f"in {counts['folder']}")
    print(f"synthesized {summary['synthesized_files']} files ({summary['reused_files']} reused), "
          f"{summary['synthesized_audio_s'] / 3600:.2f} h of audio in {summary['wall_s']:.1f} s "
          f"= {summary['audio_s_per_wall_s']:.0f} audio-s per wall-s with {summary['workers']} workers")


def run(args: argparse.Namespace) -> int:
    from slmscale.audio.config import SynthConfig
    from slmscale.audio.synth import read_summary, synth

    if args.show_config:
        return show_config(SynthConfig)
    if args.input is None or args.out is None:
        raise StageError("give INPUT and --out OUT (see slmscale synth --help)")
    config = build_config(SynthConfig, args, {"backend": "backend", "workers": "workers"})
    out = synth(args.input, args.out, config)
    _print_summary(read_summary(out))
    return 0
