"""The numbers of the report, per data variant: the Chinchilla law (Hoffmann et al. 2022) with
bootstrap intervals and an extrapolation check, the data-constrained law's decay constants R_N*,
R_D* (Muennighoff et al. 2023) where a variant repeated data, the loss envelope's power law
(Cuervo & Marxer 2024, Figure 1), downstream exponents γ (their Figure 2 / Table 4), the
text-vs-speech comparison and the accuracies of the best run against the n-gram baseline.
Every law is fitted with the same settings (`LawSettings`). Everything is JSON-able.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slmscale.files import StageError
from slmscale.log import get_logger
from slmscale.report.runs import BASELINE, SINGLE_EPOCH, VariantRuns
from slmscale.scaling.chinchilla import (bootstrap_chinchilla, chinchilla_loss, extrapolation_check, fit_chinchilla,
                                         frontier)
from slmscale.scaling.data_constrained import BASE_KEYS, R_STAR_BOUNDS, fit_data_constrained
from slmscale.scaling.downstream import downstream_scaling, envelope, fit_power_law
from slmscale.scaling.downstream_noise import gamma_contrast
from slmscale.scaling.fit import data_constrained_intervals, replicate_counts
from slmscale.scaling.grid_check import check_grid
from slmscale.scaling.identification import chinchilla_identification, identify
from slmscale.scaling.law_fit import r_squared
from slmscale.scaling.table import ResultsTable
from slmscale.scaling.text_reference import compare, table4_column

log = get_logger(__name__)
HELDOUT_FRACTION = 0.15
"""The extrapolation check holds out this share of the largest-compute runs (at least 2)."""
MIN_EXTRAPOLATION_FIT = 8
"""Runs left below the threshold to fit on, at least."""
R2_LOG_TARGET = 0.97
EXTRAPOLATION_TARGET = 0.03
"""The checks of the main law: R² ≥ 0.97 on log loss, held-out largest runs predicted within 3%
(the bars of the study's loss-law finding, report/findings.py)."""
MIN_ENVELOPE = 3
"""Envelope points (distinct compute) a power law L ∝ C^γ is fitted to, at least."""


@dataclass(frozen=True)
class LawSettings:
    """How every law of the report is fitted (a study's `fit` settings)."""
    bootstrap: int = 1000
    seed: int = 0
    delta: float = 1e-3
    """Huber delta on log-loss residuals."""
    tie_alpha_beta: bool = False
    fixed: dict[str, float] = field(default_factory=dict)
    """Parameters held constant (E, A, B, alpha, beta)."""
    init_grid: dict | None = None
    """The Chinchilla fits' initialisation grid (default Hoffmann's 4,500 starts)."""

    def options(self) -> dict[str, Any]:
        return {"delta": self.delta, "fixed": dict(self.fixed) or None, "tie_alpha_beta": self.tie_alpha_beta}


def short_reason(error: Exception | str, table: ResultsTable) -> str:
    """An error without the table's path in front: the report names the variant already."""
    return str(error).replace(f"{table.source}: ", "")


def _fit_summary(fit_json: dict[str, Any], table: ResultsTable) -> dict[str, Any]:
    predicted = chinchilla_loss(fit_json["params"], table.params, table.tokens)
    return {**fit_json, "r2_log": r_squared(np.log(table.loss), np.log(predicted)), "run_ids": list(table.run_ids)}


def frontier_budgets(flops: np.ndarray) -> np.ndarray:
    """Decades from the largest run's compute up to 1000× beyond it."""
    start = math.floor(math.log10(float(np.max(flops))))
    return 10.0 ** np.arange(start, start + 4)


def extrapolation(table: ResultsTable, settings: LawSettings) -> dict[str, Any]:
    """Fit below a compute threshold, predict the largest-compute runs (the top HELDOUT_FRACTION)."""
    order = np.sort(table.flops)[::-1]
    n_heldout = max(2, math.ceil(HELDOUT_FRACTION * len(table)))
    threshold = float(order[n_heldout - 1])
    below = table.flops < threshold
    n_fit = int(below.sum())
    if n_fit < MIN_EXTRAPOLATION_FIT:
        return {"skipped": f"holding out the {n_heldout} largest-compute runs leaves {n_fit} to fit "
                           f"(need {MIN_EXTRAPOLATION_FIT})"}
    check = check_grid(table.params[below], table.tokens[below], settings.fixed, settings.tie_alpha_beta)
    if not check.ok:
        return {"skipped": f"the runs below {threshold:.3g} FLOPs: {check.describe()}"}
    try:
        result = extrapolation_check(table.params, table.tokens, table.loss, table.flops, threshold,
                                     min_fit=MIN_EXTRAPOLATION_FIT, grid=settings.init_grid, **settings.options())
    except ValueError as error:
        return {"skipped": short_reason(error, table)}
    held = np.flatnonzero(~below)
    result["heldout_run_ids"] = [table.run_ids[i] for i in held]
    result["heldout_flops"] = table.flops[held].tolist()
    return result


def chinchilla_analysis(variant: VariantRuns, settings: LawSettings) -> dict[str, Any]:
    """L̂ = E + A/N^α + B/D^β on the variant's single-epoch runs, or {"skipped": why}."""
    table = variant.single_epoch()
    check = check_grid(table.params, table.tokens, settings.fixed, settings.tie_alpha_beta)
    if not check.ok:
        return {"skipped": f"single-epoch runs: {check.describe()}"}
    for warning in check.warnings:
        log.warning("report: %s: %s", variant.name, warning)
    try:
        fit = fit_chinchilla(table.params, table.tokens, table.loss, grid=settings.init_grid, **settings.options())
    except ValueError as error:
        return {"skipped": short_reason(error, table)}
    result = {**_fit_summary(fit.to_json(), table), "warnings": check.warnings}
    if settings.bootstrap:
        try:
            result["ci"] = bootstrap_chinchilla(table.params, table.tokens, table.loss, fit,
                                                resamples=settings.bootstrap, seed=settings.seed, **settings.options())
        except ValueError as error:
            result["ci_error"] = str(error)
    result["identified"] = chinchilla_identification(result, float(table.loss.min()), float(table.params.max()),
                                                     float(table.tokens.max()), len(np.unique(table.params)),
                                                     len(np.unique(table.tokens)))
    result["frontier"] = frontier(fit.params, frontier_budgets(table.flops))
    result["extrapolation"] = extrapolation(table, settings)
    return result


def data_constrained_analysis(variant: VariantRuns, settings: LawSettings, base_fit: dict[str, Any]) -> dict[str, Any]:
    """R_D*, R_N* of the data-constrained law when the variant repeated data, on all its runs, over
    the base law `base_fit` (the Chinchilla fit of its single-epoch runs, as Muennighoff et al. and
    Cuervo & Marxer fit it in two stages), or {"skipped": why}.

    The base is the report's own Chinchilla fit rather than a refit (`fit_data_constrained_after_base`
    fits the same law on the same runs): the decay constants then sit on the law the report shows,
    fitted with the report's grid and fixed values, and the 4,500-start fit is not run twice."""
    table = variant.table
    repeated = table.epochs > SINGLE_EPOCH
    if not repeated.any():
        return {"skipped": "no multi-epoch runs (R_D* and R_N* need repeated data)"}
    given = set(BASE_KEYS) <= set(settings.fixed)
    if given:
        base = dict(settings.fixed)  # nothing left for the Chinchilla fit: the base is given
    elif "params" in base_fit:
        base = base_fit["params"]
    else:
        return {"skipped": f"no base law: {base_fit.get('skipped', 'the Chinchilla fit failed')}"}
    try:
        fit = fit_data_constrained(table.params, table.tokens, table.unique_tokens, table.loss,
                                   {k: base[k] for k in BASE_KEYS}, delta=settings.delta)
    except ValueError as error:  # not identifiable from these runs: the law says why
        return {"skipped": short_reason(error, table)}
    result = {**fit.to_json(), "n_repeated": int(repeated.sum()), "max_epochs": float(table.epochs.max()),
              "base": "fixed (fit.fix)" if given else "the Chinchilla fit of the single-epoch runs",
              "run_ids": list(table.run_ids)}
    # A constant that ends on its search bound was not located by the runs: no number for it; nor
    # for one whose interval spans more than a factor of 10 (`scaling/identification.py`).
    low, high = R_STAR_BOUNDS
    at_bound = {name: f"ends on the edge of its search range [{low:g}, {high:g}]: these runs do not locate it"
                for name in fit.extra.get("at_bound", [])}
    if settings.bootstrap:
        result.update(data_constrained_intervals(table, fit, settings.bootstrap, settings.seed, settings.delta))
    verdicts = identify(fit.params, result.get("ci"), ("R_N_star", "R_D_star"), extra=at_bound)
    result["not_identified"] = {name: v["why"] for name, v in verdicts.items() if not v["identified"]}
    return result


def loss_envelope(table: ResultsTable, bootstrap: int, seed: int) -> dict[str, Any]:
    """Min loss per FLOP (the runs no cheaper run beats) and L ∝ C^γ fitted to it, γ's 95% interval
    from resampling runs and redoing envelope and fit. A resample whose envelope has fewer than
    MIN_ENVELOPE distinct points cannot be fitted: it is counted (`dropped`), not hidden."""
    frontier_idx = envelope(table.flops, -table.loss)
    if len(frontier_idx) < MIN_ENVELOPE:
        return {"skipped": f"the loss envelope has {len(frontier_idx)} points (need {MIN_ENVELOPE})"}
    fit = fit_power_law(table.flops[frontier_idx], table.loss[frontier_idx])
    rng, gammas = np.random.default_rng(seed), []
    for _ in range(bootstrap):
        pick = rng.integers(0, len(table), len(table))
        inner = envelope(table.flops[pick], -table.loss[pick])
        if len(np.unique(table.flops[pick][inner])) >= MIN_ENVELOPE:
            gammas.append(fit_power_law(table.flops[pick][inner], table.loss[pick][inner])["gamma"])
    out = {"gamma": fit["gamma"], "log_coefficient": fit["log_coefficient"], "r2_log": fit["r2"],
           "gamma_ci95": [float(v) for v in np.percentile(gammas, [2.5, 97.5])] if len(gammas) > 1 else None,
           "bootstrap": {"resamples": bootstrap, "n_valid": len(gammas), "dropped": bootstrap - len(gammas),
                         "seed": seed} if bootstrap else None,
           "n_envelope": int(len(frontier_idx)), "run_ids": [table.run_ids[i] for i in frontier_idx],
           "flops": table.flops[frontier_idx].tolist(), "loss": table.loss[frontier_idx].tolist()}
    if bootstrap and len(gammas) < 2:
        out["ci_error"] = (f"{bootstrap - len(gammas)} of {bootstrap} resamples had fewer than {MIN_ENVELOPE} "
                           "envelope points")
    return out


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
            out[metric] = {"skipped": short_reason(error, table)}
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


def _versus(speech: dict, text: dict, metric: str) -> dict[str, Any]:
    try:
        out = compare(speech["gamma"], text["gamma"], column=metric)
    except ValueError as error:
        return {"error": str(error)}
    text_ci = text.get("gamma_ci95")
    boot = text.get("bootstrap") or (text.get("fit") or {}).get("bootstrap")  # Pythia's sits under "fit"
    return {**out, "text_gamma_ci95": text_ci, "text_replicates": replicate_counts(boot),
            "ratio_bounds": _ratio_bounds(speech.get("gamma_ci95"), text_ci),
            "contrast": gamma_contrast(speech.get("bootstrap"), boot)}


def exponent_comparison(speech: dict[str, Any], text: dict[str, Any] | None,
                        pythia: dict[str, Any] | None) -> dict[str, Any]:
    """Per metric: speech γ against the text arm of the same world and, for sBLIMP, Pythia BLiMP;
    ratio, compute multiplier per decade, and the paper's Table 4 beside (from `compare`)."""
    out = {}
    for metric, fit in speech.items():
        if "gamma" not in fit:
            continue
        row: dict[str, Any] = {"speech_gamma": fit["gamma"], "speech_gamma_ci95": fit.get("gamma_ci95"),
                               "speech_replicates": replicate_counts(fit.get("bootstrap")),
                               "table4_column": table4_column(metric)}
        other = (text or {}).get(metric)
        if other and "gamma" in other:
            row["text_arm"] = _versus(fit, other, metric)
        if pythia and table4_column(metric) == "blimp":
            row["pythia"] = _versus(fit, pythia, metric)
        out[metric] = row
    return out
