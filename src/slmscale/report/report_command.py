"""`slmscale report SWEEP --out DIR [--bootstrap N] [--seed S] [--delta D]`: the study's report from a sweep."""

from __future__ import annotations

import argparse

from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Reads SWEEP/results.csv (completed runs; failed ones are listed with their errors), fits "
                     "the scaling laws per variant and writes DIR/report.md, DIR/report.json and the PNG figures.")
    parser.add_argument("sweep", metavar="SWEEP", help="sweep directory (or its results.csv)")
    parser.add_argument("--out", metavar="DIR", required=True, help="where the report goes")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples for every interval (0 = none; default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--delta", type=float, default=1e-3,
                        help="Huber delta of every law fit (default 1e-3, Hoffmann's; a study's fit.delta)")


def run(args: argparse.Namespace) -> int:
    from slmscale.report.report import REPORT_MD, make_report
    if args.bootstrap < 0:
        raise StageError(f"--bootstrap must be ≥ 0, got {args.bootstrap}")
    if not args.delta > 0:
        raise StageError(f"--delta must be > 0, got {args.delta}")
    report = make_report(args.sweep, args.out, bootstrap=args.bootstrap, seed=args.seed, delta=args.delta)
    checks = report["checks"]
    for name, check in (("R² on log loss", checks["r2_log"]), ("extrapolation", checks["extrapolation"])):
        value = check.get("value")
        print(f"{name}: {'pass' if check['pass'] else 'FAIL'}"
              + (f" ({value:.4g})" if value is not None else f" ({check.get('why', 'not measured')})"))
    print(f"wrote {args.out}/{REPORT_MD}, report.json and {len(report['figures'])} figures"
          + (f"; skipped {len(report['skipped'])} (see report.md)" if report["skipped"] else ""))
    return 0
