"""The report's Findings: each claim of Cuervo & Marxer 2024 that the study can test, with this
study's numbers and a verdict computed from them (HOLDS / DOES NOT HOLD / NOT MEASURABLE).

Every verdict is `holds` (True / False / None) decided here from the report's numbers and the
runs' per-pair outcomes (`slmscale.evaluate.outcomes`); the text around it is built from the
same numbers, so no line can say HOLDS where the numbers do not. A verdict that rests on
several conditions is their three-valued "and": one measured failure is DOES NOT HOLD even
where another part could not be measured; otherwise one unmeasured part makes the whole NOT
MEASURABLE, with the reason.

Differences between two runs are paired: measured on the pairs both were scored on, with a 95%
bootstrap interval over pairs (`paired_difference`); a difference "holds" when its interval's
lower end is above 0. The accuracies such differences rest on are checked for ±3-point
intervals (the last finding): from the pairs when kept, else bounded by 1.96·√(0.25/n) from
the item count in results.csv.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from slmscale.evaluate.outcomes import RESAMPLES, PairOutcomes, paired_difference
from slmscale.report.analysis import R2_LOG_TARGET
from slmscale.scaling.downstream_noise import gamma_contrast
from slmscale.report.runs import SINGLE_EPOCH

Outcomes = Callable[[str, str], PairOutcomes | None]
"""(run_id, metric) -> the run's per-pair outcomes on that results.csv metric, or None."""
MAX_HALF_WIDTH = 0.03
"""±3 points: the widest accuracy interval the paired comparisons may rest on."""
Z95 = 1.959963984540054
SYNTAX, STORIES = "sblimp", "tsc"
GROWTH_METRICS = (SYNTAX, STORIES)
GAMMA_METRICS = ("sblimp", "swuggy", "ssc", "tsc")
VERDICT = {True: "HOLDS", False: "DOES NOT HOLD", None: "NOT MEASURABLE"}


@dataclass
class _Context:
    """The inputs of every finding, and the accuracies they used (for the intervals finding)."""
    report: dict[str, Any]
    outcomes: Outcomes
    resamples: int
    seed: int
    used: list[tuple[str, str]] = field(default_factory=list)
    """(run, metric) of every accuracy a paired comparison rested on, in order."""


def compute_findings(report: dict[str, Any], outcomes: Outcomes, bootstrap: int = RESAMPLES,
                     seed: int = 0) -> list[dict[str, Any]]:
    """The six findings of the report (module docstring), from its numbers (report.json's layout)
    and `outcomes`; `bootstrap` resamples per paired interval (0: the default RESAMPLES)."""
    ctx = _Context(report, outcomes, bootstrap if bootstrap > 0 else RESAMPLES, seed)
    found = [loss_law(ctx), downstream_growth(ctx), speech_vs_text(ctx), stories_vs_sentences(ctx), tokenizers(ctx)]
    return found + [intervals(ctx)]


def render_findings(findings: list[dict[str, Any]]) -> str:
    """The Findings section of report.md: one line per finding, its verdict from `holds`."""
    lines = ["## Findings", ""]
    for item in findings:
        why = f" (not measurable: {item['why']})" if item["holds"] is None else ""
        lines.append(f"- **{VERDICT[item['holds']]}**: {item['text']}{why}")
    return "\n".join(lines + [""])


def _finding(ident: str, holds: bool | None, text: str, numbers: dict[str, Any],
             why: str | None = None) -> dict[str, Any]:
    """One finding; a NOT MEASURABLE one always says why."""
    out = {"id": ident, "holds": holds, "text": text, "numbers": numbers}
    if holds is None:
        out["why"] = why or "not measured"
    return out


def _all(parts: list[bool | None]) -> bool | None:
    """Three-valued and: a measured failure decides; else an unmeasured part leaves it open."""
    if any(p is False for p in parts):
        return False
    return None if any(p is None for p in parts) else True


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def points(diff: dict[str, Any] | None) -> str:
    """A paired difference in points with its interval: "+4.2 points [1.1, 7.0]"."""
    if not diff or diff.get("ci") is None:
        return "not measured"
    low, high = diff["ci"]
    return f"{100 * diff['difference']:+.1f} points [{100 * low:.1f}, {100 * high:.1f}]"


def gamma_text(gamma: Any, ci: Any = None) -> str:
    """γ with 4 significant digits, and its interval when measured."""
    if _float(gamma) is None:
        return "–"
    return f"{gamma:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def _not_identified(report: dict[str, Any], variant: str | None) -> dict[str, str]:
    fit = report.get("variants", {}).get(variant, {}).get("chinchilla", {}) if variant else {}
    return {name: v["why"] for name, v in (fit.get("identified") or {}).items() if not v["identified"]}


def _on(variant: str | None) -> str:
    return f" on {variant}" if variant else ""


def loss_law(ctx: _Context) -> dict[str, Any]:
    """The main speech variant's Chinchilla law explains its runs (R² on log loss) and predicts the
    held-out largest-compute runs within the checks' threshold (3%)."""
    checks, main = ctx.report["checks"], ctx.report.get("main_variant")
    r2, ext = checks["r2_log"], checks["extrapolation"]
    numbers = {"variant": main, "r2_log": r2.get("value"), "r2_log_threshold": R2_LOG_TARGET,
               "max_abs_relative_error": ext.get("value"), "mean_abs_relative_error": ext.get("mean"),
               "extrapolation_threshold": ext.get("threshold"), "n_heldout": ext.get("n_heldout"),
               "not_identified": _not_identified(ctx.report, main)}
    claim = f"Loss follows the Chinchilla law (paper: it fits speech LMs' loss, Table 5){_on(main)}"
    if r2.get("value") is None:
        return _finding("loss_law", None, f"{claim}: no law fitted", numbers, r2.get("why"))
    fits = r2["value"] >= R2_LOG_TARGET
    predicts = None if ext.get("value") is None else bool(ext["pass"])
    unknown = ", ".join(numbers["not_identified"]) or "none"
    text = (f"{claim}: R² on log loss {r2['value']:.4g} (needs ≥ {R2_LOG_TARGET:g}); held-out largest runs "
            + (f"off by at most {100 * ext['value']:.1f}% (needs ≤ {100 * ext['threshold']:g}%)"
               if predicts is not None else "not predicted") + f"; constants not identified: {unknown}")
    return _finding("loss_law", _all([fits, predicts]), text, numbers, ext.get("why"))


def _epochs(row: dict[str, Any]) -> float:
    """A row's passes over its data: its epochs cell, else D/U, else one (runs.py's reading)."""
    epochs = _float(row.get("epochs"))
    unique, tokens = _float(row.get("unique_tokens")), _float(row.get("tokens"))
    return epochs if epochs is not None else (tokens / unique if tokens and unique else 1.0)


def _flops(row: dict[str, Any]) -> float:
    flops = _float(row.get("flops"))
    return flops if flops is not None else 6.0 * (_float(row.get("params")) or 0) * (_float(row.get("tokens")) or 0)


def single_epoch_runs(report: dict[str, Any], variant: str) -> list[dict[str, Any]]:
    """The variant's completed single-epoch rows, by compute (run id breaks ties)."""
    rows = [r for r in report.get("runs", []) if (r.get("variant") or "default") == variant
            and _epochs(r) <= SINGLE_EPOCH]
    return sorted(rows, key=lambda r: (_flops(r), r.get("run_id", "")))


def _paired(ctx: _Context, a: str, b: str, metric: str) -> tuple[dict[str, Any] | None, str | None]:
    """Run a minus run b on `metric`, paired over their shared pairs, or (None, why not)."""
    if metric not in ctx.report.get("metrics", []):
        return None, f"{metric} is not in the sweep"
    ctx.used += [(a, metric), (b, metric)]
    found = {run: ctx.outcomes(run, metric) for run in (a, b)}
    missing = [run for run, pairs in found.items() if pairs is None]
    if missing:
        return None, (f"no pair outcomes for {metric} of {', '.join(missing)} (scored before eval.json kept "
                      "them, or not scored)")
    diff = paired_difference(found[a], found[b], resamples=ctx.resamples, seed=ctx.seed)
    return (diff, None) if diff["ci"] is not None else (None, f"{a} and {b} share no {metric} pairs")


def _above_zero(diff: dict[str, Any] | None) -> bool | None:
    return None if diff is None else diff["ci"][0] > 0


def _versus_ngram(ctx: _Context, run: str, metric: str) -> dict[str, Any]:
    """The run's model against its own n-gram baseline on the same pairs."""
    pairs = ctx.outcomes(run, metric)
    if pairs is None or pairs.baseline is None:
        return {"why": f"no {'baseline ' if pairs is not None else ''}pair outcomes for {metric} of {run}"}
    return paired_difference(pairs, pairs, pairs.model, pairs.baseline, ctx.resamples, ctx.seed)


def _gammas(report: dict[str, Any], variant: str | None) -> dict[str, Any]:
    """γ and its interval per downstream metric of the variant, or why it was not fitted."""
    fits = report.get("variants", {}).get(variant, {}).get("downstream", {}) if variant else {}
    return {m: ({"gamma": fits[m]["gamma"], "ci95": fits[m].get("gamma_ci95")} if "gamma" in fits[m]
                else {"why": fits[m].get("skipped", "not fitted")}) for m in GAMMA_METRICS if m in fits}


def _run_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": row["run_id"], "flops": _flops(row), "size": row.get("size"), "tokens": _float(row.get("tokens"))}


def downstream_growth(ctx: _Context) -> dict[str, Any]:
    """The main variant's top-compute run beats its lowest-compute run on sBLIMP and tSC, paired."""
    main = ctx.report.get("main_variant")
    runs = single_epoch_runs(ctx.report, main) if main else []
    numbers: dict[str, Any] = {"variant": main, "gamma": _gammas(ctx.report, main)}
    claim = f"Downstream accuracy grows with compute (paper: on every benchmark){_on(main)}"
    if len(runs) < 2 or _flops(runs[0]) == _flops(runs[-1]):
        why = f"{len(runs)} single-epoch run(s) of {main}" + (", all at one compute" if len(runs) > 1 else "")
        return _finding("downstream_growth", None, f"{claim}: no two budgets", numbers, why)
    top, bottom = runs[-1], runs[0]
    numbers.update(top=_run_summary(top), bottom=_run_summary(bottom))
    verdicts, whys, parts = [], [], []
    for metric in GROWTH_METRICS:
        diff, why = _paired(ctx, top["run_id"], bottom["run_id"], metric)
        numbers[metric] = diff or {"why": why}
        numbers[f"{metric}_vs_ngram"] = _versus_ngram(ctx, top["run_id"], metric)
        verdicts.append(_above_zero(diff))
        whys += [why] if why else []
        ngram = numbers[f"{metric}_vs_ngram"]
        parts.append(f"{metric} {points(diff)}" + (f" (top vs its n-gram {points(ngram)})" if "ci" in ngram else ""))
    gammas = ", ".join(f"{m} {gamma_text(g.get('gamma'), g.get('ci95'))}" for m, g in numbers["gamma"].items())
    text = (f"{claim}: top run {top['run_id']} ({_flops(top):.3g} FLOPs) minus lowest {bottom['run_id']} "
            f"({_flops(bottom):.3g}): " + "; ".join(parts) + f"; γ: {gammas or 'none fitted'}")
    return _finding("downstream_growth", _all(verdicts), text, numbers, "; ".join(whys))


def _syntax_row(report: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The comparison row of the syntax benchmark (sBLIMP, else any metric of Table 4's BLiMP column)."""
    comparison = report.get("comparison") or {}
    if SYNTAX in comparison:
        return SYNTAX, comparison[SYNTAX]
    return next(((m, row) for m, row in comparison.items() if row.get("table4_column") == "blimp"), (SYNTAX, None))


def _no_ratio(report: dict[str, Any], metric: str, row: dict[str, Any] | None) -> str:
    """Why no text/speech ratio of `metric` could be computed."""
    if row is None:
        fit = report.get("variants", {}).get(report.get("main_variant"), {}).get("downstream", {}).get(metric, {})
        return f"no speech γ for {metric}: {fit.get('skipped', 'not measured')}"
    text = report.get("text_arm")
    if text is None:
        return report.get("text_arm_why") or "no text arm"
    versus = row.get("text_arm")
    if versus and "error" in versus:
        return versus["error"]
    fit = report.get("variants", {}).get(text, {}).get("downstream", {}).get(metric, {})
    return f"the text arm {text} has no {metric} γ: {fit.get('skipped', 'not measured')}"


def speech_vs_text(ctx: _Context) -> dict[str, Any]:
    """Text scales faster than speech on syntax: γ_text/γ_speech above 1, its interval's low end too."""
    metric, row = _syntax_row(ctx.report)
    paper = (ctx.report.get("paper") or {}).get("ratios", {}).get("blimp")
    numbers: dict[str, Any] = {"metric": metric, "paper_ratio": paper, "text_arm": ctx.report.get("text_arm")}
    claim = f"Text scales faster than speech on syntax (paper: γ_text/γ_speech = {paper} on BLiMP/sBLIMP)"
    if row:
        pythia = row.get("pythia") or {}
        numbers.update(speech_gamma=row["speech_gamma"], speech_gamma_ci95=row.get("speech_gamma_ci95"),
                       pythia_ratio=pythia.get("ratio"), pythia_ratio_bounds=pythia.get("ratio_bounds"))
    versus = (row or {}).get("text_arm") or {}
    if "ratio" not in versus:
        return _finding("speech_vs_text", None, f"{claim}: no ratio", numbers, _no_ratio(ctx.report, metric, row))
    bounds, contrast = versus.get("ratio_bounds"), versus.get("contrast") or {}
    interval = contrast.get("ratio_ci95")
    numbers.update(text_gamma=versus["text_gamma"], text_gamma_ci95=versus.get("text_gamma_ci95"),
                   ratio=versus["ratio"], ratio_ci95=interval, ratio_bounds=bounds, contrast=contrast,
                   **_multipliers(versus["ratio"], interval or bounds, paper))
    text = (f"{claim}: {metric} γ text {gamma_text(versus['text_gamma'], versus.get('text_gamma_ci95'))} / speech "
            f"{gamma_text(row['speech_gamma'], row.get('speech_gamma_ci95'))} = {versus['ratio']:.3g}"
            + (f" [{interval[0]:.3g}, {interval[1]:.3g}] (bootstrap, {contrast['ratio_n']} paired replicates)"
               if interval else f" (bounds from the γ intervals' ends [{bounds[0]:.3g}, {bounds[1]:.3g}])"
               if bounds else "") + _multiplier_text(numbers))
    if interval:
        return _finding("speech_vs_text", interval[0] > 1, text, numbers)
    if not bounds:
        return _finding("speech_vs_text", None, text, numbers, contrast.get("error")
                        or "the ratio has no interval (a γ interval is missing)")
    return _finding("speech_vs_text", bounds[0] > 1, text, numbers)


def _multipliers(ratio: float, interval: list[float] | None, paper: Any) -> dict[str, Any]:
    """What one decade of compute buys text, speech buys with 10^ratio times the compute (Q ∝ C^γ,
    docs/PAPER.md §5.3): the multiplier of the study's ratio, its interval, and the paper's."""
    out: dict[str, Any] = {"compute_multiplier_per_decade": 10.0 ** ratio if ratio < 300 else math.inf}
    if interval:
        out["compute_multiplier_ci95"] = [10.0 ** min(x, 300) for x in interval]
    if _float(paper) is not None:
        out["paper_compute_multiplier_per_decade"] = 10.0 ** float(paper)
    return out


def _multiplier_text(numbers: dict[str, Any]) -> str:
    ci = numbers.get("compute_multiplier_ci95")
    paper = numbers.get("paper_compute_multiplier_per_decade")
    return (f"; what text gains from 10× compute, speech gains from {numbers['compute_multiplier_per_decade']:.3g}×"
            + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "") + (f" (paper: {paper:.3g}×)" if paper else ""))


def _corpus(report: dict[str, Any], row: dict[str, Any]) -> str:
    variant = report.get("variants", {}).get(row.get("variant") or "default", {})
    return row.get("corpus") or variant.get("corpus") or ""


def _match_key(row: dict[str, Any]) -> tuple:
    return (row.get("modality") or "audio", row.get("tokenizer") or "", _float(row.get("params")),
            _float(row.get("tokens")))


def matched_corpus_pair(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The stories and sentences runs of equal units, size and tokens with the most compute
    (speech before text), or None."""
    single = [r for r in report.get("runs", []) if _epochs(r) <= SINGLE_EPOCH]
    sentences = {_match_key(r): r for r in single if _corpus(report, r) == "sentences"}
    pairs = [(row, sentences[_match_key(row)]) for row in single
             if _corpus(report, row) == "stories" and _match_key(row) in sentences]
    ranked = sorted(pairs, key=lambda p: (p[0].get("modality") != "text", _flops(p[0]), p[0].get("run_id", "")))
    return ranked[-1] if ranked else None


def stories_vs_sentences(ctx: _Context) -> dict[str, Any]:
    """At equal tokens and size, training on stories beats unrelated sentences on tSC (paired)."""
    claim = "Stories beat unrelated sentences on tSC at equal tokens and size (paper: yes, Figure 3)"
    pair = matched_corpus_pair(ctx.report)
    if pair is None:
        return _finding("stories_vs_sentences", None, f"{claim}: no matched runs", {},
                        "no stories and sentences runs of equal units, size and tokens")
    stories, sentences = (row["run_id"] for row in pair)
    numbers: dict[str, Any] = {"stories": _run_summary(pair[0]), "sentences": _run_summary(pair[1])}
    diff, why = _paired(ctx, stories, sentences, STORIES)
    numbers[STORIES] = diff or {"why": why}
    syntax, syntax_why = _paired(ctx, stories, sentences, SYNTAX)
    numbers[SYNTAX] = syntax or {"why": syntax_why}
    text = (f"{claim}: {stories} minus {sentences}: tSC {points(diff)}; sBLIMP {points(syntax)} "
            "(reported, not judged)")
    return _finding("stories_vs_sentences", _above_zero(diff), text, numbers, why)


def _syntax_gamma(report: dict[str, Any], variant: str) -> dict[str, Any]:
    numbers = report.get("variants", {}).get(variant, {})
    fit = numbers.get("downstream", {}).get(SYNTAX, {})
    return {"variant": variant, "tokenizer": numbers.get("tokenizer"), "gamma": fit.get("gamma"),
            "ci95": fit.get("gamma_ci95"), "bootstrap": fit.get("bootstrap"),
            **({} if "gamma" in fit else {"why": fit.get("skipped", "not measured")})}


def _tokenizer_verdict(raw: dict[str, Any], other: dict[str, Any],
                       difference: list[float] | None) -> tuple[bool | None, str | None]:
    """The other units are better when the interval of γ_other − γ_raw lies above 0; without
    replicates to build it, the conservative rule: when their γ interval lies above the raw one."""
    missing = [g for g in (raw, other) if g["gamma"] is None]
    if missing:
        return None, "; ".join(f"no {SYNTAX} γ for {g['variant']}: {g['why']}" for g in missing)
    if difference:
        return not difference[0] > 0, None
    if not raw["ci95"] or not other["ci95"]:
        return None, f"a {SYNTAX} γ has no interval (bootstrap not run or too few replicates)"
    return not other["ci95"][0] > raw["ci95"][1], None


def tokenizers(ctx: _Context) -> dict[str, Any]:
    """Unigram-encoded units are no better downstream than the raw units: their sBLIMP γ is not
    above the raw units'."""
    claim = "Unigram units are no better downstream than raw units (paper: no better, Figure 5)"
    pair = ctx.report.get("tokenizer_pair") or []
    if len(pair) < 2:
        skipped = {s["what"]: s["why"] for s in ctx.report.get("skipped", [])}
        return _finding("tokenizers", None, f"{claim}: no pair", {}, skipped.get("Figure 5", "no tokenizer pair"))
    raw, other = (_syntax_gamma(ctx.report, name) for name in pair)
    contrast = gamma_contrast(raw.pop("bootstrap"), other.pop("bootstrap"))
    difference = contrast.get("difference_ci95")
    numbers = {"raw": raw, "other": other, "contrast": contrast,
               "rule": "interval of the γ difference" if difference else "γ intervals compared (no replicates)"}
    if raw["gamma"] is not None and other["gamma"] is not None:
        numbers["gamma_difference"] = other["gamma"] - raw["gamma"]
    holds, why = _tokenizer_verdict(raw, other, difference)
    text = (f"{claim}: {SYNTAX} γ {other['tokenizer']} ({other['variant']}) "
            f"{gamma_text(other['gamma'], other['ci95'])} against {raw['tokenizer']} ({raw['variant']}) "
            f"{gamma_text(raw['gamma'], raw['ci95'])}"
            + (f"; difference {numbers['gamma_difference']:+.4g} [{difference[0]:.4g}, {difference[1]:.4g}]"
               if difference and "gamma_difference" in numbers else ""))
    return _finding("tokenizers", holds, text, numbers, why)


def accuracy_interval(ctx: _Context, run: str, metric: str) -> dict[str, Any]:
    """A run's accuracy with its 95% half-width: bootstrap over its pairs when kept, else the
    binomial bound 1.96·√(0.25/n) from the `<metric>_n` item count of its results.csv row."""
    out: dict[str, Any] = {"run_id": run, "metric": metric}
    pairs = ctx.outcomes(run, metric)
    if pairs is not None and len(pairs.keys):
        acc = paired_difference(pairs, pairs, pairs.model, np.zeros(len(pairs.keys)), ctx.resamples, ctx.seed)
        low, high = acc["ci"]
        half = max(acc["difference"] - low, high - acc["difference"])
        return {**out, "accuracy": acc["difference"], "ci": acc["ci"], "half_width": half, "source": "pairs"}
    row = next((r for r in ctx.report.get("runs", []) if r.get("run_id") == run), {})
    n = _float(row.get(f"{metric}_n"))
    if n and n > 0:
        return {**out, "accuracy": _float(row.get(metric)), "n": n, "half_width": Z95 * math.sqrt(0.25 / n),
                "source": "binomial bound from the item count"}
    return {**out, "accuracy": _float(row.get(metric)), "half_width": None, "source": "none"}


def intervals(ctx: _Context) -> dict[str, Any]:
    """Every accuracy the paired findings rest on has a 95% interval within ±3 points."""
    claim = f"Accuracies behind the comparisons have 95% intervals within ±{100 * MAX_HALF_WIDTH:g} points"
    found = [accuracy_interval(ctx, run, metric) for run, metric in dict.fromkeys(ctx.used)]
    numbers: dict[str, Any] = {"threshold": MAX_HALF_WIDTH, "accuracies": found}
    if not found:
        return _finding("intervals", None, f"{claim}: none used", numbers, "no finding compared accuracies")
    widths = [a["half_width"] for a in found if a["half_width"] is not None]
    bounded = sum(a["source"] == "binomial bound from the item count" for a in found)
    verdicts = [None if a["half_width"] is None else a["half_width"] <= MAX_HALF_WIDTH for a in found]
    text = (f"{claim}: widest ±{100 * max(widths):.2f} points of {len(found)} accuracies" if widths else
            f"{claim}: no interval for any of {len(found)} accuracies") + (
        f" ({bounded} bounded by 1.96·√(0.25/n) from item counts: their pairs were not kept)" if bounded else "")
    unknown = [f"{a['run_id']} {a['metric']}" for a in found if a["half_width"] is None]
    return _finding("intervals", _all(verdicts), text, numbers, "no interval or item count for " + ", ".join(unknown))
