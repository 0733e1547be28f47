"""The main job's wall time, end to end and per stage, from a finished study's study.json.

`make demo` (or `slmscale study --out DIR`) times every stage it runs; this records those
numbers in benchmarks/RESULTS.md beside the machine and the grid, with the time of a rerun
(every stage skipped) measured here. Timing the study itself takes half an hour, so the
script reads the record of a study that ran on this machine instead of running one.

    python benchmarks/study_time.py out/demo [--first-run-note "make demo on a fresh clone"]
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import cpu_model, update_results  # noqa: E402

BEGIN, END = "<!-- study-time:begin -->", "<!-- study-time:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a finished study dir (with study.json)")
    parser.add_argument("--record", type=Path, help="the study.json of the first (full) run, if saved elsewhere")
    parser.add_argument("--note", default="", help="how the first run was made (e.g. `make demo` on a fresh clone)")
    args = parser.parse_args()
    first = json.loads((args.record or args.study / "study.json").read_text())
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "slmscale", "-q", "study", "--out", str(args.study)], check=True,
                   stdout=subprocess.DEVNULL)
    rerun = time.perf_counter() - start
    status = first["sweep"]["status"]
    lines = [BEGIN, "## The tiny study, end to end (`benchmarks/study_time.py`)", "",
             f"{datetime.date.today()}, {cpu_model()}, 2 cores, the default study (configs/study/tiny.yaml): "
             f"{sum(status.values())} runs ({', '.join(f'{n} {s}' for s, n in status.items())}). {args.note}", "",
             "| stage | wall s | share |", "|---|---|---|"]
    total = first["wall_seconds"]
    for name, stage in first["stages"].items():
        lines.append(f"| {name} | {stage['seconds']:.1f} | {stage['seconds'] / total:.0%} |")
    lines += [f"| **all** | **{total:.0f}** ({total / 60:.1f} min; target ≤ 30 min) | 100% |", "",
              f"A rerun of the finished study (every stage skipped), measured in this run: {rerun:.1f} s, "
              f"{total / rerun:.0f}x faster than the first run.", END]
    section = "\n".join(lines) + "\n"
    print(section)
    update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
