"""`fit_results(table, cfg, out)`: one law fitted to a results table -> OUT/fit.json + figures.

The laws live in their own modules (chinchilla, data_constrained, kaplan, isoflop, downstream);
this one picks the law, adds what the config asks for (bootstrap intervals, the extrapolation
check, the compute-optimal frontier, the text reference) and records where the numbers came
from: the table's path and hash, the config, the git revision and the library versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slmscale.config import ConfigError, to_dict
from slmscale.files import StageError, content_hash, write_json
from slmscale.log import get_logger
from slmscale.provenance import git_revision, utc_now, versions
from slmscale.scaling.config import FitConfig
from slmscale.scaling.grid_check import check_grid
from slmscale.scaling.table import ResultsTable, read_table

log = get_logger(__name__)
FIT_FILE = "fit.json"


def replicate_counts(boot: dict | None) -> tuple[int, int] | None:
    """(replicates an interval rests on, replicates drawn) of a bootstrap dict, None without one.
    Read defensively: the law fits count the converged replicates, the downstream bootstrap its
    valid ones or its failures."""
    if not boot or "resamples" not in boot:
        return None
    used = boot.get("n_converged", boot.get("n_valid"))
    if used is None and "failed" in boot:
        used = boot["resamples"] - boot["failed"]
    return None if used is None else (int(used), int(boot["resamples"]))


def _frontier_flops(table: ResultsTable) -> np.ndarray:
    """Budgets from the smallest run to 100x the largest, 4 per decade."""
    low, high = np.log10(table.flops.min()), np.log10(table.flops.max()) + 2
    return 10 ** np.arange(np.floor(low), np.ceil(high) + 0.01, 0.25)


def _require_grid(table: ResultsTable, rows: np.ndarray, cfg: FitConfig, fixed: dict, what: str) -> list[str]:
    """The minimum grid (scaling.grid_check, shared with the report) on the rows a law is fitted to: a StageError
    naming the table and what is missing, or the warnings (logged) of a grid that only just fits."""
    check = check_grid(table.params[rows], table.tokens[rows], fixed, cfg.tie_alpha_beta)
    if not check.ok:
        raise StageError(f"{table.source}: too few runs for {what}: {check.describe()}")
    for warning in check.warnings:
        log.warning("%s: %s: %s", table.source, what, warning)
    return check.warnings


def _chinchilla(table: ResultsTable, cfg: FitConfig) -> dict[str, Any]:
    from slmscale.scaling.chinchilla import (bootstrap_chinchilla, extrapolation_check, fit_chinchilla,
                                             free_parameters, frontier)
    loss, fixed = table.require_loss("chinchilla"), cfg.fixed()
    options = {"delta": cfg.delta, "fixed": fixed or None, "tie_alpha_beta": cfg.tie_alpha_beta}
    try:
        free_parameters(fixed, cfg.tie_alpha_beta)  # a bad `fix` is a config error before any grid question
    except ValueError as err:
        raise ConfigError(str(err)) from None
    warnings = _require_grid(table, np.arange(len(table)), cfg, fixed, "the chinchilla law")
    try:
        fit = fit_chinchilla(table.params, table.tokens, loss, **options)
    except ValueError as err:  # the runs do not determine the law (e.g. an exponent ≤ 0)
        raise StageError(f"{table.source}: {err}") from None
    result = {**fit.to_json(), "warnings": warnings}
    if cfg.bootstrap:
        try:
            result["ci"] = bootstrap_chinchilla(table.params, table.tokens, loss, fit, resamples=cfg.bootstrap,
                                                seed=cfg.seed, **options)
        except ValueError as err:  # too few replicates converged: the fit stands, its intervals do not
            result["ci_error"] = str(err)
    result["frontier"] = frontier(fit.params, _frontier_flops(table))
    if cfg.extrapolate_below:
        _require_grid(table, table.flops < cfg.extrapolate_below, cfg, fixed,
                      f"the extrapolation check's fit below {cfg.extrapolate_below:g} FLOPs")
        try:
            result["extrapolation"] = extrapolation_check(table.params, table.tokens, loss, table.flops,
                                                          cfg.extrapolate_below, **options)
        except ValueError as err:
            raise StageError(f"{table.source}: {err}") from None
    return result


def _data_constrained(table: ResultsTable, cfg: FitConfig) -> dict[str, Any]:
    from slmscale.scaling.chinchilla import compute_optimal
    from slmscale.scaling.data_constrained import BASE_KEYS, fit_data_constrained, fit_data_constrained_after_base
    loss = table.require_loss("data-constrained")
    if table.unique_tokens is None:
        raise StageError(f"{table.source}: the data-constrained law needs a unique_tokens column")
    fixed = cfg.fixed()
    unknown = set(fixed) - set(BASE_KEYS)
    if unknown:
        raise ConfigError(f"fix: {', '.join(sorted(unknown))} cannot be fixed for data-constrained "
                          f"(fix all of {', '.join(BASE_KEYS)} or none)")
    if fixed and set(fixed) != set(BASE_KEYS):
        raise ConfigError(f"fix: give all of {', '.join(BASE_KEYS)} (the base law) or none; "
                          f"missing {', '.join(k for k in BASE_KEYS if k not in fixed)}")
    warnings = [] if fixed else _require_grid(table, table.epochs <= 1.0 + 1e-9, cfg, fixed,
                                              "the data-constrained law's base (single-epoch runs)")
    try:
        fit = (fit_data_constrained(table.params, table.tokens, table.unique_tokens, loss, fixed, delta=cfg.delta)
               if fixed else fit_data_constrained_after_base(table, delta=cfg.delta,
                                                             tie_alpha_beta=cfg.tie_alpha_beta))
    except ValueError as err:
        raise StageError(f"{table.source}: {err}") from None
    result = {**fit.to_json(), "warnings": warnings}
    result["compute_optimal"] = compute_optimal(fit.params)
    if cfg.bootstrap:
        result.update(data_constrained_intervals(table, fit, cfg.bootstrap, cfg.seed, cfg.delta))
    return result


def data_constrained_intervals(table: ResultsTable, fit, resamples: int, seed: int, delta: float) -> dict[str, Any]:
    """{"ci": bootstrap intervals of R_D*, R_N*} or {"ci_error": why not} (the fit stands either way)."""
    from slmscale.scaling.data_constrained import bootstrap_data_constrained
    try:
        return {"ci": bootstrap_data_constrained(table.params, table.tokens, table.unique_tokens, table.loss, fit,
                                                 resamples=resamples, seed=seed, delta=delta)}
    except ValueError as err:
        return {"ci_error": str(err)}


def _kaplan(table: ResultsTable, cfg: FitConfig) -> dict[str, Any]:
    from slmscale.scaling.kaplan import fit_kaplan
    try:
        return fit_kaplan(table.params, table.tokens, table.require_loss("kaplan"), delta=cfg.delta).to_json()
    except ValueError as err:  # too few runs, or not identified: the law says why
        raise StageError(f"{table.source}: {err}") from None


def _isoflop(table: ResultsTable, cfg: FitConfig) -> dict[str, Any]:
    from slmscale.scaling.isoflop import fit_isoflop
    try:
        return fit_isoflop(table.params, table.tokens, table.require_loss("isoflop"), table.flops,
                           tolerance=cfg.isoflop_tolerance)
    except ValueError as err:
        raise StageError(f"{table.source}: {err}") from None


def _downstream(table: ResultsTable, cfg: FitConfig) -> dict[str, Any]:
    from slmscale.scaling.downstream import downstream_scaling
    from slmscale.scaling.text_reference import compare, pythia_reference, table4_column
    if not cfg.metric:
        raise ConfigError("law=downstream needs metric=COLUMN (e.g. --metric sblimp)")
    result = {"law": "downstream", **downstream_scaling(table, cfg.metric, bootstrap=cfg.bootstrap or 1000,
                                                        seed=cfg.seed)}
    column = table4_column(cfg.metric)
    if cfg.text_reference:
        if column is None:
            raise ConfigError(f"metric {cfg.metric!r} has no text counterpart (Table 4 has BLiMP, tSC, sSC)")
        # Pythia's eval files have BLiMP only; tSC/sSC text exponents come from the paper's Table 4.
        reference = pythia_reference("blimp", bootstrap=cfg.bootstrap or 1000, seed=cfg.seed) \
            if column == "blimp" else None
        from slmscale.scaling.text_reference import PAPER_TABLE4
        text_gamma = reference["gamma"] if reference else PAPER_TABLE4["text"][column]
        result["text_reference"] = {"name": cfg.text_reference, "column": column,
                                    "source": "pythia/downstream.csv" if reference else "paper Table 4",
                                    "fit": reference, "gamma": text_gamma}
        try:
            result["comparison"] = compare(result["gamma"], text_gamma, column=column)
        except ValueError as err:  # a speech γ <= 0: no ratio exists (the report says the same)
            result["comparison"] = {"column": column, "text_gamma": text_gamma,
                                    "not_identified": f"the text/speech ratio is not identified: {err}"}
    return result


LAWS = {"chinchilla": _chinchilla, "data-constrained": _data_constrained, "kaplan": _kaplan,
        "isoflop": _isoflop, "downstream": _downstream}


def fit_results(table_path: str | Path, cfg: FitConfig, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Fit `cfg.law` to the table; write fit.json and figures to `out_dir` when given."""
    from threadpoolctl import threadpool_limits
    table_path = Path(table_path)
    table = read_table(table_path, cfg.drop_highest_loss)
    # Fits are many tiny BLAS calls: one thread is fastest (a threaded OpenBLAS made scipy's
    # L-BFGS-B about 30x slower per call on the shared 2-core machine).
    with threadpool_limits(1):
        result = LAWS[cfg.law](table, cfg)
    result.update({"source": str(table_path.resolve()),
                   "source_sha256": content_hash(table_path.read_bytes()),
                   "n_rows": len(table), "config": to_dict(cfg), "git_revision": git_revision(),
                   "versions": versions(), "created": utc_now()})
    if out_dir is not None:
        from slmscale.scaling.figures import fit_figures
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        result["figures"] = fit_figures(table, result, out_dir)
        write_json(out_dir / FIT_FILE, result)
    return result
