"""Speed of the Chinchilla law fit (Hoffmann et al. 2022 Approach 3, as Besiroglu et al. 2024
fit it) on Epoch AI's 240 points: the batched L-BFGS against a plain serial loop of scipy
L-BFGS-B (same tight tolerances, same analytic gradient) over the same starts.

Measures, in one run:
- the full 4,500-start grid fit (`fit_chinchilla`);
- 1,000 bootstrap refits (`bootstrap_chinchilla`, every replicate from the same few starts);
- the serial scipy loop over the same grid starts and the same replicates' starts. When the full
  serial loop would take longer than --serial-budget seconds, a fixed evenly spaced subset is
  timed and the time extrapolated linearly (the report says so).

    python benchmarks/fit_speed.py [--resamples 1000] [--serial-budget 120]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

# One BLAS thread, set before numpy loads: scipy's L-BFGS-B calls BLAS on 5-vectors, and threaded
# OpenBLAS spinning on a shared 2-core machine made each serial fit ~30× slower (measured).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import cpu_model, update_results  # noqa: E402

from slmscale.scaling.chinchilla import (HOFFMANN_GRID, bootstrap_chinchilla,  # noqa: E402
                                         bootstrap_starts, bootstrap_weights, chinchilla_objective,
                                         fit_chinchilla, grid_starts)
from slmscale.scaling.optimize import polish  # noqa: E402
from slmscale.scaling.table import read_table  # noqa: E402

BEGIN, END = "<!-- fit-speed:begin -->", "<!-- fit-speed:end -->"
EPOCH_CSV = Path(__file__).resolve().parents[1] / "tests/data/reference/chinchilla_epoch/svg_extracted_data.csv"


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


SERIAL_MAX_ITER = 1000
"""The serial loop gets the batched optimiser's iteration cap: uncapped, a start in a runaway
valley (E -> 0) runs scipy for tens of thousands of iterations and the comparison measures that."""


def serial_loop(jobs, budget: float) -> tuple[float, int, bool, float]:
    """Time scipy L-BFGS-B (`polish`) over `jobs` = [(fun_and_grad, x0)]; returns (seconds for
    all jobs, jobs actually run, extrapolated?, best objective seen). An evenly spaced 1% probe
    decides whether the whole loop fits in `budget`; if not, an evenly spaced subset sized to
    about budget/4 is timed and scaled up linearly."""
    def spaced(count):
        return [jobs[i] for i in np.unique(np.linspace(0, len(jobs) - 1, count).astype(int))]

    probe = spaced(max(5, len(jobs) // 100))
    _, probe_time = timed(lambda: [polish(f, x0, SERIAL_MAX_ITER) for f, x0 in probe])
    per_job = probe_time / len(probe)
    print(f"  serial probe: {len(probe)} jobs, {per_job * 1000:.1f} ms each", flush=True)
    chosen = jobs if per_job * len(jobs) <= budget else spaced(max(len(probe), int(budget / 4 / per_job)))
    results, seconds = timed(lambda: [polish(f, x0, SERIAL_MAX_ITER) for f, x0 in chosen])
    best = min(float(r.fun) for r in results)
    return seconds * len(jobs) / len(chosen), len(chosen), len(chosen) < len(jobs), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--serial-budget", type=float, default=120.0,
                        help="seconds beyond which a serial loop is timed on a subset and extrapolated")
    args = parser.parse_args()
    table = read_table(EPOCH_CSV, drop_highest_loss=5)
    N, D, loss = table.params, table.tokens, table.loss
    load_before = os.getloadavg()

    fit, grid_1 = timed(fit_chinchilla, N, D, loss)
    assert fit.converged
    print(f"grid fit: {grid_1:.2f} s", flush=True)
    boot, boot_1 = timed(bootstrap_chinchilla, N, D, loss, fit, resamples=args.resamples)
    print(f"bootstrap: {boot_1:.2f} s", flush=True)

    full_objective = chinchilla_objective(N, D, loss)
    grid = grid_starts(HOFFMANN_GRID)
    serial_grid, grid_run, grid_extrapolated, serial_best = serial_loop(
        [(full_objective, x0) for x0 in grid], args.serial_budget)
    print(f"serial grid: {serial_grid:.1f} s ({grid_run} of {len(grid)} run)", flush=True)
    starts = bootstrap_starts(fit)
    weights = bootstrap_weights(len(N), args.resamples, 0)
    boot_jobs = [(chinchilla_objective(N, D, loss, weights=w), x0) for w in weights for x0 in starts]
    serial_boot, boot_run, boot_extrapolated, _ = serial_loop(boot_jobs, args.serial_budget)
    load_after = os.getloadavg()

    def note(extrapolated, run, total):
        return f"timed {run} of {total}, extrapolated linearly" if extrapolated else "full loop"

    rows = [
        ("grid fit, 4,500 starts", grid_1, serial_grid, note(grid_extrapolated, grid_run, len(grid)),
         "< 10 s"),
        (f"bootstrap, {args.resamples} refits × {len(starts)} starts", boot_1, serial_boot,
         note(boot_extrapolated, boot_run, len(boot_jobs)), "< 60 s"),
    ]
    lines = [BEGIN, "## Scaling-law fit speed (`benchmarks/fit_speed.py`)", "",
             f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
             f"- CPU: {cpu_model()}, {os.cpu_count()} cores; batched runs use 1 process; "
             f"numpy elementwise work is single-threaded; OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}",
             f"- Load average (1/5/15 min): before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
             f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}",
             "- Data: Epoch AI's 240 Chinchilla points; summed Huber (δ = 1e-3) in the LSE parametrisation; "
             "serial baseline = scipy L-BFGS-B (ftol 1e-15, gtol 1e-12, analytic gradient, at most "
             f"{SERIAL_MAX_ITER} iterations like the batched one) per start; per-start times are heavy-tailed, "
             "so an extrapolated serial time is rough", "",
             "| task | batched (s) | serial scipy loop (s) | serial | speed-up (serial / batched) | target |",
             "|---|---|---|---|---|---|"]
    for name, batched, serial, how, target in rows:
        lines.append(f"| {name} | {batched:.2f} | {serial:.1f} | {how} | {serial / batched:.1f}× | {target} |")
    lines += ["", f"Grid fit: A = {fit.params['A']:.2f}, B = {fit.params['B']:.1f}, E = {fit.params['E']:.4f}, "
              f"α = {fit.params['alpha']:.4f}, β = {fit.params['beta']:.4f}, summed Huber {fit.objective:.6g}, "
              f"converged {fit.converged} (best objective in the timed serial subset: {serial_best:.6g}). "
              f"Bootstrap: {boot['n_converged']}/{boot['resamples']} replicates converged; "
              f"SE A {boot['A']['se']:.1f}, B {boot['B']['se']:.0f}, E {boot['E']['se']:.4f}, "
              f"α {boot['alpha']['se']:.4f}, β {boot['beta']['se']:.4f}, a {boot['a']['se']:.4f} "
              "(Epoch, 4,000 resamples: 124.52, 1293.28, 0.026, 0.0154, 0.0206, 0.020).", END, ""]
    section = "\n".join(lines)
    print(section)
    update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
