"""The main job's wall time, end to end and per stage, and its findings, from finished studies.

`make demo` (or `slmscale study --out DIR`) times every stage it runs; this records those
numbers in benchmarks/RESULTS.md beside the machine and the grid, with the time of a rerun
(every stage skipped) measured here, and the Findings of every study given (e.g. the demo and
the same study with other world seeds): verdict and numbers as the report computed them. Timing
a study takes half an hour, so the script reads the records of studies that ran on this machine.

    python benchmarks/study_time.py out/demo [out/seed1 ...] [--note "make demo on a fresh clone"]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import cpu_model, update_results  # noqa: E402

BEGIN, END = "<!-- study-time:begin -->", "<!-- study-time:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a finished study dir (with study.json)")
    parser.add_argument("others", type=Path, nargs="*", help="more finished studies (e.g. other world seeds)")
    parser.add_argument("--record", type=Path, help="the study.json of the first (full) run, if saved elsewhere")
    parser.add_argument("--note", default="", help="how the first run was made (e.g. `make demo` on a fresh clone)")
    args = parser.parse_args()
    first = json.loads((args.record or args.study / "study.json").read_text())
    start = time.perf_counter()
    # With the study's own resolved config, so a study made with overrides (world.seed=1) reruns as itself.
    subprocess.run([sys.executable, "-m", "slmscale", "-q", "study", "--out", str(args.study),
                    "--config", str(args.study / "study.yaml")], check=True, stdout=subprocess.DEVNULL)
    rerun = time.perf_counter() - start
    status = first["sweep"]["status"]
    lines = [BEGIN, "## The tiny study, end to end (`benchmarks/study_time.py`)", "",
             f"{datetime.date.today()}, {cpu_model()}, 2 cores, `{args.study.name}` (its study.yaml): "
             f"{sum(status.values())} runs ({', '.join(f'{n} {s}' for s, n in status.items())}). {args.note}", "",
             "| stage | wall s | share |", "|---|---|---|"]
    total = first["wall_seconds"]
    for name, stage in first["stages"].items():
        lines.append(f"| {name} | {stage['seconds']:.1f} | {stage['seconds'] / total:.0%} |")
    lines += [f"| **all** | **{total:.0f}** ({total / 60:.1f} min; target ≤ 30 min) | 100% |", "",
              f"A rerun of the finished study (every stage skipped), measured in this run: {rerun:.1f} s, "
              f"{total / rerun:.0f}x faster than the first run.", ""]
    lines += findings_lines(args.study, first)  # its study.json now holds the rerun's record
    for study in args.others:
        lines += findings_lines(study, json.loads((study / "study.json").read_text()))
    lines.append(END)
    section = "\n".join(lines) + "\n"
    print(section)
    update_results(section, BEGIN, END)


def findings_lines(study: Path, record: dict) -> list[str]:
    """One study's wall time and precision (from its first run's `record`), seed, and its report's
    Findings as a table."""
    from slmscale.lm.plan import cpu_has_native_bf16
    report = json.loads((study / "report" / "report.json").read_text())
    config = yaml.safe_load((study / "study.yaml").read_text()) or {}
    seed = (config.get("world") or {}).get("seed", 0)
    verdicts = {True: "HOLDS", False: "DOES NOT HOLD", None: "NOT MEASURABLE"}
    lines = [f"**World seed {seed}** (`{study.name}`): {record['wall_seconds'] / 60:.1f} min from scratch, every run "
             f"in {record.get('precision') or '?'} (native bf16 on this CPU: {'yes' if cpu_has_native_bf16() else 'no'}).",
             "", "| finding | verdict | numbers |", "|---|---|---|"]
    for item in report.get("findings", []):
        why = f" (not measurable: {item['why']})" if item["holds"] is None else ""
        lines.append(f"| {item['id']} | {verdicts[item['holds']]} | {item['text'].replace('|', '/')}{why} |")
    return lines + [""]


if __name__ == "__main__":
    main()
