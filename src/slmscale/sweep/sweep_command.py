"""`slmscale sweep CONFIG.yaml --out SWEEP [--launcher local|slurm] [--workers N] [--with RUN ...]` and
`slmscale sweep plan CONFIG.yaml [--workers N] [--no-measure | --gpu NAME] [--launcher slurm [--out SWEEP]]`."""

from __future__ import annotations

import argparse
import json

from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Runs every run of the sweep's grids (train to exactly D tokens, then zero-shot eval) that is not "
        "finished, and rebuilds SWEEP/results.csv. Rerun the same command to resume; `plan` prints the grid "
        "with FLOPs and the training time estimated from tokens/s measured here (with --gpu NAME: from that "
        "GPU's measured throughput, sweep/gpu_throughput.py), and with the slurm launcher "
        "the job array, resources and sbatch script the sweep would submit (a dry run: nothing is submitted, "
        "and no Slurm is needed). `--show-config` lists the keys of CONFIG.yaml.")
    # nargs="*", not "+": argparse would refuse `sweep --show-config` without a CONFIG; run checks it.
    parser.add_argument("args", nargs="*", metavar="[plan] CONFIG.yaml [key=value ...]",
                        help="sweep config (after `plan` to plan), then sweep config overrides")
    parser.add_argument("--out", metavar="SWEEP", help="sweep dir (plan: where the printed sbatch paths point)")
    parser.add_argument("--launcher", choices=("local", "slurm"), help="override the config's launcher")
    parser.add_argument("--show-config", action="store_true",
                        help="print every key of a sweep config file with its default and meaning, then exit")
    parser.add_argument("--workers", type=int, metavar="N", help="local runs at once (default: one per core)")
    parser.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    parser.add_argument("--no-measure", action="store_true", help="plan: skip the throughput measurement")
    parser.add_argument("--gpu", metavar="NAME", help="plan: estimate each run's training time on one GPU of this "
                        "kind (h100, h200) from its measured bf16 tokens/s per size, instead of measuring here")
    parser.add_argument("--with", dest="with_runs", action="append", default=[], metavar="RUN",
                        help="a completed run dir from outside the sweep (e.g. `slmscale import-checkpoint` of a "
                             "released model, imported with --units of a variant's units dir) whose row joins "
                             "results.csv, in the variant of its units; repeatable (config key with_runs)")


def run(args: argparse.Namespace) -> int:
    from slmscale.sweep.sweep import plan_table, run_sweep
    if args.show_config:
        from slmscale.cli import show_config
        from slmscale.sweep.config import Grid, SweepConfig, Variant, WithRun
        return show_config(SweepConfig, ("variants", Variant), ("grids", Grid), ("with_runs", WithRun))
    overrides = [a for a in args.args if "=" in a]
    positional = [a for a in args.args if "=" not in a]
    if positional[:1] == ["plan"]:
        if len(positional) != 2:
            raise StageError("usage: slmscale sweep plan CONFIG.yaml [key=value ...]")
        lines, _ = plan_table(positional[1], args.workers or 0, not args.no_measure, overrides, args.launcher,
                              args.out or "SWEEP", args.gpu)
        print("\n".join(lines))
        return 0
    if args.gpu is not None:
        raise StageError("--gpu estimates a plan: slmscale sweep plan CONFIG.yaml --gpu NAME")
    if len(positional) != 1 or not args.out:
        raise StageError("usage: slmscale sweep CONFIG.yaml --out SWEEP (or: slmscale sweep plan CONFIG.yaml)")
    summary = run_sweep(positional[0], args.out, args.launcher, args.workers, args.retry_failed, overrides,
                        tuple(args.with_runs))
    print(json.dumps({k: v for k, v in summary.items() if k != "this_call"}))
    return 0 if not summary["status"].get("failed") else 1
