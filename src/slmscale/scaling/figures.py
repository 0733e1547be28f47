"""PNG figures of a fit, in the style of the paper's Figures 1, 2 and 4.

Every figure is a function of the results table and the fit's JSON only, so the report
redraws them from fit.json without refitting. Files are written through a
temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.scaling.table import ResultsTable

MAX_CURVES = 12
"""Per-size law curves are drawn when the table has at most this many distinct sizes."""


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on clusters or CI)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig: Any, path: Path) -> str:
    """Write `fig` to `path` through a temporary name, close it; returns the file name."""
    temporary = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(temporary, dpi=120, bbox_inches="tight")
    os.replace(temporary, path)
    pyplot().close(fig)
    return path.name


def predictor(result: dict[str, Any]):
    """loss(N, D[, U]) of a fitted parametric law, or None for the other laws."""
    params = result.get("params")
    if result["law"] == "chinchilla":
        from slmscale.scaling.chinchilla import chinchilla_loss
        return lambda N, D, U=None: chinchilla_loss(params, N, D)
    if result["law"] == "kaplan":
        from slmscale.scaling.kaplan import kaplan_loss
        return lambda N, D, U=None: kaplan_loss(params, N, D)
    if result["law"] == "data-constrained":
        from slmscale.scaling.data_constrained import data_constrained_loss
        return lambda N, D, U=None: data_constrained_loss(params, N, D, D if U is None else U)
    return None


def loss_vs_compute(table: ResultsTable, result: dict[str, Any], path: Path) -> str:
    """Figure 1: test loss against compute, per-size law curves, the compute-optimal frontier."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    points = ax.scatter(table.flops, table.loss, c=np.log10(table.params), cmap="viridis", s=18, zorder=3)
    fig.colorbar(points, ax=ax, label="log10 parameters")
    predict = predictor(result)
    sizes = np.unique(table.params)
    if predict is not None and len(sizes) <= MAX_CURVES and result["law"] != "data-constrained":
        for n in sizes:
            tokens = table.tokens[table.params == n]
            d = np.geomspace(tokens.min() / 2, tokens.max() * 2, 50)
            ax.plot(6 * n * d, predict(np.full_like(d, n), d), color="grey", lw=0.8, alpha=0.7)
    if "frontier" in result:
        ax.plot(result["frontier"]["flops"], result["frontier"]["loss"], "k--", lw=1.2, label="compute-optimal")
        ax.legend()
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs (6ND)", ylabel="test loss",
           title=f"{result['law']} fit: R² {result.get('r2', float('nan')):.3f}")
    return save_figure(fig, path)


def predicted_vs_observed(table: ResultsTable, result: dict[str, Any], path: Path) -> str:
    plt = pyplot()
    predicted = predictor(result)(table.params, table.tokens, table.unique_tokens)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.scatter(table.loss, predicted, c=np.log10(table.epochs + 1e-12) if table.unique_tokens is not None
               else "tab:blue", s=14)
    low, high = min(table.loss.min(), predicted.min()), max(table.loss.max(), predicted.max())
    ax.plot([low, high], [low, high], "k:", lw=1)
    ax.set(xlabel="observed loss", ylabel="predicted loss", title=f"{result['law']}: {len(table)} runs")
    return save_figure(fig, path)


def isoloss(table: ResultsTable, result: dict[str, Any], path: Path) -> str:
    """Iso-loss contours over (compute, parameters) with the compute-optimal frontier N_opt(C)."""
    from slmscale.scaling.chinchilla import chinchilla_loss
    plt = pyplot()
    flops = np.geomspace(table.flops.min() / 10, table.flops.max() * 100, 120)
    params = np.geomspace(table.params.min() / 10, table.params.max() * 10, 120)
    c_grid, n_grid = np.meshgrid(flops, params)
    base = {k: result["params"][k] for k in ("E", "A", "B", "alpha", "beta")}
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # A steep fitted exponent (β = 43 on two budgets) overflows at the grid's far corners; the
        # contours skip those cells, and the report says the law is not identified.
        loss = chinchilla_loss(base, n_grid, c_grid / (6 * n_grid))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    levels = np.geomspace(np.nanmin(loss) * 1.01, table.loss.max() * 1.05, 10)  # the range the runs span
    contours = ax.contour(c_grid, n_grid, loss, levels=levels, cmap="magma", linewidths=0.8)
    ax.clabel(contours, fontsize=7, fmt="%.2f")
    optimal = result["compute_optimal"]
    ax.plot(flops, optimal["G"] * (flops / 6) ** optimal["a"], "k--",
            label=f"N_opt ∝ C^{optimal['a']:.3f}")
    ax.scatter(table.flops, table.params, s=10, c="tab:blue", zorder=3, label="runs")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel="parameters", title="iso-loss contours")
    ax.legend()
    return save_figure(fig, path)


def isoflop_figure(table: ResultsTable, result: dict[str, Any], path: Path) -> str:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.scatter(table.params, table.loss, c=np.log10(table.flops), cmap="viridis", s=14)
    used = [b for b in result["budgets"] if "N_opt" in b]
    for budget in used:
        left.plot(budget["N_opt"], budget["loss_at_vertex"], "rv")
    left.set(xscale="log", xlabel="parameters", ylabel="loss", title="IsoFLOP profiles and vertices")
    c = np.array([b["flops"] for b in used])
    right.scatter(c, [b["N_opt"] for b in used], label="N_opt")
    right.plot(c, result["N_coefficient"] * c ** result["a"], "k--", label=f"∝ C^{result['a']:.3f}")
    right.set(xscale="log", yscale="log", xlabel="budget FLOPs", ylabel="N_opt")
    right.legend()
    return save_figure(fig, path)


def downstream_vs_compute(table: ResultsTable, result: dict[str, Any], path: Path) -> str:
    """Figure 2: the metric against compute, its envelope and Q ∝ C^γ, beside the text reference."""
    plt = pyplot()
    scale = 100.0 if result["unit"] == "fraction" else 1.0  # plot in %
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(table.flops, table.metrics[result["metric"]] * scale, s=12, c="lightgrey", label="runs")
    used = [p for p in result["envelope"] if p["used_in_fit"]]
    ax.scatter([p["flops"] for p in result["envelope"]], [p["metric"] * scale for p in result["envelope"]],
               s=22, c="k", label="envelope")
    c = np.geomspace(min(p["flops"] for p in used), max(p["flops"] for p in used), 50)
    ax.plot(c, 100 * np.exp(result["log_coefficient"]) * c ** result["gamma"], "k--",
            label=f"speech γ = {result['gamma']:.3f}")
    reference = (result.get("text_reference") or {}).get("fit")
    if reference:
        fit = reference["fit"]
        text = fit["envelope"]
        ax.scatter([p["flops"] for p in text], [p["metric"] * 100 for p in text], c="tab:red", s=22,
                   label="Pythia (text)")
        fitted = [p["flops"] for p in text if p["used_in_fit"]]
        ct = np.geomspace(min(fitted), max(fitted), 50)
        ax.plot(ct, 100 * np.exp(fit["log_coefficient"]) * ct ** fit["gamma"], "--", color="tab:red",
                label=f"text γ = {fit['gamma']:.3f}")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel=f"{result['metric']} (%)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def downstream_vs_loss(result: dict[str, Any], path: Path) -> str:
    """Figure 4: the metric against test loss with the linear fit before saturation."""
    plt = pyplot()
    fit = result["loss_fit"]
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.scatter(fit["loss"], fit["metric"], s=14)
    x = np.linspace(min(fit["loss"]), max(fit["loss"]), 20)
    ax.plot(x, fit["slope"] * x + fit["intercept"], "k--", label=f"r = {fit['r']:.2f}")
    ax.set(xlabel="test loss", ylabel=result["metric"])
    ax.invert_xaxis()
    ax.legend()
    return save_figure(fig, path)


def fit_figures(table: ResultsTable, result: dict[str, Any], out_dir: Path) -> list[str]:
    """Every figure that applies to this fit; returns the file names."""
    law, names = result["law"], []
    if law in ("chinchilla", "kaplan", "data-constrained"):
        names.append(loss_vs_compute(table, result, out_dir / "loss_vs_compute.png"))
        names.append(predicted_vs_observed(table, result, out_dir / "predicted_vs_observed.png"))
        if "compute_optimal" in result:
            names.append(isoloss(table, result, out_dir / "isoloss.png"))
    elif law == "isoflop":
        names.append(isoflop_figure(table, result, out_dir / "isoflop.png"))
    elif law == "downstream":
        names.append(downstream_vs_compute(table, result, out_dir / f"{result['metric']}_vs_compute.png"))
        if "slope" in result.get("loss_fit", {}):
            names.append(downstream_vs_loss(result, out_dir / f"{result['metric']}_vs_loss.png"))
    return names
