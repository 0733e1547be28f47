"""`slmscale eval RUN --benchmark PATH [...]` and `slmscale eval --scores SUBMISSION --benchmark PATH`."""

from __future__ import annotations

import argparse
import json

from slmscale.cli import add_config_arguments, build_config, show_config
from slmscale.files import StageError, write_json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "PATH is a ZeroSpeech 2021 sLM21 tree (lexical|syntactic/<set>/ + gold.csv), a spoken or topic "
        "StoryCloze folder (<2k>_<id>_correct.wav, <2k+1>_<id>_incorrect.wav), a pairs manifest (jsonl: id, "
        "positive, negative paths, type), a folder holding such benchmarks (a synthesized world's "
        "benchmarks/), a units dir `slmscale tokenize` made of an sLM21 lexical|syntactic/<set>/ or StoryCloze "
        "folder with the run's tokenizer (pairs read from that folder, units from the dir), or, for a text-arm "
        "run, a world's benchmarks/ folder of text pairs. Writes RUN/eval.json "
        "(run.json is left as trained); rerunning skips benchmarks already scored.")
    parser.add_argument("run", nargs="?", metavar="RUN", help="a completed run dir (from `slmscale train`)")
    parser.add_argument("--benchmark", action="append", default=[], metavar="PATH", help="benchmark (repeatable)")
    parser.add_argument("--write-scores", metavar="DIR",
                        help="also write ZeroSpeech-style score files (<stem> <score>) under DIR")
    parser.add_argument("--scores", metavar="SUBMISSION",
                        help="score a submission (sLM21 folder with lexical|syntactic/<set>.txt, or one file) "
                             "against --benchmark, with no model")
    parser.add_argument("--set", default="dev", choices=("dev", "test"), help="sLM21 set of --scores (default dev)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="with --scores: score an sLM21 submission that lacks some tasks' <set>.txt, warning "
                             "for each (default: an error naming the missing file)")
    parser.add_argument("--out", metavar="FILE", help="with --scores: also write the JSON report to FILE")
    add_config_arguments(parser)


def _print_metrics(run: str, result: dict) -> None:
    """One line per accuracy, with its item count and the n-gram baseline's accuracy beside it."""
    from slmscale.evaluate.evaluate import ITEM_COUNT_SUFFIX
    metrics = result["metrics"]
    shown = {k: v for k, v in metrics.items() if not k.endswith(("_sum", ITEM_COUNT_SUFFIX)) and not k.startswith("kn")}
    for name, value in shown.items():
        base = next((metrics[k] for k in metrics if k.startswith("kn") and k.split("_", 1)[1] == name), None)
        count = metrics.get(name + ITEM_COUNT_SUFFIX)
        print(f"{run}: {name} {value:.1%}" + (f" of {count:,.0f} items" if count is not None else "")
              + (f" (n-gram baseline {base:.1%})" if base is not None else ""))


def run(args: argparse.Namespace) -> int:
    from slmscale.evaluate.config import EvalConfig
    if args.show_config:
        return show_config(EvalConfig)
    if not args.benchmark:
        raise StageError("give at least one --benchmark PATH (see slmscale eval --help)")
    if args.scores:
        from slmscale.evaluate.submission import score_submission
        if args.run or len(args.benchmark) != 1:
            raise StageError("--scores takes no RUN and exactly one --benchmark")
        report = score_submission(args.scores, args.benchmark[0], args.set, allow_partial=args.allow_partial)
        print(json.dumps(report, indent=1))
        if args.out:
            write_json(args.out, report)
        return 0
    if not args.run:
        raise StageError("give a RUN dir to evaluate, or --scores SUBMISSION")
    if args.allow_partial:
        raise StageError("--allow-partial is for --scores SUBMISSION; a RUN is scored on every task")
    from slmscale.evaluate.evaluate import evaluate_run
    cfg = build_config(EvalConfig, args)
    result = evaluate_run(args.run, args.benchmark, cfg, args.write_scores)
    _print_metrics(args.run, result)
    return 0
