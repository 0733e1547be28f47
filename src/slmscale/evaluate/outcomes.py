"""Per-pair outcomes of a run's headline scoring, and paired differences between two runs.

Two runs' accuracies on the same items are not independent: most items are easy or hard for
both. Their difference is measured on the items they share, bootstrapping items (pairs), so
its interval is far narrower than two separate intervals suggest. eval.json keeps, for every
task, the value of each pair (mean outcome over its voices: 1 / 0.5 / 0) for the model and
for the n-gram baseline, under `pairs`:

    {"keys": ["<type>|<subtype>|<id>", ...], "strata": ["<type>", ...],
     "model": [1.0, 0.5, ...], "baseline": [0.0, ...]}

`strata` is the pair's type, the stratum of sBLIMP's macro average (the headline of a
syntactic task), so a paired macro difference resamples within each type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

PAIRS_KEY = "pairs"
RESAMPLES = 2000


@dataclass(frozen=True)
class PairOutcomes:
    """One run's value per pair of one task (its headline metric in results.csv)."""
    keys: tuple[str, ...]
    """Pair identities, equal across runs scored on the same benchmark."""
    strata: tuple[str, ...]
    """Each pair's type: the strata of a macro average."""
    model: np.ndarray
    """The LM's value per pair."""
    baseline: np.ndarray | None
    """The n-gram baseline's value per pair (None when the run was scored without one)."""
    macro: bool
    """Whether the headline accuracy is the mean over strata (sBLIMP) rather than over pairs."""


def pairs_entry(pairs: list[tuple[Any, ...]], attrs: dict[tuple[Any, ...], dict[str, Any]], model: np.ndarray,
                baseline: np.ndarray | None) -> dict[str, Any]:
    """What eval.json stores under a task's `pairs` (see the module docstring)."""
    entry: dict[str, Any] = {"keys": ["|".join(map(str, pair)) for pair in pairs],
                             "strata": [str(attrs.get(pair, {}).get("type", "")) for pair in pairs],
                             "model": [float(v) for v in model]}
    if baseline is not None:
        entry["baseline"] = [float(v) for v in baseline]
    return entry


def metric_names(benchmarks: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(benchmark, task) -> the task's metric name in results.csv: its base name, prefixed by a
    slug of the benchmark when two benchmarks share the base name."""
    by_base: dict[str, list[tuple[str, str]]] = {}
    for bench_key, bench in benchmarks.items():
        for task_name, entry in bench["tasks"].items():
            by_base.setdefault(entry["metric"], []).append((bench_key, task_name))
    names = {}
    for base, where in by_base.items():
        for bench_key, task_name in where:
            names[(bench_key, task_name)] = (base if len(where) == 1 else
                                             f"{re.sub(r'[^a-z0-9]+', '_', bench_key.lower())}_{base}")
    return names


def pair_outcomes(eval_data: dict[str, Any], metric: str) -> PairOutcomes | None:
    """The pair values behind `metric` (a results.csv column: sblimp, tsc, ...) in an eval.json's
    contents; None when the run has no such task or was scored before pairs were kept.
    `sblimp_pairs` is the same task's mean over pairs."""
    benchmarks = eval_data.get("benchmarks", {})
    macro = True
    wanted = metric
    if "sblimp_pairs" in metric:
        wanted, macro = metric.replace("sblimp_pairs", "sblimp"), False
    for (bench_key, task_name), name in metric_names(benchmarks).items():
        if name != wanted:
            continue
        task = benchmarks[bench_key]["tasks"][task_name]
        stored = task.get(PAIRS_KEY)
        if not stored:
            return None
        baseline = stored.get("baseline")
        return PairOutcomes(keys=tuple(stored["keys"]), strata=tuple(stored["strata"]),
                            model=np.asarray(stored["model"], dtype=float),
                            baseline=None if baseline is None else np.asarray(baseline, dtype=float),
                            macro=macro and task.get("kind") == "syntactic")
    return None


def paired_difference(a: PairOutcomes, b: PairOutcomes, a_values: np.ndarray | None = None,
                      b_values: np.ndarray | None = None, resamples: int = RESAMPLES,
                      seed: int = 0) -> dict[str, Any]:
    """Accuracy of `a` minus accuracy of `b` on the pairs both were scored on, with a 95%
    percentile-bootstrap interval over pairs (within strata for a macro accuracy). The values
    default to each one's model; pass e.g. `a.baseline` to compare with the n-gram."""
    a_values = a.model if a_values is None else a_values
    b_values = b.model if b_values is None else b_values
    index_b = {key: i for i, key in enumerate(b.keys)}
    shared = [(i, index_b[key]) for i, key in enumerate(a.keys) if key in index_b]
    if not shared:
        return {"difference": None, "ci": None, "n": 0}
    ia, ib = (np.array(side) for side in zip(*shared))
    diff = a_values[ia] - b_values[ib]
    strata = np.array([a.strata[i] for i in ia]) if a.macro else np.zeros(len(ia), dtype=int).astype(str)
    groups = [np.flatnonzero(strata == s) for s in sorted(set(strata))]
    rng = np.random.default_rng(seed)
    draws = np.zeros(resamples)
    for group in groups:
        picks = rng.integers(0, len(group), size=(resamples, len(group)))
        draws += diff[group][picks].mean(axis=1)
    draws /= len(groups)
    point = float(np.mean([diff[g].mean() for g in groups]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"difference": round(point, 6), "ci": [round(float(low), 6), round(float(high), 6)], "n": len(ia)}
