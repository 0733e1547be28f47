"""ZeroSpeech-style score files: one `<file stem> <score>` line per file (docs/PAPER.md §6.4).

`score_submission` scores such files against a benchmark with no model, so results of
other toolkits (or of the official submission format) are aggregated by the same code;
`write_submission` writes a run's scores in that format, to be checked with the official
ZeroSpeech scorer. An sLM21 submission is a folder with `lexical/<set>.txt` and
`syntactic/<set>.txt`, both required unless `allow_partial`; a StoryCloze folder or pairs
manifest takes one file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from slmscale.evaluate.aggregate import summarize
from slmscale.evaluate.layouts import SLM21_TASKS, Benchmark, Task, read_benchmark
from slmscale.files import StageError, write_text
from slmscale.log import get_logger

log = get_logger(__name__)

TASK_KEYS = {"lexical": "lexical", "syntactic": "syntactic", "storycloze": "storycloze", "pairs": "pairs"}


def read_scores(path: Path, expected: set[str]) -> dict[str, float]:
    """The scores of a file, which must name every expected stem exactly once."""
    if not path.is_file():
        raise StageError(f"{path}: score file not found")
    scores: dict[str, float] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}:{number}"
        if len(fields) != 2:
            raise StageError(f"{where}: expected '<file stem> <score>', got {line.strip()!r}")
        stem, text = fields
        try:
            score = float(text)
        except ValueError:
            raise StageError(f"{where}: score {text!r} of {stem!r} is not a number") from None
        if math.isnan(score):
            raise StageError(f"{where}: score of {stem!r} is NaN")
        if stem in lines:
            raise StageError(f"{where}: {stem!r} is scored twice (first on line {lines[stem]})")
        if stem not in expected:
            raise StageError(f"{where}: {stem!r} is not a file of the benchmark")
        scores[stem] = score
        lines[stem] = number
    missing = sorted(expected - set(scores))
    if missing:
        raise StageError(f"{path}: no score for {len(missing)} file(s) of the benchmark, e.g. "
                         f"{', '.join(missing[:5])}")
    return scores


def compact(task: Task, summary: dict[str, Any]) -> dict[str, Any]:
    """The per-task numbers of a score report (full breakdowns stay in eval.json)."""
    out: dict[str, Any] = {"accuracy": summary["accuracy"], "ci": summary["ci"], "n_pairs": summary["n_pairs"]}
    if task.kind == "lexical":
        out["by_frequency"] = {band: s["accuracy"] for band, s in summary["by_frequency"].items()}
        out.update({k: summary[k]["accuracy"] for k in ("invocab", "oov") if k in summary})
        out["by_length"] = {n: s["accuracy"] for n, s in summary["by_length"].items()}
    if "by_type" in summary:
        out["by_type"] = {t: s["accuracy"] for t, s in summary["by_type"].items()}
        out["macro"] = summary["macro"]["accuracy"]
        out["macro_ci"] = summary["macro"]["ci"]
    return out


def _single(path: str | Path) -> Benchmark:
    benches = read_benchmark(path, "audio")
    if len(benches) != 1:
        raise StageError(f"{path}: holds {len(benches)} benchmarks ({', '.join(b.name for b in benches)}); "
                         "score a submission against one of them")
    return benches[0]


def _slm21_present(submission: Path, bench: Benchmark, set_name: str, allow_partial: bool,
                   report: dict[str, Any]) -> tuple[list[Task], dict[str, Path]]:
    """The tasks of `set_name` the submission has a score file for. Every task the benchmark holds
    for the set (the sLM21 layout: lexical/<set>.txt and syntactic/<set>.txt) must have one: a
    report of lexical alone would pass for the whole submission's. `allow_partial` scores what is
    there, warning once per missing file and listing them under `missing`."""
    tasks = [t for t in bench.tasks if t.set == set_name]
    if not tasks:
        raise StageError(f"{bench.path}: the benchmark has no {set_name!r} set "
                         f"(no lexical|syntactic/{set_name}/gold.csv); try --set "
                         f"{' or --set '.join(sorted({t.set for t in bench.tasks}))}")
    files = {t.name: submission / f"{t.name}.txt" for t in tasks}
    present = [t for t in tasks if files[t.name].is_file()]
    missing = [files[t.name] for t in tasks if t not in present]
    if not present:
        raise StageError(f"{submission}: no score file for set {set_name!r} (expected "
                         f"{' and '.join(str(f) for f in files.values())})")
    if missing and not allow_partial:
        raise StageError(f"{missing[0]}: score file missing ({len(present)} of {len(tasks)} tasks of set "
                         f"{set_name!r} present); add it, or pass --allow-partial to score only the others")
    for path in missing:
        log.warning("PARTIAL SUBMISSION: %s is missing; task %s NOT scored", path,
                    path.relative_to(submission).with_suffix(""))
    if missing:
        report["missing"] = [str(path) for path in missing]
    for kind in SLM21_TASKS:  # a score file the benchmark has no gold for is not scored: say so
        extra = submission / kind / f"{set_name}.txt"
        if f"{kind}/{set_name}" not in files and extra.is_file():
            log.warning("%s: not scored, the benchmark %s has no %s/%s/gold.csv", extra, bench.path, kind, set_name)
    return present, files


def score_submission(submission: str | Path, benchmark: str | Path, set_name: str = "dev",
                     seed: int = 0, allow_partial: bool = False) -> dict[str, Any]:
    """Accuracies of a score file (or sLM21 folder of them) on `benchmark`, keyed by task;
    `allow_partial`: an sLM21 submission may lack some tasks' files (see `_slm21_present`)."""
    submission = Path(submission)
    if not submission.exists():
        raise StageError(f"{submission}: no such submission file or folder")
    bench = _single(benchmark)
    report: dict[str, Any] = {"benchmark": bench.path, "content_hash": bench.content_hash, "set": set_name,
                              "submission": str(submission.resolve())}
    if bench.layout == "sLM21":
        if not submission.is_dir():
            raise StageError(f"{submission}: an sLM21 submission is a folder (lexical/<set>.txt, "
                             "syntactic/<set>.txt), not a file")
        present, files = _slm21_present(submission, bench, set_name, allow_partial, report)
    else:
        present = bench.tasks
        if submission.is_dir():
            raise StageError(f"{submission}: a {bench.layout} benchmark takes one score file, not a folder")
        files = {present[0].name: submission}
    for task in present:
        scores = read_scores(files[task.name], set(task.inputs))
        report[TASK_KEYS[task.kind]] = compact(task, summarize(task, scores, seed=seed))
    return report


def write_submission(out_dir: Path, bench: Benchmark, scores: dict[str, dict[str, float]], run_dir: Path) -> None:
    """Write a run's per-file scores for `bench` under `out_dir` in the layout above."""
    for task in bench.tasks:
        lines = "".join(f"{key} {score!r}\n" for key, score in sorted(scores[task.name].items()))
        if bench.layout == "sLM21":
            write_text(out_dir / bench.name / f"{task.name}.txt", lines)
        else:
            write_text(out_dir / (f"{bench.name}.txt" if len(bench.tasks) == 1 else f"{bench.name}/{task.name}.txt"),
                       lines)
    if bench.layout == "sLM21":
        meta = {"author": "slmscale", "affiliation": "", "description": f"slmscale run {run_dir.resolve()}",
                "open_source": True, "train_set": "", "gpu_budget": 0,
                "parameters": {"semantic": {"metric": "cosine", "pooling": "mean"}}}
        write_text(out_dir / bench.name / "meta.yaml", yaml.safe_dump(meta, sort_keys=False))
