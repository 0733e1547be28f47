"""LM training speed: tokens/s and MFU of slmscale's Llama beside transformers' Llama.

Measures, in one run: the matmul peak of this CPU (a large square product on all
threads, fp32 and bf16), then full training steps (forward, summed next-token
cross entropy, backward, gradient clip 1.0, AdamW step, zero_grad) of
`slmscale.lm.model.Llama` and of `transformers.LlamaForCausalLM` built with the same
shape, in fp32 and under bf16 autocast, for a few sizes of the tiny ladder at each
size's preset batch. The two models' steps are interleaved so that other jobs on
the machine slow both down alike; the median step time is reported.

MFU = tokens/s x FLOPs/token / peak, with FLOPs/token = 6 N_total + 12 L d T
(`flops_per_token(shape, with_attention=True)`). The speed of this shared machine
drifts by 10-20% within seconds (a 2048^3 product ran at 120-151 GFLOP/s in one
minute), so a peak measured once and steps measured minutes later do not divide
fairly: every timed step is bracketed by short fp32 peak probes, and its MFU is
taken against the mean of the two probes around it (the median over steps is
reported). The MFU against the best peak of the whole run, a lower bound, is
reported beside it. Targets (issue 4): slmscale at least as fast as transformers,
and MFU >= 60% of the fp32 peak from 3M parameters. Paper presets (context 2050)
are measured in fp32 at a micro-batch of about 8k tokens per step, the optimizer
stepping every micro-batch (a real run accumulates, so this understates them).
Also measures one process at 1 and 2 threads against two 1-thread processes side
by side, and (with a C++ compiler) `torch.compile` on one size.
The results replace the train-speed section of benchmarks/RESULTS.md.

    python benchmarks/train_speed.py [--quick] [--threads N] [--sizes tiny-L4,tiny-L6,tiny-L7,20m] [--no-results]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from slmscale.lm.model import Llama, ModelShape, next_token_loss
from slmscale.lm.sizes import count_params, flops_per_token, get_preset
from results_md import cpu_model, update_results

BEGIN, END = "<!-- train-speed:begin -->", "<!-- train-speed:end -->"
VOCAB = 202  # the demo's k = 200 units + EOS + PAD
PRECISIONS = ("fp32", "bf16")
MFU_TARGET = 0.60
MICRO_BATCH_TOKENS = 8192  # a step of a paper preset on this CPU: ~4 sequences of 2050


class PeakProbe:
    """fp32 2048^3 products between timed steps: the best of a few, ~0.3 s a probe."""

    def __init__(self, n: int = 2048, repeats: int = 3):
        self.a, self.b, self.n, self.repeats = torch.randn(n, n), torch.randn(n, n), n, repeats
        self.probes: list[float] = []
        torch.mm(self.a, self.b)

    def __call__(self) -> float:
        best = 0.0
        for _ in range(self.repeats):
            start = time.perf_counter()
            torch.mm(self.a, self.b)
            best = max(best, 2 * self.n ** 3 / (time.perf_counter() - start) / 1e9)
        self.probes.append(best)
        return best


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    """GFLOP/s of an n x n product on all threads, best of timed repeats.

    bf16 goes through `F.linear` as well as `torch.mm`, since the two take different
    kernels on CPUs without native bf16 and a model's layers use `F.linear`.
    """
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    routes = [lambda: torch.mm(a, b)]
    if dtype != torch.float32:
        routes.append(lambda: torch.nn.functional.linear(a, b))
    best = 0.0
    for product in routes:
        product()  # first call: allocation and kernel selection
        deadline = time.perf_counter() + seconds
        while True:
            start = time.perf_counter()
            product()
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
            if time.perf_counter() > deadline:
                break
    return best


def hf_llama(shape: ModelShape) -> torch.nn.Module:
    """`transformers.LlamaForCausalLM` with exactly slmscale's shape and conventions."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=shape.vocab_size, hidden_size=shape.width,
                         intermediate_size=shape.ffn_hidden, num_hidden_layers=shape.layers,
                         num_attention_heads=shape.heads, num_key_value_heads=shape.heads,
                         max_position_embeddings=shape.context, rms_norm_eps=shape.norm_eps,
                         rope_theta=shape.rope_theta, tie_word_embeddings=True, attention_bias=False,
                         mlp_bias=False, initializer_range=shape.init_std, use_cache=False,
                         attn_implementation="sdpa")
    model = LlamaForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == count_params(shape).total, "HF shape differs"
    return model


def logits_of(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    if isinstance(model, Llama):
        return model(tokens)
    return model(input_ids=tokens, use_cache=False).logits


def make_step(model: torch.nn.Module, shape: ModelShape, batch: int, precision: str,
              forward: Callable | None = None) -> Callable[[], float]:
    """One training step as the trainer does it; returns the loss (which syncs the step)."""
    generator = torch.Generator().manual_seed(0)
    data = torch.randint(0, shape.vocab_size - 2, (batch, shape.context + 1), generator=generator)
    inputs, targets = data[:, :-1], data[:, 1:]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
    if forward is None:  # not `or`: a compiled module has no truth value
        forward = lambda tokens: logits_of(model, tokens)  # noqa: E731
    tokens = targets.numel()

    def step() -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = next_token_loss(forward(inputs), targets) / tokens
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


@dataclass
class Timed:
    """One route's timed steps and, for each, the mean fp32 peak probed just before and after."""
    step_s: list[float]
    peaks: list[float]


def time_interleaved(steps: dict[str, Callable[[], float]], warmup: int, repeats: int,
                     budget_s: float, probe: PeakProbe, min_rounds: int = 2) -> dict[str, Timed]:
    """Step times of each route, alternating routes so background load hits all alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    timed = {name: Timed([], []) for name in steps}
    deadline = time.perf_counter() + budget_s
    before = probe()
    for round_ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            timed[name].step_s.append(time.perf_counter() - start)
            after = probe()
            timed[name].peaks.append((before + after) / 2)
            before = after
        if round_ + 1 >= min_rounds and time.perf_counter() > deadline:
            break  # at least `min_rounds` timed steps each, then stop at the budget
    return timed


@dataclass
class Row:
    size: str
    params: int
    flops_per_token: int
    batch: int
    context: int
    precision: str
    model: str
    timed: Timed

    @property
    def step_s(self) -> float:
        return statistics.median(self.timed.step_s)

    @property
    def tokens_per_s(self) -> float:
        return self.batch * self.context / self.step_s

    def mfu(self, peak_gflops: float) -> float:
        """Against one fixed peak (the run's best, or the bf16 peak)."""
        return self.tokens_per_s * self.flops_per_token / (peak_gflops * 1e9)

    @property
    def mfu_adjacent(self) -> float:
        """Median over steps of each step's MFU against the fp32 peak probed around it."""
        tokens = self.batch * self.context
        return statistics.median(tokens / step * self.flops_per_token / (peak * 1e9)
                                 for step, peak in zip(self.timed.step_s, self.timed.peaks))


def size_setup(name: str) -> tuple[ModelShape, int, tuple[str, ...]]:
    """Shape, sequences per timed step and precisions of one size on this CPU.

    A paper preset's update (131k+ tokens) would be a step of minutes here: it is timed
    at a micro-batch of about MICRO_BATCH_TOKENS, in fp32 only (bf16 is ~10x slower on
    a CPU without native bf16, so a bf16 step would take minutes too).
    """
    preset = get_preset(name)
    if preset.tokens_per_update <= 2 * MICRO_BATCH_TOKENS:
        return preset.shape(VOCAB), preset.sequences_per_update, PRECISIONS
    return preset.shape(VOCAB), max(1, round(MICRO_BATCH_TOKENS / preset.context)), ("fp32",)


def measure_size(name: str, warmup: int, repeats: int, budget_s: float, probe: PeakProbe) -> list[Row]:
    shape, batch, precisions = size_setup(name)
    rows = []
    for precision in precisions:
        torch.manual_seed(0)
        models = {"slmscale": Llama(shape), "transformers": hf_llama(shape)}
        steps = {label: make_step(model, shape, batch, precision) for label, model in models.items()}
        if precision == "bf16":
            # Without native bf16 (no AVX512-BF16/AMX) a bf16 step is ~10x an fp32 one; one
            # step of many seconds is already an average over thousands of kernel calls.
            timed = time_interleaved(steps, 0, repeats, budget_s, probe, min_rounds=1)
        else:
            timed = time_interleaved(steps, warmup, repeats, budget_s, probe)
        for label, measured in timed.items():
            rows.append(Row(name, count_params(shape).total, flops_per_token(shape, with_attention=True),
                            batch, shape.context, precision, label, measured))
            print(f"{name} {precision} {label}: {rows[-1].tokens_per_s:,.0f} tokens/s, MFU {rows[-1].mfu_adjacent:.1%} "
                  f"(median of {len(measured.step_s)} steps, {rows[-1].step_s:.3f} s/step)", flush=True)
    return rows


def worker(size: str, threads: int, steps: int) -> float:
    """Tokens/s of slmscale fp32 steps at `threads` threads (run in a subprocess, no probes)."""
    torch.set_num_threads(threads)
    shape, batch, _ = size_setup(size)
    torch.manual_seed(0)
    step = make_step(Llama(shape), shape, batch, "fp32")
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch * shape.context / statistics.median(times)


def thread_check(size: str, steps: int) -> list[tuple[str, float]]:
    """One process at 1 and at 2 threads against two 1-thread processes side by side."""
    command = [sys.executable, __file__, "--worker", size]
    results = []
    for threads in (2, 1):
        out = subprocess.run(command + [str(threads), str(steps)], capture_output=True, text=True, check=True)
        results.append((f"1 process x {threads} threads", float(out.stdout.split()[-1])))
    pair = [subprocess.Popen(command + ["1", str(steps)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    total = sum(float(p.communicate()[0].split()[-1]) for p in pair)
    results.append(("2 processes x 1 thread (sum)", total))
    for label, rate in results:
        print(f"threads {size}: {label}: {rate:,.0f} tokens/s", flush=True)
    return results


def compile_check(size: str, warmup: int, repeats: int, budget_s: float,
                  probe: PeakProbe) -> tuple[str, list[Row]]:
    """fp32 steps of slmscale eager against `torch.compile` (inductor, C++ codegen on CPU)."""
    if not (shutil.which("g++") or shutil.which("c++")):
        return "no C++ compiler on PATH: inductor cannot generate CPU kernels", []
    shape, batch, _ = size_setup(size)
    torch.manual_seed(0)
    eager, compiled = Llama(shape), Llama(shape)
    compiled_forward = torch.compile(compiled)
    steps = {"eager": make_step(eager, shape, batch, "fp32"),
             "compiled": make_step(compiled, shape, batch, "fp32", compiled_forward)}
    start = time.perf_counter()
    try:
        steps["compiled"]()
    except Exception as error:  # the report says why compile is unusable here
        return f"torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}", []
    compile_s = time.perf_counter() - start
    timed = time_interleaved(steps, warmup, repeats, budget_s, probe)
    rows = [Row(size, count_params(shape).total, flops_per_token(shape, with_attention=True),
                batch, shape.context, "fp32", f"slmscale {label}", measured) for label, measured in timed.items()]
    for row in rows:
        print(f"compile {size}: {row.model}: {row.tokens_per_s:,.0f} tokens/s, MFU {row.mfu_adjacent:.1%}", flush=True)
    ratios = [e / c for e, c in zip(timed["eager"].step_s, timed["compiled"].step_s)]
    return (f"first compiled step (compilation) took {compile_s:.0f} s; compiled / eager speed, median over "
            f"paired steps: {statistics.median(ratios):.2f}x"), rows


def render(peaks: dict[str, float], best_fp32: float, rows: list[Row], threads: list[tuple[str, float]],
           thread_size: str, compile_note: str, compile_rows: list[Row], wall_s: float,
           load: tuple[float, float], probes: list[float]) -> str:
    lines = [BEGIN, "## LM training speed (`benchmarks/train_speed.py`)", "",
             f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
             f"(CPU capability {torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads, "
             f"1-min load average {load[0]:.2f} at the start and {load[1]:.2f} at the end (other jobs on a shared "
             f"machine slow wall times down), {wall_s:.0f} s in all.", "",
             f"Matmul peak (2048 x 2048 product on the same threads): the {len(probes)} fp32 probes between timed "
             f"steps ranged {min(probes):.0f}-{max(probes):.0f} GFLOP/s (median {statistics.median(probes):.0f}): "
             f"this machine's speed drifts, so each step's MFU divides by the probes just before and after it. "
             f"Best fp32 peak of the run **{best_fp32:.1f} GFLOP/s**; bf16 {peaks['bf16']:.1f} GFLOP/s (best of "
             f"`torch.mm` and `F.linear`).", "",
             f"Full training steps (forward, summed fp32 next-token CE, backward, clip 1.0, AdamW with foreach, "
             f"zero_grad) at vocab {VOCAB}, random tokens; tiny sizes at their preset batch, paper presets at a "
             f"micro-batch of ~{MICRO_BATCH_TOKENS:,} tokens with an optimizer step each (a real run accumulates "
             f"micro-batches, so this understates them). The two models' steps "
             f"alternate; medians are reported, and the speed ratio is the median over paired steps. FLOPs/token = 6 N_total + 12 L d T. **MFU** (the acceptance "
             f"measure): median over steps against the fp32 peak probed around each step; **MFU at best peak**: "
             f"median step against the run's best fp32 peak (a lower bound); bf16 rows also against the bf16 peak.", "",
             "| size | params | batch x ctx | precision | model | tokens/s | MFU | MFU at best peak | "
             "MFU of bf16 peak | slmscale / transformers |", "|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {(r.size, r.precision, r.model): r for r in rows}
    for row in rows:
        own = f"{row.mfu(peaks['bf16']):.1%}" if row.precision == "bf16" else ""
        ratio = f"{speed_ratio(row, by_key[(row.size, row.precision, 'transformers')]):.2f}x" \
            if row.model == "slmscale" else ""
        lines.append(f"| {row.size} | {row.params / 1e6:.2f}M | {row.batch} x {row.context} | {row.precision} | "
                     f"{row.model} | {row.tokens_per_s:,.0f} | {row.mfu_adjacent:.1%} | {row.mfu(best_fp32):.1%} | "
                     f"{own} | {ratio} |")
    lines.append("")
    lines += verdicts(rows, best_fp32)
    if threads:
        lines += ["", f"Threads ({thread_size}, slmscale, fp32):", "", "| setting | tokens/s |", "|---|---|"]
        lines += [f"| {label} | {rate:,.0f} |" for label, rate in threads]
    lines += ["", f"torch.compile ({compile_rows[0].size if compile_rows else 'one size'}, fp32): {compile_note}."]
    if compile_rows:
        lines += ["", "| route | tokens/s | MFU | MFU at best peak |", "|---|---|---|---|"]
        lines += [f"| {r.model} | {r.tokens_per_s:,.0f} | {r.mfu_adjacent:.1%} | {r.mfu(best_fp32):.1%} |"
                  for r in compile_rows]
    return "\n".join(lines + [END]) + "\n"


def speed_ratio(ours: Row, theirs: Row) -> float:
    """Median over rounds of their step time / ours: each pair ran back to back, so drift cancels."""
    return statistics.median(t / o for o, t in zip(ours.timed.step_s, theirs.timed.step_s))


def verdicts(rows: list[Row], best_fp32: float) -> list[str]:
    """The acceptance lines and the bf16-vs-fp32 answer, computed from the table."""
    slm = {(r.size, r.precision): r for r in rows if r.model == "slmscale"}
    hf = {(r.size, r.precision): r for r in rows if r.model == "transformers"}
    ratios = {key: speed_ratio(slm[key], hf[key]) for key in slm}
    behind = sorted(f"{size} {precision}" for (size, precision), ratio in ratios.items() if ratio < 1.0)
    lines = [f"- slmscale / transformers speed (median of paired steps): {min(ratios.values()):.2f}x to "
             f"{max(ratios.values()):.2f}x; "
             + (f"below 1x at {', '.join(behind)}" if behind else "at least 1x everywhere")
             + " (step-time noise here is a few percent: compare with the repeats of a full run)."]
    for row in sorted((r for r in slm.values() if r.params >= 3_000_000 and r.precision == "fp32"),
                      key=lambda r: r.params):
        lines.append(f"- MFU at {row.size} ({row.params / 1e6:.1f}M parameters, fp32): {row.mfu_adjacent:.1%} "
                     f"({row.mfu(best_fp32):.1%} at the run's best peak): "
                     + ("meets" if row.mfu_adjacent >= MFU_TARGET else "misses") + f" the target of >= {MFU_TARGET:.0%}.")
    faster = [size for (size, precision) in slm if precision == "bf16"
              and slm[(size, "bf16")].step_s < slm[(size, "fp32")].step_s]
    speedups = ", ".join(f"{size} {slm[(size, 'fp32')].step_s / slm[(size, 'bf16')].step_s:.2f}x"
                         for (size, precision) in slm if precision == "bf16" and (size, "fp32") in slm)
    if speedups:
        lines.append(f"- bf16 autocast speed relative to fp32 (slmscale): {speedups}; bf16 is faster at: "
                     + (", ".join(faster) if faster else "no size measured") + ".")
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny-L4,tiny-L6,tiny-L7,20m", help="comma-separated size presets")
    parser.add_argument("--check-size", default="tiny-L7", help="size of the thread and torch.compile checks")
    parser.add_argument("--quick", action="store_true", help="fewer steps, no thread or compile check")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile check")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads for the peak and the steps (1 when another job holds a core)")
    parser.add_argument("--no-results", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for size in sizes + [args.check_size]:
        get_preset(size)  # unknown names fail before anything is timed
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    repeats, budget = (3, 5.0) if args.quick else (9, 40.0)
    peaks = {"fp32": matmul_peak(torch.float32, seconds=1.0 if args.quick else 3.0),
             "bf16": matmul_peak(torch.bfloat16, seconds=1.0 if args.quick else 3.0)}
    print(f"matmul peak: fp32 {peaks['fp32']:.1f} GFLOP/s, bf16 {peaks['bf16']:.1f} GFLOP/s", flush=True)
    probe = PeakProbe()
    rows = [row for size in sizes for row in measure_size(size, 1, repeats, budget, probe)]
    threads, compile_note, compile_rows = [], "skipped (--quick or --no-compile)", []
    if not args.quick:
        threads = thread_check(args.check_size, steps=4)
        if not args.no_compile:
            compile_note, compile_rows = compile_check(args.check_size, 1, repeats, budget, probe)
    best_fp32 = max([peaks["fp32"]] + probe.probes)
    section = render(peaks, best_fp32, rows, threads, args.check_size, compile_note, compile_rows,
                     time.perf_counter() - started, (load_start, os.getloadavg()[0]), probe.probes)
    print(section)
    if not args.no_results:
        update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
