"""`make_report(sweep_dir, out_dir)`: the study's report from a sweep's results.csv, after
Cuervo & Marxer 2024 ("Scaling Properties of Speech Language Models"): Figures 1–5 and the
iso-loss contours as PNG, Tables 4 and 5 and the rest in report.md, every number in report.json.

Generic over sweeps: completed runs are grouped by variant; a variant with enough sizes and
budgets gets a Chinchilla fit, every variant its downstream exponents; the comparisons (text arm,
corpora, tokenizers) are drawn when the sweep has the variants they need and listed as skipped,
with the reason, when it does not.

Every run should have trained in the sweep's one precision (SWEEP/precision.json). The report
states the precisions of the runs (report.json "precision"), warns when they are mixed, and fits
no loss law (Chinchilla, data-constrained, loss envelope) across runs of different precisions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.evaluate.eval_file import EVAL_FILE  # each run's scores, SWEEP/runs/RUN/eval.json
from slmscale.evaluate.outcomes import PairOutcomes, pair_outcomes
from slmscale.files import read_json_object, write_json, write_text
from slmscale.log import get_logger
from slmscale.report import figures
from slmscale.report.analysis import (EXTRAPOLATION_TARGET, R2_LOG_TARGET, LawSettings, chinchilla_analysis,
                                      data_constrained_analysis, exponent_comparison, loss_envelope, metric_scaling,
                                      ngram_comparison)
from slmscale.report.findings import Outcomes, compute_findings
from slmscale.report.markdown import PAPER_TABLE5, render
from slmscale.report.runs import SINGLE_EPOCH, Sweep, VariantRuns, read_sweep
from slmscale.report.select import corpus_groups, main_variant, text_arm, tokenizer_pair
from slmscale.scaling.text_reference import PAPER_RATIOS, PAPER_TABLE4, pythia_reference, table4_column

log = get_logger(__name__)
REPORT_JSON, REPORT_MD = "report.json", "report.md"


def json_ready(value: Any) -> Any:
    """numpy scalars as Python numbers, NaN and infinities as null (report.json stays strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{precision}: {n}" for precision, n in sorted(counts.items()))


def mixed_precision_reason(variant: VariantRuns) -> str | None:
    """Why the variant's loss laws are not fitted, when its runs trained in more than one precision
    (bf16 and fp32 runs differ by more than the law's residuals: a confound, not a scaling effect)."""
    counts = variant.precision_counts()
    if len(counts) < 2:
        return None
    return (f"runs trained in mixed precisions ({_counts_text(counts)} runs); a law is fitted on runs of one "
            "precision only (retrain the others in the sweep's precision)")


def _loss_laws(variant: VariantRuns, single, settings: LawSettings) -> dict[str, Any]:
    """The Chinchilla fit, the data-constrained law over it and the loss envelope, or their reasons."""
    mixed = mixed_precision_reason(variant)
    if mixed:
        return {"chinchilla": {"skipped": mixed}, "data_constrained": {"skipped": mixed},
                "loss_envelope": {"skipped": mixed}}
    chinchilla = chinchilla_analysis(variant, settings)
    return {"chinchilla": chinchilla,
            "data_constrained": data_constrained_analysis(variant, settings, chinchilla),
            "loss_envelope": loss_envelope(single, settings.bootstrap, settings.seed) if len(single)
            else {"skipped": "no single-epoch runs"}}


def precision_summary(sweep: Sweep) -> dict[str, Any]:
    """The training precisions of the completed runs beside the sweep's recorded choice, and the
    warnings: runs in mixed precisions, runs off the sweep's choice, runs that record none."""
    runs: dict[str, list[str]] = {}
    unrecorded = 0
    for variant in sweep.variants.values():
        for run_id, precision in zip(variant.table.run_ids, variant.precisions or [""] * len(variant.table)):
            if precision:
                runs.setdefault(precision, []).append(run_id)
            else:
                unrecorded += 1
    chosen = (sweep.precision_choice or {}).get("precision")
    mixed_variants = sorted(v.name for v in sweep.variants.values() if mixed_precision_reason(v))
    warnings = []
    if len(runs) > 1:
        warnings.append(f"runs trained in mixed precisions ({_counts_text({p: len(r) for p, r in runs.items()})} "
                        "runs); " + (f"no loss law fitted for {', '.join(mixed_variants)}" if mixed_variants else
                                     "each variant's runs share one, but comparisons across variants mix them"))
    off = sorted(run for precision, ids in runs.items() if chosen and precision != chosen for run in ids)
    if off:
        listed = ", ".join(off[:4]) + (", …" if len(off) > 4 else "")
        warnings.append(f"{len(off)} run(s) trained in another precision than the sweep's {chosen} ({listed}); "
                        "rerun `slmscale sweep` to retrain them")
    if unrecorded and runs:
        warnings.append(f"{unrecorded} run(s) record no precision: whether they match the others is not known")
    return {"runs": {p: len(r) for p, r in sorted(runs.items())}, "unrecorded": unrecorded,
            "single": next(iter(runs)) if len(runs) == 1 and not unrecorded else None, "mixed": len(runs) > 1,
            "mixed_variants": mixed_variants, "sweep": sweep.precision_choice, "warnings": warnings}


def _variant_numbers(variant: VariantRuns, metrics: list[str], settings: LawSettings) -> dict:
    single = variant.single_epoch()
    log.info("report: variant %s (%d runs)", variant.name, len(variant.table))
    return {"modality": variant.modality, "corpus": variant.corpus, "tokenizer": variant.tokenizer,
            "grids": sorted(variant.grids), "n_runs": len(variant.table), "n_single_epoch": len(single),
            "precisions": variant.precision_counts(), **_loss_laws(variant, single, settings),
            "downstream": metric_scaling(variant, metrics, settings.bootstrap, settings.seed),
            "ngram": ngram_comparison(variant, metrics)}


def _checks(main: VariantRuns | None, numbers: dict) -> dict[str, Any]:
    """The main variant's law: does it fit its runs, does it extrapolate to the largest ones?"""
    fit = numbers[main.name]["chinchilla"] if main else {"skipped": "no main speech variant"}
    if "params" not in fit:
        why = fit.get("skipped", "no fit")
        return {"r2_log": {"pass": False, "why": why}, "extrapolation": {"pass": False, "why": why}}
    extrapolation = fit["extrapolation"]
    worst = extrapolation.get("max_abs_relative_error")
    return {"variant": main.name,
            "r2_log": {"value": fit["r2_log"], "threshold": R2_LOG_TARGET, "pass": fit["r2_log"] >= R2_LOG_TARGET},
            "extrapolation": {"value": worst, "mean": extrapolation.get("mean_abs_relative_error"),
                              "threshold": EXTRAPOLATION_TARGET, "n_heldout": extrapolation.get("n_heldout"),
                              "pass": worst is not None and worst <= EXTRAPOLATION_TARGET,
                              **({"why": extrapolation["skipped"]} if "skipped" in extrapolation else {})}}


def run_outcomes(sweep_dir: Path, rows: Iterable[dict[str, str]] = ()) -> Outcomes:
    """(run_id, metric) -> the run's per-pair outcomes from SWEEP/runs/RUN/eval.json, or from the run dir
    a row names (`run_dir`: a run from outside the sweep); None when the file or its pairs are absent.
    Each eval.json is read once."""
    cache: dict[str, dict] = {}
    elsewhere = {row["run_id"]: Path(row["run_dir"]) for row in rows if (row.get("run_dir") or "").strip()}

    def outcomes(run_id: str, metric: str) -> PairOutcomes | None:
        if run_id not in cache:
            cache[run_id] = read_json_object(elsewhere.get(run_id, sweep_dir / "runs" / run_id) / EVAL_FILE)
        return pair_outcomes(cache[run_id], metric)
    return outcomes


class _Figures:
    """Collects the written figures and the skipped ones, with captions."""

    def __init__(self, out_dir: Path):
        self.out_dir, self.written, self.skipped = out_dir, [], []

    def add(self, number: str, name: str, caption: str, draw) -> None:
        self.written.append({"figure": number, "file": draw(self.out_dir / name), "caption": caption})

    def skip(self, what: str, why: str) -> None:
        log.info("report: skipped %s: %s", what, why)
        self.skipped.append({"what": what, "why": why})


def _draw(sweep: Sweep, numbers: dict, main: VariantRuns | None, text: VariantRuns | None, pythia: dict | None,
          out: _Figures) -> dict[str, Any]:
    """Figures 1–5 and the iso-loss contours; returns the comparisons' variant choices."""
    from slmscale.scaling.figures import isoloss
    for variant in sweep.speech():
        env, single = numbers[variant.name]["loss_envelope"], variant.single_epoch()
        if len(np.unique(single.tokens)) < 2:
            # One budget per size draws no curves: such runs (a corpus comparison) are Figure 3's.
            out.skip(f"Figure 1 ({variant.name})", f"{len(np.unique(single.tokens))} single-epoch token budget(s); "
                     "the per-size curves need 2")
        elif "gamma" in env:
            out.add("1", f"fig1_loss_vs_compute_{variant.name}.png",
                    f"Test loss against compute, {variant.name}" + (" (main)" if variant is main else ""),
                    lambda p, v=variant, e=env: figures.loss_vs_compute(v, e, p))
        else:
            out.skip(f"Figure 1 ({variant.name})", env.get("skipped", "no single-epoch runs"))
    if not sweep.speech():
        out.skip("Figures 1, 2, 4, 5", "the sweep has no completed speech runs")
    main_fits = numbers[main.name]["downstream"] if main else {}
    text_fits = numbers[text.name]["downstream"] if text else {}
    scaled = [m for m, fit in main_fits.items() if "gamma" in fit]
    if main and scaled:
        if text is None:
            out.skip("Figure 2 text arm", "the sweep has no text-arm runs; Pythia is the only text reference")
        out.add("2", "fig2_downstream_vs_compute.png", f"Downstream metrics against compute, {main.name}"
                + (f" beside the text arm {text.name}" if text else "") + (" and Pythia BLiMP" if pythia else ""),
                lambda p: figures.downstream_vs_compute(main, main_fits, text, text_fits, pythia, scaled, p))
    elif main:
        out.skip("Figure 2", f"no downstream metric could be fitted on {main.name}")
    groups, why = corpus_groups(sweep)
    for group in groups:
        members = [sweep.variants[n] for n in group["variants"]]
        measured = [m for m in sweep.metrics if any(np.isfinite(v.table.metrics[m]).any() for v in members)]
        out.add("3", f"fig3_corpus_{group['modality']}_{group['tokenizer']}.png",
                f"Corpora at equal tokens across sizes ({group['modality']}, {group['tokenizer']}): "
                + ", ".join(f"{v.name} = {v.corpus}" for v in members),
                lambda p, vs=members, g=group, ms=measured: figures.corpus_comparison(vs, g["variants"], ms, p))
    if not groups:
        out.skip("Figure 3", why)
    pairs = [(v, numbers[v.name]["downstream"], c) for v, c in ((main, figures.SPEECH), (text, figures.TEXT)) if v]
    linear = [m for m in sweep.metrics if any("slope" in f.get(m, {}).get("loss_fit", {}) for _, f, _ in pairs)]
    if linear:
        out.add("4", "fig4_downstream_vs_loss.png", "Downstream metrics against test loss, linear fits before "
                "saturation", lambda p: figures.downstream_vs_loss(pairs, linear, p))
    else:
        out.skip("Figure 4", "no metric has a loss-metric fit (needs ≥4 runs before saturation)")
    pair, why = tokenizer_pair(sweep, main)
    if pair:
        with_loss = all(np.isfinite(v.bits_per_second[v.table.epochs <= SINGLE_EPOCH]).any() for v in pair)
        if not with_loss:
            out.skip("Figure 5 loss panel", "loss_bits_per_second is missing; nats/token are not comparable "
                     "across tokenizers")
        fits = {v.name: numbers[v.name]["downstream"] for v in pair}
        metrics = [m for m in sweep.metrics if any("gamma" in fits[v.name].get(m, {}) for v in pair)]
        if with_loss or metrics:
            out.add("5", "fig5_tokenizers.png", f"{pair[0].name} ({pair[0].tokenizer}) against {pair[1].name} "
                    f"({pair[1].tokenizer})", lambda p: figures.tokenizers(pair, fits, metrics, p, with_loss))
    else:
        out.skip("Figure 5", why)
    for variant in sweep.variants.values():
        repeated = numbers[variant.name]["data_constrained"]
        if "params" in repeated and not repeated["not_identified"]:
            out.add("repeated data", f"repeated_{variant.name}.png", "Loss with repeated data and the data-constrained "
                    f"law, {variant.name}", lambda p, v=variant, f=repeated: figures.repeated_data(v, f, p))
        elif "params" in repeated:
            out.skip(f"Repeated-data figure ({variant.name})", "R_N* or R_D* not identified (see the table)")
        fit = numbers[variant.name]["chinchilla"]
        if "params" in fit:
            out.add("iso-loss", f"isoloss_{variant.name}.png", f"Iso-loss contours and compute-optimal frontier, "
                    f"{variant.name}", lambda p, v=variant, f=fit: isoloss(v.single_epoch(), f, p))
        else:
            out.skip(f"Chinchilla fit and iso-loss ({variant.name})", fit["skipped"])
    return {"corpus_groups": groups, "tokenizer_pair": [v.name for v in pair]}


def make_report(sweep_dir: str | Path, out_dir: str | Path, bootstrap: int = 1000, seed: int = 0,
                init_grid: dict | None = None, delta: float = 1e-3, tie_alpha_beta: bool = False,
                fixed: dict[str, float] | None = None) -> dict[str, Any]:
    """Write OUT/report.md, OUT/report.json and the figures; returns the report.json content.
    `init_grid`: the Chinchilla fits' initialisation grid (default Hoffmann's 4,500 starts);
    `delta`, `tie_alpha_beta`, `fixed`: how every law is fitted (as `slmscale fit` takes them)."""
    settings = LawSettings(bootstrap=bootstrap, seed=seed, delta=delta, tie_alpha_beta=tie_alpha_beta,
                           fixed=dict(fixed or {}), init_grid=init_grid)
    from threadpoolctl import threadpool_limits
    sweep = read_sweep(sweep_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with threadpool_limits(1):  # the fits are many tiny BLAS calls (see scaling/fit.py)
        numbers = {v.name: _variant_numbers(v, sweep.metrics, settings)
                   for v in sweep.variants.values()}
    main, main_why = main_variant(sweep)
    text, text_why = text_arm(sweep, main)
    main_fits = numbers[main.name]["downstream"] if main else {}
    blimp = any(table4_column(m) == "blimp" and "gamma" in f for m, f in main_fits.items())
    pythia = pythia_reference("blimp", bootstrap=bootstrap, seed=seed) if blimp else None
    drawn = _Figures(out_dir)
    choices = _draw(sweep, numbers, main, text, pythia, drawn)
    report = {
        # Relative to the report, so the study dir can move and the report names no private path.
        "sweep": os.path.relpath(sweep.path, out_dir), "status_counts": sweep.status_counts, "metrics": sweep.metrics,
        "bootstrap": bootstrap, "seed": seed, "precision": precision_summary(sweep),
        "fit_settings": {"delta": delta, "tie_alpha_beta": tie_alpha_beta, "fixed": settings.fixed},
        "main_variant": main.name if main else None, "main_variant_why": main_why,
        "text_arm": text.name if text else None, "text_arm_why": text_why,
        "variants": numbers, "pythia": pythia,
        "comparison": exponent_comparison(main_fits, numbers[text.name]["downstream"] if text else None, pythia),
        "checks": _checks(main, numbers), **choices,
        "figures": drawn.written, "skipped": drawn.skipped, "failed": sweep.failed,
        "runs": sweep.rows,
        "paper": {"table4": PAPER_TABLE4, "ratios": PAPER_RATIOS, "table5": PAPER_TABLE5},
    }
    report["findings"] = compute_findings(report, run_outcomes(sweep.path.parent, sweep.rows), bootstrap, seed)
    report = json_ready(report)
    write_json(out_dir / REPORT_JSON, report)
    write_text(out_dir / REPORT_MD, render(report))
    return report
