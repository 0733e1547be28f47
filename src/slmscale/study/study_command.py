"""`slmscale study --out DIR [--config configs/study/tiny.yaml] [--plan [--gpu NAME]] [key=value ...]`: the main job."""

from __future__ import annotations

import argparse

from slmscale.cli import add_config_arguments, build_config, show_config
from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Runs the whole study in DIR: world, synth, tokenizer, units (raw, stories, sentences), unigram, text "
        "arm, the sweep (train + zero-shot eval of every run), then the report (DIR/report/report.md and "
        "figures). Without --config: the tiny study (configs/study/tiny.yaml). Rerun to resume; a finished "
        "study reruns in seconds. --plan prints the sweep it would run (FLOPs, memory, and with --gpu NAME the "
        "training time on that GPU) and runs nothing.")
    parser.add_argument("--out", metavar="DIR", help="study dir")
    parser.add_argument("--plan", action="store_true", help="print the study's sweep plan, run nothing")
    parser.add_argument("--gpu", metavar="NAME", help="with --plan: estimate training on one GPU of this kind "
                        "(h100, h200) from its measured throughput")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.study.config import StudyConfig
    from slmscale.study.study import run_study
    if args.show_config:
        return show_config(StudyConfig)
    if not args.out:
        raise StageError("give --out DIR (see slmscale study --help)")
    if args.gpu and not args.plan:
        raise StageError("--gpu goes with --plan (slmscale study --out DIR --plan --gpu NAME)")
    if args.plan:
        from slmscale.study.study import plan_study
        print("\n".join(plan_study(args.out, build_config(StudyConfig, args), args.gpu)))
        return 0
    record = run_study(args.out, build_config(StudyConfig, args))
    status = record["sweep"]["status"]
    print(f"{args.out}: {sum(status.values())} runs ({', '.join(f'{n} {s}' for s, n in status.items())}) in "
          f"{record['wall_seconds'] / 60:.1f} min; report: {record['report']}")
    for name, stage in record["stages"].items():
        print(f"  {name:<16} {stage['seconds']:8.1f} s{'  (skipped)' if stage['skipped'] else ''}")
    return 0
