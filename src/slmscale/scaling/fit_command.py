"""`slmscale fit RESULTS.csv --law LAW [--out DIR] [--bootstrap N] [--fix name=value,...] [key=value ...]`."""

from __future__ import annotations

import argparse

from slmscale.cli import add_config_arguments, build_config, show_config
from slmscale.files import StageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "RESULTS.csv has columns params, tokens (or flops) and loss, optionally unique_tokens, flops, run_id "
        "and metric columns (a sweep's results.csv; the published tables in their own column names work too). "
        "Writes DIR/fit.json and PNG figures; prints a summary.")
    parser.add_argument("table", nargs="?", metavar="RESULTS.csv", help="results table")
    parser.add_argument("--law", choices=("chinchilla", "data-constrained", "kaplan", "isoflop", "downstream"),
                        help="law to fit (config key law; default chinchilla)")
    parser.add_argument("--out", metavar="DIR", help="write fit.json and figures here")
    parser.add_argument("--bootstrap", type=int, metavar="N", help="bootstrap resamples (config key bootstrap)")
    parser.add_argument("--fix", metavar="NAME=VALUE,...", help="hold parameters constant (config key fix)")
    parser.add_argument("--metric", metavar="COLUMN", help="downstream: metric column (config key metric)")
    parser.add_argument("--text-reference", metavar="NAME", help="downstream: 'pythia' (config key text_reference)")
    add_config_arguments(parser)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def replicates(boot: dict | None) -> str:
    """"183/200": the bootstrap replicates an interval rests on, of those drawn ("" without a bootstrap)."""
    from slmscale.scaling.fit import replicate_counts
    counts = replicate_counts(boot)
    return f"{counts[0]}/{counts[1]}" if counts else ""


def summary(result: dict) -> list[str]:
    law = result["law"]
    lines = [f"{law} fit of {result['source']} ({result['n_rows']} rows)"]
    lines += [f"  warning: {w}" for w in result.get("warnings", [])]
    if law == "downstream":
        ci = result.get("gamma_ci95") or [float("nan")] * 2
        lines.append(f"  {result['metric']}: gamma {result['gamma']:.4f} (95% CI {ci[0]:.4f}-{ci[1]:.4f}, "
                     f"{replicates(result.get('bootstrap')) or 'no'} replicates) on "
                     f"{result['n_fit']} envelope runs of {result['n_runs']}, method {result['method']}")
        if "slope" in result.get("loss_fit", {}):
            fit = result["loss_fit"]
            lines.append(f"  against test loss: slope {fit['slope']:.4g}, r {fit['r']:.3f} "
                         f"(95% CI {fit['r_ci95'][0]:.3f}-{fit['r_ci95'][1]:.3f}), n {fit['n']}")
        for column, comparison in ([(result["comparison"]["column"], result["comparison"])]
                                   if "comparison" in result else []):
            if "not_identified" in comparison:
                lines.append(f"  text ({result['text_reference']['source']}) gamma {comparison['text_gamma']:.4f}: "
                             f"{comparison['not_identified']}")
                continue
            lines.append(f"  text ({result['text_reference']['source']}) gamma {comparison['text_gamma']:.4f}: "
                         f"ratio {comparison['ratio']:.2f}, speech needs "
                         f"{comparison['compute_multiplier_per_decade']:.3g}x compute for the gain text gets "
                         f"from 10x ({column})")
        return lines
    if law == "isoflop":
        used = [b for b in result["budgets"] if "N_opt" in b]
        lines.append(f"  {len(used)} budgets used of {len(result['budgets'])}: N_opt ∝ C^{result['a']:.3f}, "
                     f"D_opt ∝ C^{result['b']:.3f}")
        return lines
    ci = result.get("ci", {})
    parts = []
    for name, value in result["params"].items():
        interval = f" [{_fmt(ci[name]['ci95'][0])}, {_fmt(ci[name]['ci95'][1])}]" if "ci95" in ci.get(name, {}) else ""
        parts.append(f"{name} {_fmt(value)}{interval}")
    lines.append("  " + ", ".join(parts))
    if ci:
        lines.append(f"  95% intervals from {replicates(ci)} bootstrap replicates (converged/drawn)")
    elif "ci_error" in result:
        lines.append(f"  no intervals: {result['ci_error']}")
    lines.append(f"  converged {result['converged']}, objective {result['objective']:.6g}, R² {result['r2']:.4f}, "
                 f"{result['n_points']} points")
    if "compute_optimal" in result:
        opt = result["compute_optimal"]
        lines.append(f"  compute-optimal: N_opt = {opt['G']:.4g}·(C/6)^{opt['a']:.4f}, "
                     f"D_opt ∝ (C/6)^{opt['b']:.4f}")
    if "frontier" in result:
        front = result["frontier"]
        i = len(front["flops"]) // 2
        lines.append(f"  at C = {front['flops'][i]:.3g}: N_opt {front['N_opt'][i]:.4g}, D_opt {front['D_opt'][i]:.4g}, "
                     f"{front['tokens_per_param'][i]:.1f} tokens/param, loss {front['loss'][i]:.4f}")
    if "extrapolation" in result:
        ext = result["extrapolation"]
        lines.append(f"  extrapolation: fit on {ext['n_fit']} runs below {ext['threshold']:.3g} FLOPs, "
                     f"{ext['n_heldout']} held out: mean |relative error| {ext['mean_abs_relative_error']:.2%}, "
                     f"max {ext['max_abs_relative_error']:.2%}")
    return lines


def run(args: argparse.Namespace) -> int:
    from slmscale.scaling.config import FitConfig
    from slmscale.scaling.fit import fit_results
    if args.show_config:
        return show_config(FitConfig)
    if not args.table:
        raise StageError("give a RESULTS.csv (see slmscale fit --help)")
    cfg = build_config(FitConfig, args, {"law": "law", "bootstrap": "bootstrap", "fix": "fix", "metric": "metric",
                                         "text_reference": "text_reference"})
    result = fit_results(args.table, cfg, args.out)
    print("\n".join(summary(result)))
    if args.out:
        print(f"wrote {args.out}/fit.json and {', '.join(result['figures']) or 'no figures'}")
    return 0
