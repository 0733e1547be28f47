"""`evaluate_run(run_dir, benchmarks, cfg)`: zero-shot accuracies of a trained run -> RUN/eval.json.

Every input (audio file or text) is tokenized in the run's vocabulary (inputs.py), scored by
the LM (scoring.py) and, as a baseline, by a Kneser-Ney unit n-gram trained on the run's own
training tokens (ngram.py); pairs are compared and aggregated per task (aggregate.py) for
both the mean and the summed log-likelihood.

eval.json holds one entry per benchmark, each stamped with the run, the benchmark's
content hash and the config: a rerun skips benchmarks already scored and keeps those of
earlier calls, so runs can be evaluated on more benchmarks later. `metrics` flattens the
headline numbers (swuggy, sblimp, ssc, tsc, ...) for the results table, which joins them with
the run record (eval_file.headline_metrics). run.json is never written here: it is the trainer's
(lm/record.py), so evaluating a run leaves it byte for byte as trained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slmscale.config import fingerprint, to_dict
from slmscale.evaluate.aggregate import pair_values, summarize, trial_outcomes
from slmscale.evaluate.config import EvalConfig
from slmscale.evaluate.eval_file import EVAL_FILE
from slmscale.evaluate.inputs import RunVocabulary, completed_record, run_vocabulary, task_sequences
from slmscale.evaluate.layouts import Benchmark, Task
from slmscale.evaluate.outcomes import PAIRS_KEY, metric_names, pairs_entry
from slmscale.evaluate.scoring import token_log_probs
from slmscale.evaluate.units_benchmark import read_eval_benchmarks
from slmscale.files import StageError, read_json, write_json
from slmscale.lm.record import RunRecord
from slmscale.log import get_logger
from slmscale.provenance import git_revision, utc_now, versions

log = get_logger(__name__)

VARIANTS = ("mean", "sum")
EVAL_VERSION = 2
"""Bumped when the scoring or aggregation changes what a stored number means (2: per-pair values
under each task's `pairs`, for paired differences between runs)."""


def file_scores(log_probs: dict[str, np.ndarray], where: str) -> dict[str, dict[str, float]]:
    """Per input: the mean and the sum of its tokens' log-probabilities."""
    scores: dict[str, dict[str, float]] = {"mean": {}, "sum": {}}
    for key, values in log_probs.items():
        if not len(values):
            raise StageError(f"{where}: input {key!r} has no tokens to score (silent or empty?)")
        scores["sum"][key] = float(values.sum())
        scores["mean"][key] = float(values.mean())
    return scores


def metric_base(bench: Benchmark, task: Task) -> str:
    """The flat metric name of a task: swuggy, sblimp, ssc, tsc or a slug of its name."""
    stem = task.name.split("/")[0]
    if task.kind == "lexical":
        base = "swuggy"
    elif task.kind == "syntactic":
        base = "sblimp"
    elif stem.lower() in ("ssc", "story_cloze"):
        base = "ssc"
    elif stem.lower() in ("tsc", "topic_cloze"):
        base = "tsc"
    else:
        base = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "pairs"
    return base + ("_test" if task.set == "test" else "")


ITEM_COUNT_SUFFIX = "_n"
"""`<metric>_n`: the number of items a headline accuracy is measured on, beside it in results.csv.
The downstream law reads it for each score's binomial noise (`scaling/downstream_noise.py`): a
study's own benchmarks are smaller than the public ones whose sizes are the fallback."""


def macro_item_count(by_type: dict[str, dict[str, Any]]) -> float:
    """Effective item count of a mean over T type accuracies: its binomial variance is
    (1/T²)·Σ Q(1−Q)/n_t, that of one accuracy over T²/Σ(1/n_t) items."""
    counts = [entry["n"] for entry in by_type.values()]
    return len(counts) ** 2 / sum(1.0 / n for n in counts)


def task_metrics(base: str, results: dict[str, Any], suffix: str = "") -> dict[str, float]:
    """Headline numbers of one task variant: sBLIMP is the macro over types (the paper's),
    sWUGGY all pairs plus in-vocabulary; with the headline scoring (no `suffix`), each with its
    item count (`ITEM_COUNT_SUFFIX`: the same for every scoring variant)."""
    counts: dict[str, float] = {}
    if base.startswith("sblimp"):
        pairs = base.replace("sblimp", "sblimp_pairs")
        out = {base: results["macro"]["accuracy"], pairs: results["accuracy"]}
        counts = {base: round(macro_item_count(results["by_type"]), 3), pairs: results["n_pairs"]}
    else:
        out, counts = {base: results["accuracy"]}, {base: results["n_pairs"]}
    if "invocab" in results:
        invocab = base.replace("swuggy", "swuggy_invocab")
        out[invocab], counts[invocab] = results["invocab"]["accuracy"], results["invocab"]["n"]
    out = {name + suffix: value for name, value in out.items()}
    if not suffix:
        out.update({name + ITEM_COUNT_SUFFIX: n for name, n in counts.items()})
    return out


class _Scorers:
    """The LM and the n-gram baseline of one run, loaded on first use."""

    def __init__(self, run_dir: Path, record: RunRecord, vocab: RunVocabulary, cfg: EvalConfig, cache: Path):
        self.run_dir, self.record, self.vocab, self.cfg, self.cache = run_dir, record, vocab, cfg, cache
        self._model: Any = None
        self._ngram: Any = None

    def lm(self, sequences: list[np.ndarray]) -> list[np.ndarray]:
        if self._model is None:
            from slmscale.lm.hf import load_pretrained
            device = torch.device("cuda" if self.cfg.device == "cuda" or (
                self.cfg.device == "auto" and torch.cuda.is_available()) else "cpu")
            self._model = load_pretrained(self.run_dir, device)
            bf16 = self.cfg.precision == "bf16" or (self.cfg.precision == "auto" and device.type == "cuda"
                                                     and torch.cuda.is_bf16_supported())
            self._autocast = torch.bfloat16 if bf16 else None
        return token_log_probs(self._model, sequences, self.vocab.eos_id, self.cfg.tokens_per_batch, self._autocast)

    def ngram(self, sequences: list[np.ndarray]) -> list[np.ndarray]:
        if self._ngram is None:
            from slmscale.evaluate.baseline import fitted_ngram
            self._ngram = fitted_ngram(self.vocab, self.record, self.cfg.ngram_order, self.cache)
        bos = np.array([self.vocab.eos_id], dtype=np.int64)
        return self._ngram.token_log_probs([np.concatenate([bos, s]) for s in sequences])


def _score_task(task: Task, scorers: _Scorers, cfg: EvalConfig) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    sequences = task_sequences(task, scorers.vocab, scorers.cache, cfg.workers, cfg.device)
    keys = sorted(sequences)
    lengths = {k: len(sequences[k]) for k in keys}
    arrays = [sequences[k] for k in keys]
    lm_scores = file_scores(dict(zip(keys, scorers.lm(arrays))), task.name)
    entry: dict[str, Any] = {"kind": task.kind, "set": task.set, "inputs": len(keys),
                             "tokens": int(sum(lengths.values()))}
    entry["model"] = {v: summarize(task, lm_scores[v], lengths, cfg.seed, cfg.bootstrap) for v in VARIANTS}
    pairs, model_values = pair_values(task, trial_outcomes(task, lm_scores[cfg.score]))
    baseline_values = None
    if cfg.ngram_order:
        ngram_scores = file_scores(dict(zip(keys, scorers.ngram(arrays))), task.name)
        entry["baseline"] = {"name": f"kn{cfg.ngram_order}",
                             **{v: summarize(task, ngram_scores[v], lengths, cfg.seed, cfg.bootstrap)
                                for v in VARIANTS}}
        baseline_values = pair_values(task, trial_outcomes(task, ngram_scores[cfg.score]))[1]
    entry[PAIRS_KEY] = pairs_entry(pairs, task.pair_attrs, model_values, baseline_values)
    return entry, lm_scores[cfg.score]


def flat_metrics(benchmarks: dict[str, Any], cfg: EvalConfig) -> dict[str, float]:
    """All benchmarks' headline numbers; a name two benchmarks share gets their names as prefix."""
    metrics: dict[str, float] = {}
    for (bench_key, task_name), name in sorted(metric_names(benchmarks).items(), key=lambda item: item[1]):
        entry = benchmarks[bench_key]["tasks"][task_name]
        for variant in VARIANTS:
            suffix = "" if variant == cfg.score else f"_{variant}"
            metrics.update(task_metrics(name, entry["model"][variant], suffix))
            if "baseline" in entry:
                prefix = entry["baseline"]["name"] + "_"
                metrics.update({prefix + k: v for k, v in
                                task_metrics(name, entry["baseline"][variant], suffix).items()})
    return metrics


def evaluate_run(run_dir: str | Path, benchmark_paths: list[str | Path], cfg: EvalConfig,
                 write_scores: str | Path | None = None) -> dict[str, Any]:
    """Score a completed run on the benchmarks; returns eval.json's contents."""
    run_dir = Path(run_dir)
    record = completed_record(run_dir, "evaluated")
    vocab = run_vocabulary(run_dir, record)
    benchmarks = [b for path in benchmark_paths for b in read_eval_benchmarks(path, vocab)]
    if not benchmarks:
        raise StageError("eval needs at least one --benchmark PATH")
    keys = [b.name for b in benchmarks]
    if len(set(keys)) != len(keys):
        raise StageError(f"two benchmarks share the name {max(keys, key=keys.count)!r}: evaluate them in separate calls")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cache = cfg.cache()
    eval_path = run_dir / EVAL_FILE
    previous = read_json(eval_path) if eval_path.is_file() else {}
    stored = previous.get("benchmarks", {}) if previous.get("run_fingerprint") == record.fingerprint else {}
    scorers = _Scorers(run_dir, record, vocab, cfg, cache)
    results = dict(stored)
    for bench in benchmarks:
        stamp = fingerprint({"run": record.fingerprint, "content": bench.content_hash,
                             "config": to_dict(cfg), "version": EVAL_VERSION})
        if stored.get(bench.name, {}).get("stamp") == stamp and write_scores is None:
            log.info("%s: already scored on %s; skipping", run_dir, bench.name)
            continue
        entry: dict[str, Any] = {"path": bench.path, "layout": bench.layout, "files": bench.files,
                                 "content_hash": bench.content_hash, "stamp": stamp, "git_revision": git_revision(),
                                 "created": utc_now(), "tasks": {}}
        file_level: dict[str, dict[str, float]] = {}
        for task in bench.tasks:
            log.info("scoring %s %s: %d pairs, %d trials", bench.name, task.name,
                     len({t.pair for t in task.trials}), len(task.trials))
            entry["tasks"][task.name], file_level[task.name] = _score_task(task, scorers, cfg)
            entry["tasks"][task.name]["metric"] = metric_base(bench, task)
        results[bench.name] = entry
        if write_scores is not None:
            from slmscale.evaluate.submission import write_submission
            write_submission(Path(write_scores), bench, file_level, run_dir)
    out = {"run": str(run_dir.resolve()), "run_fingerprint": record.fingerprint,
           "params": record.params, "tokens": record.tokens, "test_loss": record.test_loss,
           "eval_version": EVAL_VERSION, "config": to_dict(cfg), "git_revision": git_revision(),
           "versions": versions(), "updated": utc_now(), "benchmarks": results,
           "metrics": flat_metrics(results, cfg)}
    write_json(eval_path, out)
    return out
