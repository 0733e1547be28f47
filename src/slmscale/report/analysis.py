"""The numbers of the report, per data variant: the Chinchilla law (Hoffmann et al. 2022) with
bootstrap intervals and an extrapolation check, the loss envelope's power law (Cuervo & Marxer
2024, Figure 1), downstream exponents γ (their Figure 2 / Table 4), the text-vs-speech comparison
and the accuracies of the best run against the n-gram baseline. Everything is JSON-able.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slmscale.files import StageError
from slmscale.report.runs import BASELINE, VariantRuns
from slmscale.scaling.chinchilla import (bootstrap_chinchilla, chinchilla_loss, extrapolation_check, fit_chinchilla,
                                         frontier)
from slmscale.scaling.downstream import downstream_scaling, envelope, fit_power_law
from slmscale.scaling.law_fit import r_squared
from slmscale.scaling.table import ResultsTable
from slmscale.scaling.text_reference import compare, table4_column

MIN_SIZES, MIN_BUDGETS, MIN_RUNS = 3, 2, 6
"""A Chinchilla fit needs this many distinct sizes, token budgets and single-epoch runs (5 parameters)."""
HELDOUT_FRACTION = 0.15
"""The extrapolation check holds out this share of the largest-compute runs (at least 2)."""
MIN_EXTRAPOLATION_FIT = 8
"""Runs left below the threshold to fit on, at least."""
R2_LOG_TARGET = 0.95
EXTRAPOLATION_TARGET = 0.03
"""Issue 7's acceptance: R² ≥ 0.95 on log loss, held-out largest runs predicted within 3%."""


def _fit_summary(fit_json: dict[str, Any], table: ResultsTable) -> dict[str, Any]:
    predicted = chinchilla_loss(fit_json["params"], table.params, table.tokens)
    return {**fit_json, "r2_log": r_squared(np.log(table.loss), np.log(predicted)), "run_ids": list(table.run_ids)}


def frontier_budgets(flops: np.ndarray) -> np.ndarray:
    """Decades from the largest run's compute up to 1000× beyond it."""
    start = math.floor(math.log10(float(np.max(flops))))
    return 10.0 ** np.arange(start, start + 4)


def extrapolation(table: ResultsTable, init_grid=None) -> dict[str, Any]:
    """Fit below a compute threshold, predict the largest-compute runs (the top HELDOUT_FRACTION)."""
    order = np.sort(table.flops)[::-1]
    n_heldout = max(2, math.ceil(HELDOUT_FRACTION * len(table)))
    threshold = float(order[n_heldout - 1])
    n_fit = int((table.flops < threshold).sum())
    if n_fit < MIN_EXTRAPOLATION_FIT:
        return {"skipped": f"holding out the {n_heldout} largest-compute runs leaves {n_fit} to fit "
                           f"(need {MIN_EXTRAPOLATION_FIT})"}
    result = extrapolation_check(table.params, table.tokens, table.loss, table.flops, threshold,
                                 min_fit=MIN_EXTRAPOLATION_FIT, grid=init_grid)
    held = np.flatnonzero(table.flops >= threshold)
    result["heldout_run_ids"] = [table.run_ids[i] for i in held]
    result["heldout_flops"] = table.flops[held].tolist()
    return result


def chinchilla_analysis(variant: VariantRuns, bootstrap: int, seed: int, init_grid=None) -> dict[str, Any]:
    """L̂ = E + A/N^α + B/D^β on the variant's single-epoch runs, or {"skipped": why}."""
    table = variant.single_epoch()
    sizes, budgets = len(np.unique(table.params)), len(np.unique(table.tokens))
    if sizes < MIN_SIZES or budgets < MIN_BUDGETS or len(table) < MIN_RUNS:
        return {"skipped": f"{len(table)} single-epoch runs over {sizes} sizes and {budgets} token budgets; "
                           f"a fit needs ≥{MIN_SIZES} sizes, ≥{MIN_BUDGETS} budgets and ≥{MIN_RUNS} runs"}
    fit = fit_chinchilla(table.params, table.tokens, table.loss, grid=init_grid)
    result = _fit_summary(fit.to_json(), table)
    if bootstrap:
        try:
            result["ci"] = bootstrap_chinchilla(table.params, table.tokens, table.loss, fit, resamples=bootstrap,
                                                seed=seed)
        except ValueError as error:
            result["ci_error"] = str(error)
    result["frontier"] = frontier(fit.params, frontier_budgets(table.flops))
    result["extrapolation"] = extrapolation(table, init_grid)
    return result


def loss_envelope(table: ResultsTable, bootstrap: int, seed: int) -> dict[str, Any]:
    """Min loss per FLOP (the runs no cheaper run beats) and L ∝ C^γ fitted to it, γ's 95% interval
    from resampling runs and redoing envelope and fit."""
    frontier_idx = envelope(table.flops, -table.loss)
    if len(frontier_idx) < 3:
        return {"skipped": f"the loss envelope has {len(frontier_idx)} points (need 3)"}
    fit = fit_power_law(table.flops[frontier_idx], table.loss[frontier_idx])
    rng, gammas = np.random.default_rng(seed), []
    for _ in range(bootstrap):
        pick = rng.integers(0, len(table), len(table))
        inner = envelope(table.flops[pick], -table.loss[pick])
        if len(np.unique(table.flops[pick][inner])) >= 3:
            gammas.append(fit_power_law(table.flops[pick][inner], table.loss[pick][inner])["gamma"])
    return {"gamma": fit["gamma"], "log_coefficient": fit["log_coefficient"], "r2_log": fit["r2"],
            "gamma_ci95": [float(v) for v in np.percentile(gammas, [2.5, 97.5])] if len(gammas) > 1 else None,
            "n_envelope": int(len(frontier_idx)), "run_ids": [table.run_ids[i] for i in frontier_idx],
            "flops": table.flops[frontier_idx].tolist(), "loss": table.loss[frontier_idx].tolist()}


def metric_scaling(variant: VariantRuns, metrics: list[str], bootstrap: int, seed: int) -> dict[str, Any]:
    """`downstream_scaling` of every metric the variant measured (envelope, γ, loss-metric line)."""
    out: dict[str, Any] = {}
    for metric in metrics:
        table = variant.metric_table(metric)
        if not len(table):
            continue  # not measured on this variant (e.g. sWUGGY on the text arm)
        try:
            out[metric] = downstream_scaling(table, metric, bootstrap=bootstrap, seed=seed)
        except StageError as error:
            out[metric] = {"skipped": str(error)}
    return out


def ngram_comparison(variant: VariantRuns, metrics: list[str]) -> dict[str, Any]:
    """The lowest-loss run's scores beside the n-gram baseline's on the same units."""
    table = variant.table
    best = int(np.lexsort((-table.flops, table.loss))[0])
    baselines = {BASELINE.sub("", name): name for name in table.metrics if BASELINE.match(name)}
    scores = {}
    for metric in metrics:
        value = table.metrics[metric][best]
        if not math.isfinite(value):
            continue
        column = baselines.get(metric)
        base = table.metrics[column][best] if column else math.nan
        scores[metric] = {"lm": float(value), "baseline": float(base) if math.isfinite(base) else None,
                          "baseline_column": column, "difference": float(value - base) if math.isfinite(base) else None}
    return {"run_id": table.run_ids[best], "loss": float(table.loss[best]), "params": float(table.params[best]),
            "tokens": float(table.tokens[best]), "metrics": scores}


def _ratio_bounds(speech_ci, text_ci) -> list[float] | None:
    """Bounds of text/speech from the ends of the two intervals (not a confidence interval)."""
    if not speech_ci or not text_ci or speech_ci[0] <= 0:
        return None
    return [text_ci[0] / speech_ci[1], text_ci[1] / speech_ci[0]]


def _versus(speech: dict, text_gamma: float, text_ci, metric: str) -> dict[str, Any]:
    try:
        out = compare(speech["gamma"], text_gamma, column=metric)
    except ValueError as error:
        return {"error": str(error)}
    return {**out, "text_gamma_ci95": text_ci, "ratio_bounds": _ratio_bounds(speech.get("gamma_ci95"), text_ci)}


def exponent_comparison(speech: dict[str, Any], text: dict[str, Any] | None,
                        pythia: dict[str, Any] | None) -> dict[str, Any]:
    """Per metric: speech γ against the text arm of the same world and, for sBLIMP, Pythia BLiMP;
    ratio, compute multiplier per decade, and the paper's Table 4 beside (from `compare`)."""
    out = {}
    for metric, fit in speech.items():
        if "gamma" not in fit:
            continue
        row: dict[str, Any] = {"speech_gamma": fit["gamma"], "speech_gamma_ci95": fit.get("gamma_ci95"),
                               "table4_column": table4_column(metric)}
        other = (text or {}).get(metric)
        if other and "gamma" in other:
            row["text_arm"] = _versus(fit, other["gamma"], other.get("gamma_ci95"), metric)
        if pythia and table4_column(metric) == "blimp":
            row["pythia"] = _versus(fit, pythia["gamma"], pythia.get("gamma_ci95"), metric)
        out[metric] = row
    return out
