"""The report's PNG figures, after Figures 1–5 of Cuervo & Marxer 2024, drawn from
the results tables and the JSON numbers of `analysis` (matplotlib Agg, written through a temporary
name and renamed by `slmscale.scaling.figures`, whose iso-loss figure the report reuses).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.report.runs import SINGLE_EPOCH, VariantRuns
from slmscale.scaling.figures import pyplot, save_figure

SPEECH, TEXT, PYTHIA = "tab:blue", "tab:orange", "tab:red"
VARIANT_COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _panels(count: int, width: float = 4.4):
    plt = pyplot()
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, 3.8 * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:count])


def _quiet_minor_ticks(axes) -> None:
    """No labels on the minor ticks of log x axes (compute spans decades; the labels crowd the panels
    and dominate the drawing time). y keeps them: a score's range is often under one decade, where
    the minor ticks are the only labelled ones."""
    from matplotlib.ticker import FormatStrFormatter, NullFormatter
    for ax in axes:
        ax.xaxis.set_minor_formatter(NullFormatter())
        low, high = ax.get_ylim()
        if ax.get_yscale() == "log" and 0 < low and high < 10 * low:  # plain numbers, not 6×10¹
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))


def _scale(fit: dict[str, Any]) -> float:
    """Metric values in the results are fractions or percent; plot percent."""
    return 100.0 if fit.get("unit", "fraction") == "fraction" else 1.0


def _power_law(ax, fit: dict[str, Any], color: str, label: str) -> None:
    """The envelope of a downstream_scaling result and its fitted Q = k·C^γ (in %)."""
    scale = _scale(fit)
    points = fit["envelope"]
    ax.scatter([p["flops"] for p in points], [p["metric"] * scale for p in points], s=26, facecolors="none",
               edgecolors=color, linewidths=1.2)
    used = [p["flops"] for p in points if p["used_in_fit"]]
    c = np.geomspace(min(used), max(used), 40)
    ax.plot(c, 100 * np.exp(fit["log_coefficient"]) * c ** fit["gamma"], "--", color=color,
            label=f"{label}: γ = {fit['gamma']:.3f}")


def loss_vs_compute(variant: VariantRuns, env: dict[str, Any], path: Path) -> str:
    """Figure 1: test loss against compute, one line per size over its token budgets, the envelope of
    min loss per FLOP and its power law."""
    plt = pyplot()
    table = variant.single_epoch()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sizes = np.unique(table.params)
    cmap = plt.get_cmap("viridis")
    for i, n in enumerate(sizes):
        runs = np.flatnonzero(table.params == n)
        runs = runs[np.argsort(table.flops[runs])]
        ax.plot(table.flops[runs], table.loss[runs], "o-", ms=3, lw=1,
                color=cmap(i / max(len(sizes) - 1, 1)), label=f"N = {n:.3g}")
    if "gamma" in env:
        ax.scatter(env["flops"], env["loss"], c="k", s=22, zorder=4, label="min loss per FLOP")
        c = np.geomspace(min(env["flops"]), max(env["flops"]), 40)
        ax.plot(c, np.exp(env["log_coefficient"]) * c ** env["gamma"], "k--", lw=1.2,
                label=f"L ∝ C^{env['gamma']:.3f}")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs (6ND)", ylabel="test loss (nats/token)",
           title=f"{variant.name}: test loss against compute")
    ax.legend(fontsize=7, ncol=2)
    _quiet_minor_ticks([ax])
    return save_figure(fig, path)


def downstream_vs_compute(main: VariantRuns, main_fits: dict, text: VariantRuns | None, text_fits: dict,
                          pythia: dict | None, metrics: list[str], path: Path) -> str:
    """Figure 2: each metric against compute with the fitted envelope, beside the text arm of the same
    world and, for sBLIMP, Pythia's BLiMP."""
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        fit = main_fits[metric]
        table = main.metric_table(metric)
        ax.scatter(table.flops, table.metrics[metric] * _scale(fit), s=10, c=SPEECH, alpha=0.35)
        _power_law(ax, fit, SPEECH, f"speech ({main.name})")
        other = text_fits.get(metric, {})
        if text is not None and "gamma" in other:
            runs = text.metric_table(metric)
            ax.scatter(runs.flops, runs.metrics[metric] * _scale(other), s=10, c=TEXT, alpha=0.35)
            _power_law(ax, other, TEXT, f"text ({text.name})")
        if pythia and metric.startswith("sblimp"):
            _power_law(ax, pythia["fit"], PYTHIA, "Pythia BLiMP")
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel=f"{metric} (%)", title=metric)
        ax.legend(fontsize=7)
    _quiet_minor_ticks(fig.axes)
    fig.tight_layout()
    return save_figure(fig, path)


def corpus_comparison(variants: list[VariantRuns], matched: dict[str, list], metrics: list[str],
                      path: Path) -> str:
    """Figure 3: each corpus's runs at equal token budgets, loss and metrics against model size."""
    names = ["loss", *metrics]
    fig, axes = _panels(len(names))
    for ax, name in zip(axes, names):
        for color, variant in zip(VARIANT_COLORS, variants):
            keys = set(map(tuple, matched[variant.name]))
            table = variant.table
            chosen = np.array([(n, d) in keys for n, d in zip(table.params.tolist(), table.tokens.tolist())])
            values = table.loss if name == "loss" else table.metrics.get(name)
            if values is None:
                continue
            for budget in np.unique(table.tokens[chosen]):
                runs = np.flatnonzero(chosen & (table.tokens == budget) & np.isfinite(values))
                runs = runs[np.argsort(table.params[runs])]
                scale = 1.0 if name == "loss" or np.nanmax(values) > 1 else 100.0
                ax.plot(table.params[runs], values[runs] * scale, "o-", color=color, ms=4,
                        label=f"{variant.corpus} (D = {budget:.3g})")
        ax.set(xscale="log", xlabel="parameters", ylabel="test loss (own test set)" if name == "loss"
               else f"{name} (%)", title=name)
        ax.legend(fontsize=7)
    _quiet_minor_ticks(fig.axes)
    fig.tight_layout()
    return save_figure(fig, path)


def downstream_vs_loss(pairs: list[tuple[VariantRuns, dict, str]], metrics: list[str], path: Path) -> str:
    """Figure 4: each metric against test loss with the linear fit before saturation, speech and text."""
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for variant, fits, color in pairs:
            fit = fits.get(metric, {})
            line = fit.get("loss_fit", {})
            if "slope" not in line:
                continue
            table = variant.metric_table(metric)
            scale = _scale(fit)
            ax.scatter(table.loss, table.metrics[metric] * scale, s=12, c=color, alpha=0.6)
            x = np.linspace(min(line["loss"]), max(line["loss"]), 20)
            ax.plot(x, (line["slope"] * x + line["intercept"]) * scale, "--", color=color,
                    label=f"{variant.name} ({variant.modality}): r = {line['r']:.2f}")
        ax.set(xlabel="test loss (nats/token)", ylabel=f"{metric} (%)", title=metric)
        ax.invert_xaxis()
        ax.legend(fontsize=7)
    _quiet_minor_ticks(fig.axes)
    fig.tight_layout()
    return save_figure(fig, path)


def tokenizers(pair: list[VariantRuns], fits: dict[str, dict], metrics: list[str], path: Path,
               with_loss: bool = True) -> str:
    """Figure 5: raw units against the other tokenizer, loss in bits per second of audio (nats per
    token differ in what a token is) and each metric against compute."""
    names = ["loss", *metrics] if with_loss else list(metrics)
    fig, axes = _panels(len(names))
    for ax, name in zip(axes, names):
        for color, variant in zip(VARIANT_COLORS, pair):
            label = f"{variant.name} ({variant.tokenizer})"
            if name == "loss":
                single = variant.table.epochs <= SINGLE_EPOCH
                bits = variant.bits_per_second
                keep = single & np.isfinite(bits)
                ax.scatter(variant.table.flops[keep], bits[keep], s=12, c=color, label=label)
                continue
            fit = fits[variant.name].get(name, {})
            if "gamma" not in fit:
                continue
            table = variant.metric_table(name)
            ax.scatter(table.flops, table.metrics[name] * _scale(fit), s=10, c=color, alpha=0.35)
            _power_law(ax, fit, color, label)
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs",
               ylabel="test loss (bits/s of audio)" if name == "loss" else f"{name} (%)", title=name)
        ax.legend(fontsize=7)
    _quiet_minor_ticks(fig.axes)
    fig.tight_layout()
    return save_figure(fig, path)


def repeated_data(variant: VariantRuns, fit: dict[str, Any], path: Path) -> str:
    """The data-constrained law (like the paper's Table 5 fits): per model size with repeated runs,
    loss against training tokens at the repeated runs' unique-token count U, the law's prediction
    (solid) beside the base law with every token fresh (dashed): the gap is what repetition costs."""
    from slmscale.scaling.data_constrained import data_constrained_loss
    plt = pyplot()
    table = variant.table
    repeated = table.epochs > SINGLE_EPOCH
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sizes = np.unique(table.params[repeated])
    cmap = plt.get_cmap("viridis")
    for i, n in enumerate(sizes):
        color = cmap(i / max(len(sizes) - 1, 1))
        runs = np.flatnonzero((table.params == n) & repeated)
        # The most common unique-token count of this size's repeated runs: one curve per size.
        values, counts = np.unique(table.unique_tokens[runs], return_counts=True)
        unique = float(values[np.argmax(counts)])
        runs = runs[table.unique_tokens[runs] == unique]
        ax.scatter(table.tokens[runs], table.loss[runs], color=color, s=22, label=f"N = {n:.3g}, U = {unique:.3g}")
        d = np.geomspace(unique, table.tokens[runs].max(), 40)
        ax.plot(d, data_constrained_loss(fit["params"], np.full_like(d, n), d, np.full_like(d, unique)), "-",
                color=color, lw=1.2)
        ax.plot(d, data_constrained_loss(fit["params"], np.full_like(d, n), d, d), "--", color=color, lw=0.8)
    ax.set(xscale="log", xlabel="training tokens D (repeats counted)", ylabel="test loss (nats/token)",
           title=f"{variant.name}: repeated data (solid: data-constrained law; dashed: all tokens fresh)")
    ax.legend(fontsize=7)
    _quiet_minor_ticks([ax])
    return save_figure(fig, path)
