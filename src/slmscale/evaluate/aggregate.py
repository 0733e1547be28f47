"""From one score per input to a task's accuracies, following the ZeroSpeech 2021 scorer.

Each trial scores 1 when the positive's score is higher, 0.5 on a tie and 0 otherwise;
a pair's value is the mean over its voices; accuracies are means over pairs (docs/PAPER.md
§6.2). sWUGGY adds frequency bands (0 = out of vocabulary) and lengths, and the in-vocabulary
accuracy the official scorer reports; sBLIMP adds types, subtypes and the macro average
over types that Cuervo & Marxer report as "sBLIMP" (docs/PAPER.md §5.1).

Every accuracy comes with a 95% percentile-bootstrap interval over pairs; the macro's
bootstrap resamples within each type, so every type keeps its weight.

Because the mean per-unit score favours the longer member of a pair (docs/DESIGN.md §5.4),
trials are also split by which side has more tokens: a model that only rewards length
scores near 100% on one split and near 0% on the other.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from slmscale.evaluate.layouts import Task
from slmscale.files import StageError

BANDS = (("oov", 0, 0), ("1-5", 1, 5), ("6-20", 6, 20), ("21-100", 21, 100), (">100", 101, math.inf))
"""sWUGGY's frequency bands over LibriSpeech word counts, as in the official scorer."""
RESAMPLES = 1000


def trial_outcomes(task: Task, scores: dict[str, float]) -> np.ndarray:
    """1 / 0.5 / 0 per trial of `task`; a missing score is an error naming the input."""
    outcomes = np.empty(len(task.trials))
    for i, trial in enumerate(task.trials):
        try:
            pos, neg = scores[trial.positive], scores[trial.negative]
        except KeyError as err:
            raise StageError(f"task {task.name}: no score for {err.args[0]!r}") from None
        outcomes[i] = 1.0 if pos > neg else 0.5 if pos == neg else 0.0
    return outcomes


def pair_values(task: Task, outcomes: np.ndarray) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """The pairs (first-seen order) and each one's mean outcome over its voices."""
    sums: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for trial, outcome in zip(task.trials, outcomes):
        entry = sums[trial.pair]
        entry[0] += outcome
        entry[1] += 1
    pairs = list(sums)
    return pairs, np.array([sums[p][0] / sums[p][1] for p in pairs])


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, strata: list[np.ndarray] | None = None,
                       resamples: int = RESAMPLES) -> list[float]:
    """95% percentile interval of the mean (of stratum means, when `strata` index groups)."""
    if strata is None:
        strata = [np.arange(len(values))]
    means = np.zeros(resamples)
    for index in strata:
        draws = rng.integers(0, len(index), size=(resamples, len(index)))
        means += values[index][draws].mean(axis=1)
    means /= len(strata)
    low, high = np.percentile(means, [2.5, 97.5])
    return [round(float(low), 6), round(float(high), 6)]


def _stat(values: np.ndarray, rng: np.random.Generator, resamples: int) -> dict[str, Any]:
    return {"accuracy": round(float(values.mean()), 6), "ci": bootstrap_interval(values, rng, resamples=resamples),
            "n": int(len(values))}


def _groups(pairs: list[tuple[Any, ...]], label) -> dict[Any, np.ndarray]:
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        groups[label(pair)].append(i)
    return {key: np.array(index) for key, index in groups.items()}


def _length_bias(task: Task, outcomes: np.ndarray, lengths: dict[str, int], rng: np.random.Generator,
                 resamples: int) -> dict[str, Any]:
    """Trial accuracy split by which side has more tokens (n counts trials here)."""
    difference = np.array([lengths[t.positive] - lengths[t.negative] for t in task.trials])
    sides = {"positive_longer": difference > 0, "negative_longer": difference < 0, "same_length": difference == 0}
    return {side: _stat(outcomes[chosen], rng, resamples) if chosen.any() else {"accuracy": None, "n": 0}
            for side, chosen in sides.items()}


def summarize(task: Task, scores: dict[str, float], lengths: dict[str, int] | None = None,
              seed: int = 0, resamples: int = RESAMPLES) -> dict[str, Any]:
    """Accuracy, interval and the task kind's breakdowns for one score per input."""
    rng = np.random.default_rng(seed)
    outcomes = trial_outcomes(task, scores)
    pairs, values = pair_values(task, outcomes)
    overall = _stat(values, rng, resamples)
    result: dict[str, Any] = {"accuracy": overall["accuracy"], "ci": overall["ci"], "n_pairs": len(pairs),
                              "n_trials": len(task.trials), "voices": sorted({t.voice for t in task.trials})}
    attrs = task.pair_attrs
    if task.kind == "lexical":
        frequency = np.array([attrs[p]["frequency"] for p in pairs])
        result["by_frequency"] = {name: _stat(values[(frequency >= low) & (frequency <= high)], rng, resamples)
                                  for name, low, high in BANDS if ((frequency >= low) & (frequency <= high)).any()}
        for name, chosen in (("invocab", frequency > 0), ("oov", frequency == 0)):
            if chosen.any():
                result[name] = _stat(values[chosen], rng, resamples)
        by_length = _groups(pairs, lambda p: int(attrs[p]["length"]))
        result["by_length"] = {str(n): _stat(values[i], rng, resamples) for n, i in sorted(by_length.items())}
    types = _groups(pairs, lambda p: attrs[p].get("type", ""))
    if task.kind == "syntactic" or (task.kind != "lexical" and set(types) != {""}):
        result["by_type"] = {t: _stat(values[i], rng, resamples) for t, i in sorted(types.items())}
        subtypes = _groups(pairs, lambda p: f"{attrs[p].get('type', '')}/{attrs[p].get('subtype', '')}")
        result["by_subtype"] = {s: _stat(values[i], rng, resamples) for s, i in sorted(subtypes.items())}
        ordered = [types[t] for t in sorted(types)]
        result["macro"] = {"accuracy": round(float(np.mean([values[i].mean() for i in ordered])), 6),
                           "ci": bootstrap_interval(values, rng, strata=ordered, resamples=resamples),
                           "types": len(ordered)}
    if lengths is not None:
        result["length_bias"] = _length_bias(task, outcomes, lengths, rng, resamples)
    return result
