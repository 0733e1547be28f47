"""report.md from report.json's numbers: the fitted laws like Table 5 of Cuervo & Marxer 2024
(with the data-constrained decay constants R_N*, R_D* where data was repeated), the downstream
exponents and the speech-vs-text comparison like their Table 4, compute-optimal allocation
(Hoffmann et al. 2022), the extrapolation check, the checks of the main law, the n-gram
baseline, the runs (with the precision each trained in; mixed precisions are a warning at the top)
and the failed runs. Every number is printed by `fmt`, with its 95% interval
where one was measured and, beside a bootstrap interval, how many replicates it rests on.
"""

from __future__ import annotations

import math
from typing import Any

from slmscale.report.findings import render_findings
from slmscale.scaling.fit import replicate_counts

PAPER_TABLE5 = {
    "Text (Muennighoff et al.)": {"E": 1.87, "A": 521, "B": 1488, "alpha": 0.35, "beta": 0.35,
                                  "R_N_star": 5.31, "R_D_star": 15.4},
    "Speech": {"E": 1.73, "A": 13.9, "B": 39.8, "alpha": 0.25, "beta": 0.24, "R_N_star": 31.0, "R_D_star": 25.0},
    "Speech, unigram": {"E": 1.42, "A": 3.85, "B": 8.90, "alpha": 0.15, "beta": 0.16},
}
"""Published reference constants (Cuervo & Marxer 2024, Table 5), shown beside the fits; the unigram
row has no decay constants (no repeated-data runs)."""
LAW = ("E", "A", "B", "alpha", "beta")
REPEATS = ("R_N_star", "R_D_star")
SYMBOL = {"alpha": "α", "beta": "β", "R_N_star": "R_N*", "R_D_star": "R_D*"}


def fmt(value: Any) -> str:
    """Four significant digits; '–' for a missing number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def interval(ci: Any, counts: tuple[int, int] | list[int] | None = None) -> str:
    """" [lo, hi]", and " (183/200)" after it: the bootstrap replicates it rests on, of those drawn."""
    if not ci:
        return ""
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]" + (f" ({counts[0]}/{counts[1]})" if counts else "")


def _param_interval(ci: dict, name: str) -> str:
    """The interval of one fitted parameter from a law's bootstrap dict (its counts beside it)."""
    return interval(ci.get(name, {}).get("ci95"), replicate_counts(ci))


def _reasons(title: str, items: list[tuple[str, str]]) -> list[str]:
    """The reasons behind the table's '–' cells, as a list under it (cells stay short)."""
    return [f"{title}:", "", *(f"- {what}: {why}" for what, why in items), ""] if items else []


def pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _laws(report: dict) -> list[str]:
    header = ["variant", *(SYMBOL.get(k, k) for k in LAW), "R² (loss)", "R² (log loss)", "converged", "runs"]
    rows, notes = [], []
    for name, numbers in report["variants"].items():
        fit = numbers["chinchilla"]
        if "params" not in fit:
            continue
        rows.append([name, *(_constant(fit, k) for k in LAW),
                     fmt(fit["r2"]), fmt(fit["r2_log"]), fmt(fit["converged"]), str(fit["n_points"])])
        notes += _unidentified(name, fit, LAW)
        notes += [(name, f"no intervals: {fit['ci_error']}")] if "ci_error" in fit else []
        notes += [(name, warning) for warning in fit.get("warnings", [])]
    rows += [[f"paper: {name}", *(fmt(values[k]) for k in LAW), "–", "–", "–", "–"]
             for name, values in PAPER_TABLE5.items()]
    return ["## Fitted laws (like the paper's Table 5)", "", "L̂(N, D) = E + A/N^α + B/D^β on single-epoch runs "
            f"(Huber on log loss, δ = {fmt(_settings(report)['delta'])}, L-BFGS from Hoffmann's grid). "
            + _bootstrap_note(report), "", *_table(header, rows), "", *_reasons("Notes", notes)]


def _constant(fit: dict, name: str) -> str:
    """A fitted constant with its interval, or "not identified" (the reason goes under the table)."""
    if not fit.get("identified", {}).get(name, {"identified": True})["identified"]:
        return "not identified"
    values = fit["compute_optimal"] if name in ("a", "b", "G") else fit["params"]
    return fmt(values[name]) + _param_interval(fit.get("ci", {}), name)


def _unidentified(variant: str, fit: dict, names: tuple[str, ...]) -> list[tuple[str, str]]:
    verdicts = fit.get("identified", {})
    return [(f"{variant}, {SYMBOL.get(n, n)} not identified", verdicts[n]["why"])
            for n in names if n in verdicts and not verdicts[n]["identified"]]


def _settings(report: dict) -> dict:
    return report.get("fit_settings") or {"delta": 1e-3}


def _bootstrap_note(report: dict) -> str:
    if not report["bootstrap"]:
        return "No bootstrap (intervals not measured)."
    return (f"95% intervals: bootstrap over runs, {report['bootstrap']} resamples drawn; in parentheses, how many "
            "replicates each interval rests on (converged fits) of those drawn.")


def _allocation(report: dict) -> list[str]:
    lines = ["## Compute-optimal allocation", "",
             "N_opt = G·(C/6)^a, D_opt = G⁻¹·(C/6)^b (Hoffmann et al. 2022).", ""]
    for name, numbers in report["variants"].items():
        fit = numbers["chinchilla"]
        if "params" not in fit:
            continue
        lines.append(f"**{name}**: " + ", ".join(f"{k} = {_constant(fit, k)}" for k in ("a", "b", "G")))
        lines += [f"- {what}: {why}" for what, why in _unidentified(name, fit, ("a", "b", "G"))]
        front = fit["frontier"]
        rows = [[fmt(c), fmt(n), fmt(d), fmt(t), fmt(loss)] for c, n, d, t, loss in
                zip(front["flops"], front["N_opt"], front["D_opt"], front["tokens_per_param"], front["loss"])]
        lines += ["", *_table(["C (FLOPs)", "N_opt", "D_opt", "tokens/param", "predicted loss"], rows), ""]
    return lines if len(lines) > 4 else []


def _repeated(report: dict) -> list[str]:
    """The data-constrained law's decay constants, beside the paper's (text: Muennighoff et al.)."""
    rows, skipped = [], []
    for name, numbers in report["variants"].items():
        fit = numbers.get("data_constrained", {})
        if "params" not in fit:
            skipped += [(name, fit["skipped"])] if "skipped" in fit else []
            continue
        ci, unknown = fit.get("ci", {}), fit.get("not_identified", {})
        cells = ["–" if k in unknown else fmt(fit["params"][k]) + _param_interval(ci, k) for k in REPEATS]
        rows.append([name, *cells,
                     fmt(fit["r2"]), fmt(fit["converged"]), f"{fit['n_points']} ({fit['n_repeated']} repeated, up "
                     f"to {fmt(fit['max_epochs'])} epochs)"])
        skipped += [(f"{name}, {SYMBOL[k]}", why) for k, why in unknown.items()]
        skipped += [(name, f"no intervals: {fit['ci_error']}")] if "ci_error" in fit else []
    if not rows and not skipped:
        return []
    rows += [[f"paper: {name}", *(fmt(values.get(k)) for k in REPEATS), "–", "–", "–"]
             for name, values in PAPER_TABLE5.items()]
    return ["## Repeated data (like Table 5's R_N*, R_D*)", "",
            "Data-constrained law (Muennighoff et al. 2023): the base law above fitted on the single-epoch runs, "
            "then R_N* and R_D* (how fast excess parameters and repeated tokens lose their worth) on all runs. "
            + _bootstrap_note(report) + (" The resamples hold the base law's constants at their fit: the intervals "
                                         "leave out the base law's own uncertainty." if report["bootstrap"] else ""),
            "",
            *_table(["variant", "R_N*", "R_D*", "R² (loss)", "converged", "runs"], rows),
            "", *_reasons("Not identified or not measured", skipped)]


def _extrapolation(report: dict) -> list[str]:
    rows = []
    for name, numbers in report["variants"].items():
        ext = numbers["chinchilla"].get("extrapolation")
        if ext is None:
            continue
        if "skipped" in ext:
            rows.append([name, "–", "–", "–", "–", "–", ext["skipped"]])
            continue
        rows.append([name, fmt(ext["threshold"]), str(ext["n_fit"]), str(ext["n_heldout"]),
                     pct(ext["mean_abs_relative_error"]), pct(ext["max_abs_relative_error"]),
                     ", ".join(f"{r}: {100 * e:+.2f}%" for r, e in zip(ext["heldout_run_ids"], ext["relative_error"]))])
    if not rows:
        return []
    return ["## Extrapolation check", "", "Fit on the runs below a compute threshold, predict the largest-compute "
            "runs held out.", "", *_table(["variant", "threshold (FLOPs)", "fit on", "held out", "mean |rel. error|",
                                           "max |rel. error|", "per held-out run"], rows), ""]


def _checks(report: dict) -> list[str]:
    checks = report["checks"]
    verdict = {True: "PASS", False: "FAIL"}
    r2, ext = checks["r2_log"], checks["extrapolation"]
    variant = checks.get("variant", report["main_variant"])
    return ["## Checks of the main law", "",
            f"- {verdict[r2['pass']]}: R² on log loss ≥ {fmt(r2.get('threshold', 0.95))} for {variant}: "
            + (fmt(r2["value"]) if "value" in r2 else r2.get("why", "not measured")),
            f"- {verdict[ext['pass']]}: largest-compute runs predicted within {pct(ext.get('threshold', 0.03))} "
            f"for {variant}: max |relative error| {pct(ext.get('value'))}, mean {pct(ext.get('mean'))}"
            + (f" ({ext['why']})" if "why" in ext else ""), ""]


def _downstream(report: dict) -> list[str]:
    rows, reasons, methods = [], [], []
    for name, numbers in report["variants"].items():
        env = numbers["loss_envelope"]
        if "gamma" in env:
            rows.append([name, "loss (min per FLOP)",
                         fmt(env["gamma"]) + interval(env["gamma_ci95"], replicate_counts(env.get("bootstrap"))),
                         fmt(env["r2_log"]), f"{env['n_envelope']}", "–", "–"])
            reasons += [(f"{name}, loss", f"no interval: {env['ci_error']}")] if "ci_error" in env else []
        for metric, fit in numbers["downstream"].items():
            if "gamma" not in fit:
                rows.append([name, metric, "–", "–", "–", "–", "–"])
                reasons.append((f"{name}, {metric}", fit.get("skipped", "not fitted")))
                continue
            line = fit.get("loss_fit", {})
            rows.append([name, metric, fmt(fit["gamma"]) + interval(fit["gamma_ci95"],
                                                                    replicate_counts(fit.get("bootstrap"))),
                         fmt(fit["r2_log"]), f"{fit['n_fit']} of {fit['n_envelope']}", fmt(fit["saturation_flops"]),
                         f"slope {fmt(line['slope'])}, r {fmt(line['r'])}{interval(line['r_ci95'])}, n {line['n']}"
                         if "slope" in line else "–"])
            reasons += [(f"{name}, {metric} against test loss", line["error"])] if "error" in line else []
            methods.append(f"- {name}, {metric}: {_how_measured(fit)}")
    return ["## Scaling exponents with compute", "", "Q ∝ C^γ fitted to the frontier of best score per FLOP "
            "before saturation (downstream); loss: L ∝ C^γ on the min-loss envelope, its interval a bootstrap over "
            "runs. Beside each interval: the resamples it rests on, of those drawn. Last column: the metric "
            "against test loss, linear fit before saturation, Pearson r with its 95% interval (Fisher z).", "",
            *_table(["variant", "quantity", "γ [95% CI]", "R² (log)", "envelope points fitted", "saturation at C",
                     "against test loss"], rows), "", *_reasons("Not fitted ('–' above)", reasons),
            *(["How each downstream γ was measured:", "", *methods, ""] if methods else [])]


def _how_measured(fit: dict) -> str:
    """Method, interval and where each score's noise came from, as the fit recorded them."""
    noise = fit.get("noise") or {}
    counts = noise.get("source") or noise.get("note") or "no noise model"
    kind = (fit.get("bootstrap") or {}).get("kind", "no interval")
    return f"method {fit.get('method')}; interval: {kind}; item counts: {counts}"


def _ratio_cell(other: dict) -> str:
    """The ratio with its bootstrap interval (paired γ replicates), else the bounds from the ends
    of the two γ intervals."""
    ratio_ci = (other.get("contrast") or {}).get("ratio_ci95")
    if ratio_ci:
        return f"{fmt(other['ratio'])} [{fmt(ratio_ci[0])}, {fmt(ratio_ci[1])}]"
    bounds = other.get("ratio_bounds")
    return fmt(other["ratio"]) + (f" (bounds {fmt(bounds[0])}–{fmt(bounds[1])})" if bounds else "")


def _comparison(report: dict) -> list[str]:
    rows, notes = [], []
    for metric, row in report["comparison"].items():
        published = report["paper"]["table4"]
        column = row["table4_column"]
        speech = fmt(row["speech_gamma"]) + interval(row["speech_gamma_ci95"], row.get("speech_replicates"))
        if column and not row.get("text_arm") and not row.get("pythia"):
            rows.append([metric, "none measured", speech,
                         "–", "–", "–", f"{fmt(published['speech'][column])} / {fmt(published['text'][column])}",
                         fmt(report["paper"]["ratios"][column])])
        for label, key in ((f"text arm ({report['text_arm']})", "text_arm"), ("Pythia BLiMP", "pythia")):
            other = row.get(key)
            if not other:
                continue
            if "error" in other:
                rows.append([metric, label, fmt(row["speech_gamma"]), "–", "–", "–", "–", "–"])
                notes.append(f"- {metric} against {label}: not compared: {other['error']}")
                continue
            paper = other.get("paper", {})
            rows.append([metric, label, speech,
                         fmt(other["text_gamma"]) + interval(other["text_gamma_ci95"], other.get("text_replicates")),
                         _ratio_cell(other),
                         fmt(other["compute_multiplier_per_decade"]) + "×",
                         f"{fmt(paper['speech_gamma'])} / {fmt(paper['text_gamma'])}" if paper else "–",
                         f"{fmt(paper['published_ratio'])} ({fmt(paper['compute_multiplier_per_decade'])}×)"
                         if paper else "–"])
    if not rows:
        return ["## Speech against text (like Table 4)", "", "Not measured: no text arm in the sweep and no "
                "sBLIMP exponent to set against Pythia.", ""]
    return ["## Speech against text (like the paper's Table 4)", "", f"Speech: {report['main_variant']}. Ratio = "
            "γ_text/γ_speech: the gain text gets from 10× compute costs speech 10^ratio×. Its 95% interval: "
            "percentiles over pairs of the two laws' bootstrap replicates (where a law kept none, bounds from "
            "the ends of the two intervals, not a confidence interval).", "",
            *_table(["metric", "text reference", "γ speech", "γ text", "ratio", "compute per text decade",
                     "paper γ speech / text", "paper ratio (per decade)"], rows), "", *notes, *([""] if notes else [])]


def _ngram(report: dict) -> list[str]:
    lines = []
    for name in [report["main_variant"], report["text_arm"]]:
        if not name:
            continue
        best = report["variants"][name]["ngram"]
        rows = [[m, fmt(s["lm"]), fmt(s["baseline"]), fmt(s["difference"])] for m, s in best["metrics"].items()]
        if rows:
            lines += [f"Best run of {name}: {best['run_id']} (loss {fmt(best['loss'])}, N {fmt(best['params'])}, "
                      f"D {fmt(best['tokens'])})", "", *_table(["metric", "LM", "n-gram", "LM − n-gram"], rows), ""]
    return ["## Accuracy against the n-gram baseline", "", *lines] if lines else []


def _precision(report: dict) -> list[str]:
    """One line naming the precision the runs trained in, or a warning per problem with it."""
    info = report.get("precision")
    if not info:
        return []
    if info["warnings"]:
        return [f"**Warning: {warning}.**" for warning in info["warnings"]] + [""]
    chosen = info.get("sweep") or {}
    why = f" (chosen once for the sweep: {chosen['reason']})" if chosen.get("reason") else ""
    if info["single"]:
        return [f"Precision: every run trained in {info['single']}{why}.", ""]
    return ["Precision: not recorded in results.csv (a table from before the column); rebuild it with "
            "`slmscale sweep` to check that the runs share one.", ""]


def _runs(report: dict) -> list[str]:
    metrics = report["metrics"]
    header = ["run", "variant", "size", "precision", "N", "D", "epochs", "C", "loss", *metrics]
    rows = [[r["run_id"], r["variant"], r.get("size", ""), r.get("precision") or "–", *(fmt(_float(r.get(k))) for k in
             ("params", "tokens", "epochs", "flops", "loss")), *(fmt(_float(r.get(m))) for m in metrics)]
            for r in report["runs"]]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report["status_counts"].items()))
    lines = ["## Runs", "", f"{counts}.", "", *_table(header, rows), "", "## Failed runs", ""]
    lines += [f"- {f['run_id']} ({f['variant']}, {f['size']}, D {f['tokens']}): {f['error']}" for f in report["failed"]]
    return lines + (["None."] if not report["failed"] else []) + [""]


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def render(report: dict) -> str:
    lines = ["# Scaling report", ""]
    lines += [render_findings(report["findings"])] if "findings" in report else []
    lines += [f"Sweep: `{report['sweep']}`. Main speech variant: "
             f"**{report['main_variant']}** ({report['main_variant_why']}); text arm: **{report['text_arm']}** "
             f"({report['text_arm_why']}).", ""]
    lines += _precision(report)
    lines += _checks(report)
    lines += ["## Figures", ""]
    for figure in report["figures"]:
        lines += [f"**Figure {figure['figure']}.** {figure['caption']}", "",
                  f"![{figure['caption']}]({figure['file']})", ""]
    if report["skipped"]:
        lines += ["## Skipped", "", *(f"- {s['what']}: {s['why']}" for s in report["skipped"]), ""]
    for part in (_laws, _repeated, _allocation, _extrapolation, _downstream, _comparison, _ngram, _runs):
        lines += part(report)
    return "\n".join(lines)
