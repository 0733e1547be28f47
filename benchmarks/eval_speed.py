"""Zero-shot evaluation throughput: pairs per second of `slmscale eval` on CPU.

Measures, in one run, for each model size:
- cold: a first evaluation, which extracts features and units of every benchmark file
  (the baseline of the ratios);
- warm: the same benchmark evaluated again with the same tokenizer (by any run of it): it reads
  the cached units (the issue's check: no feature extraction) and only scores;
- the split of the warm time between the LM and the n-gram baseline.

By default it builds everything it needs: a corpus of speech-like audio, a tokenizer, a
run of the size trained for one update (scoring speed does not depend on the weights),
and an sLM21 tree of synthetic pairs. `--run RUN --benchmark PATH` measures a real run
and benchmark instead (e.g. the built-in world's), with a fresh cache.

    python benchmarks/eval_speed.py [--sizes tiny-L4 tiny-L5] [--pairs 200] [--threads 2]
    python benchmarks/eval_speed.py --run RUN --benchmark out/demo/speech/benchmarks
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import cpu_model, update_results  # noqa: E402

from slmscale.audio.fixtures import make_speech_corpus  # noqa: E402
from slmscale.evaluate.config import EvalConfig  # noqa: E402
from slmscale.evaluate.evaluate import evaluate_run  # noqa: E402
from slmscale.evaluate.fixtures import FakeTrial, make_slm21  # noqa: E402
from slmscale.lm.config import TrainConfig  # noqa: E402
from slmscale.lm.trainer import train  # noqa: E402
from slmscale.units.config import TokenizerConfig  # noqa: E402
from slmscale.units.tokenize import tokenize_corpus  # noqa: E402
from slmscale.units.tokenizer import train_tokenizer  # noqa: E402

BEGIN, END = "<!-- eval-speed:begin -->", "<!-- eval-speed:end -->"


def build_units(root: Path) -> Path:
    corpus = make_speech_corpus(root / "corpus", utterances=60, seconds=3.0, held_out=5)
    train_tokenizer(corpus, root / "tok", TokenizerConfig(k=200, frames_sample=20000, workers=1))
    tokenize_corpus(corpus, root / "tok", root / "units", workers=1)
    return root / "units"


def build_benchmark(root: Path, pairs: int) -> Path:
    """sLM21 with `pairs` lexical (0.6 s) and `pairs` syntactic (2 s) pairs, two voices each."""
    voices = ("a", "b")
    bench = root / "sLM21"
    make_slm21(bench, [FakeTrial(str(i), "win", voice=v, frequency=i % 50, length=4)
                       for i in range(pairs) for v in voices], [], seconds=0.6)
    make_slm21(bench, [], [FakeTrial(str(i), "win", voice=v, type=f"t{i % 4}", subtype="s")
                           for i in range(pairs) for v in voices], seed=1, seconds=2.0)
    return bench


def counts(result: dict) -> tuple[int, int]:
    """(pairs, trials) of an evaluation."""
    tasks = [task["model"]["mean"] for bench in result["benchmarks"].values() for task in bench["tasks"].values()]
    return sum(t["n_pairs"] for t in tasks), sum(t["n_trials"] for t in tasks)


def _timed(run: Path, benchmark: Path, cfg: EvalConfig) -> tuple[float, dict]:
    (run / "eval.json").unlink(missing_ok=True)
    start = time.perf_counter()
    result = evaluate_run(run, [benchmark], cfg)
    return time.perf_counter() - start, result


def measure(run: Path, benchmark: Path, work: Path, threads: int, repeats: int = 2) -> dict:
    """Cold once (fresh cache), then warm and LM-only, best of `repeats` (the machine is shared)."""
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    cfg = EvalConfig(cache_dir=str(cache), threads=threads, bootstrap=200)
    copy = work / "run-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("eval.json", "checkpoint"))
    cold, result = _timed(copy, benchmark, cfg)
    warm = min(_timed(copy, benchmark, cfg)[0] for _ in range(repeats))
    lm_only = min(_timed(copy, benchmark, replace(cfg, ngram_order=0))[0] for _ in range(repeats))
    pairs, trials = counts(result)
    return {"pairs": pairs, "trials": trials, "cold": cold, "warm": warm, "lm_only": lm_only,
            "metrics": result["metrics"]}


def render(rows: list[tuple[str, str, dict]], threads: int, note: str, started: float) -> str:
    load = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    lines = [BEGIN, "## Zero-shot evaluation speed (`benchmarks/eval_speed.py`)", "",
             f"{datetime.date.today()}, {cpu_model()}, torch {torch.__version__}, {threads} threads, "
             f"load average {load} at the end, {time.perf_counter() - started:.0f} s in all. {note}", "",
             "A pair is scored in every voice (a trial each). Cold = the first evaluation (features, units, "
             "LM and 5-gram scoring, after a warm-up that loads the libraries); warm = the same benchmark "
             "again with the same tokenizer (cached units: no feature extraction), best of 2; LM-only = warm "
             "without the 5-gram baseline, best of 2. warm/cold is the speed-up the cache gives.", "",
             "| run | params | pairs (trials) | cold pairs/s | warm pairs/s | warm/cold | LM-only pairs/s |",
             "|---|---|---|---|---|---|---|"]
    for name, params, m in rows:
        lines.append(f"| {name} | {params} | {m['pairs']:,} ({m['trials']:,}) | {m['pairs'] / m['cold']:,.1f} | "
                     f"{m['pairs'] / m['warm']:,.1f} | {m['cold'] / m['warm']:.1f}x | "
                     f"{m['pairs'] / m['lm_only']:,.1f} |")
    return "\n".join(lines + [END]) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run (default: build one per --sizes)")
    parser.add_argument("--benchmark", type=Path, help="with --run: the benchmark to evaluate it on")
    parser.add_argument("--sizes", nargs="+", default=["tiny-L4", "tiny-L5"])
    parser.add_argument("--pairs", type=int, default=200, help="synthetic pairs per task")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    import json
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.run:
            record = json.loads((args.run / "run.json").read_text())
            m = measure(args.run, args.benchmark, work, args.threads)
            rows.append((f"{record['config']['size']} ({args.run.name})", f"{record['params']['total'] / 1e6:.2f}M", m))
            note = f"Run {args.run}, benchmark {args.benchmark}."
        else:
            units = build_units(work / "data")
            bench = build_benchmark(work / "bench", args.pairs)
            # Untimed warm-up: imports, the tokenizer's worker start and torch's first kernels.
            train(units, work / "warm-up", TrainConfig(size="tiny-L1", tokens=256, context=32, tokens_per_update=256,
                                                       eval_every=0))
            measure(work / "warm-up", build_benchmark(work / "warm-up-bench", 4), work, args.threads, repeats=1)
            for size in args.sizes:
                run = work / size
                record = train(units, run, TrainConfig(size=size, tokens=4096, context=256, eval_every=0,
                                                       threads=args.threads))
                m = measure(run, bench, work, args.threads)
                rows.append((size, f"{record['params']['total'] / 1e6:.2f}M", m))
                print(size, {k: v for k, v in m.items() if k != "metrics"}, flush=True)
            note = (f"Synthetic sLM21 tree: {args.pairs} lexical (0.6 s) + {args.pairs} syntactic (2 s) pairs in "
                    "2 voices of speech-like tones, MFCC k=200 units.")
    section = render(rows, args.threads, note, started)
    print(section)
    if not args.no_write:
        update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
