"""`slmscale report SWEEP --out DIR [--bootstrap N] [--seed S] [--delta D] [key=value ...]`: the study's report
from a sweep."""

from __future__ import annotations

import argparse

from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Reads SWEEP/results.csv (completed runs; failed ones are listed with their errors), fits "
                     "the scaling laws per variant and writes DIR/report.md, DIR/report.json and the PNG figures.")
    from slmscale.cli import add_config_arguments
    # Not required by argparse, which would refuse `--show-config` without them; run checks them.
    parser.add_argument("sweep", nargs="?", metavar="SWEEP", help="sweep directory (or its results.csv)")
    parser.add_argument("--out", metavar="DIR", help="where the report goes")
    parser.add_argument("--bootstrap", type=int, metavar="N",
                        help="bootstrap resamples for every interval (config key bootstrap; 0 = none; default 1000)")
    parser.add_argument("--seed", type=int, help="bootstrap seed (config key seed; default 0)")
    parser.add_argument("--delta", type=float,
                        help="Huber delta of every law fit (config key delta; default 1e-3, Hoffmann's; a "
                             "study's fit.delta)")
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from slmscale.cli import build_config, show_config
    from slmscale.report.config import ReportConfig
    from slmscale.report.report import REPORT_MD, make_report
    if args.show_config:
        return show_config(ReportConfig)
    if args.sweep is None or args.out is None:
        raise StageError("give SWEEP and --out DIR (see slmscale report --help)")
    cfg = build_config(ReportConfig, args, {"bootstrap": "bootstrap", "seed": "seed", "delta": "delta"})
    report = make_report(args.sweep, args.out, bootstrap=cfg.bootstrap, seed=cfg.seed, delta=cfg.delta)
    checks = report["checks"]
    for name, check in (("R² on log loss", checks["r2_log"]), ("extrapolation", checks["extrapolation"])):
        value = check.get("value")
        print(f"{name}: {'pass' if check['pass'] else 'FAIL'}"
              + (f" ({value:.4g})" if value is not None else f" ({check.get('why', 'not measured')})"))
    print(f"wrote {args.out}/{REPORT_MD}, report.json and {len(report['figures'])} figures"
          + (f"; skipped {len(report['skipped'])} (see report.md)" if report["skipped"] else ""))
    return 0
