"""Does RoPE as a hand-written autograd Function pay? The model's `apply_rope` against plain ops
under autograd, in one run, with interleaved repeats.

Variants (each gives the same rotation, HF's rotate-half convention):
- `model`: `slmscale.lm.model.apply_rope` as it is now (since 2026-12-07 the `roll` ops);
- `function`: the custom autograd Function the model had until 2026-12-07 (forward
  `addcmul(x*cos, roll(x), signed_sin)`, backward the rotation by −θ, nothing saved but the
  tables), kept here so that the comparison can be rerun;
- `roll`: the same three-op forward, differentiated by autograd;
- `hf`: HF's formula x*cos + rotate_half(x)*sin with rotate_half(x) = cat(-x2, x1) and HF's sin
  table, differentiated by autograd (what tests/test_lm_model.py compares against).

Two measurements:
- a training step (forward, summed next-token CE, backward, zero_grad; no optimizer, which RoPE
  does not touch) of tiny-L4 and tiny-L5 at their preset batch (16 x 256), the variant swapped in
  for every attention layer;
- RoPE alone, forward + backward on one (16, heads, 256, 32) query tensor of tiny-L5, a block of
  calls per sample.

Every round times each variant once, in a shuffled order, plus the baseline (`hf`) a second time:
the ratio of the two baseline samples of a round (A/A) shows how far two timings of the same code
drift apart on this machine. Reported: the median over rounds of time(baseline) / time(variant)
(> 1: the variant is faster), with the 10th–90th percentile and min–max of the per-round ratios,
and the median and p10–p90 of time(roll) / time(variant): the Function against the same ops
under autograd.

    python benchmarks/rope_speed.py [--rounds 15] [--threads 1] [--no-results]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import cpu_model, update_results  # noqa: E402

from slmscale.lm import model as lm_model  # noqa: E402
from slmscale.lm.model import Llama, next_token_loss, rope_tables  # noqa: E402
from slmscale.lm.sizes import get_preset  # noqa: E402

BEGIN, END = "<!-- rope-speed:begin -->", "<!-- rope-speed:end -->"
VOCAB = 202
BASELINE = "hf"


def _roll_rotate(x, cos, signed_sin):
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), signed_sin)


class _RopeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, signed_sin):
        ctx.save_for_backward(cos, signed_sin)
        return _roll_rotate(x, cos, signed_sin)

    @staticmethod
    def backward(ctx, grad):
        cos, signed_sin = ctx.saved_tensors
        return _roll_rotate(grad, cos, -signed_sin), None, None


def _hf_rotate(x, cos, sin):
    first, second = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-second, first], dim=-1) * sin


def hf_sin(signed_sin: torch.Tensor) -> torch.Tensor:
    half = signed_sin.shape[-1] // 2
    return torch.cat([-signed_sin[..., :half], signed_sin[..., half:]], dim=-1)


MODEL_APPLY_ROPE = lm_model.apply_rope
VARIANTS = {  # name -> (rope function, takes HF's sin table rather than the signed one)
    "model": (MODEL_APPLY_ROPE, False),
    "function": (_RopeFunction.apply, False),
    "roll": (_roll_rotate, False),
    "hf": (_hf_rotate, True),
}


def check_variants() -> None:
    shape = get_preset("tiny-L2").shape(VOCAB, 16)
    cos, signed = rope_tables(shape, 16)
    x = torch.randn(2, shape.heads, 16, shape.head_dim)
    grad = torch.randn_like(x)
    results = []
    for fn, wants_hf in VARIANTS.values():
        leaf = x.clone().requires_grad_()
        out = fn(leaf, cos, hf_sin(signed) if wants_hf else signed)
        (g,) = torch.autograd.grad(out, leaf, grad)
        results.append((out.detach(), g))
    for out, g in results[1:]:
        assert torch.allclose(out, results[0][0], atol=1e-6) and torch.allclose(g, results[0][1], atol=1e-6)


def model_step(size: str):
    """A step function per variant, all on one model and one batch."""
    preset = get_preset(size)
    shape = preset.shape(VOCAB)
    torch.manual_seed(0)
    model = Llama(shape)
    signed = model.rope_sin.clone()
    data = torch.randint(0, VOCAB - 2, (preset.sequences_per_update, shape.context + 1),
                         generator=torch.Generator().manual_seed(0))
    inputs, targets = data[:, :-1], data[:, 1:]

    def make(name):
        fn, wants_hf = VARIANTS[name]
        table = hf_sin(signed) if wants_hf else signed

        def step():
            lm_model.apply_rope = fn
            model.rope_sin = table
            try:
                loss = next_token_loss(model(inputs), targets) / targets.numel()
                loss.backward()
                model.zero_grad(set_to_none=True)
                return loss.item()
            finally:
                lm_model.apply_rope = MODEL_APPLY_ROPE
                model.rope_sin = signed
        return step

    return {name: make(name) for name in VARIANTS}


def rope_only(size: str, calls: int):
    preset = get_preset(size)
    shape = preset.shape(VOCAB)
    cos, signed = rope_tables(shape, shape.context)
    x = torch.randn(preset.sequences_per_update, shape.heads, shape.context, shape.head_dim, requires_grad=True)
    grad = torch.randn_like(x)

    def make(name):
        fn, wants_hf = VARIANTS[name]
        table = hf_sin(signed) if wants_hf else signed

        def run():
            for _ in range(calls):
                (g,) = torch.autograd.grad(fn(x, cos, table), x, grad)
            return float(g[0, 0, 0, 0])
        return run

    return {name: make(name) for name in VARIANTS}


def measure(steps: dict, rounds: int, warmup: int, rng: random.Random) -> dict[str, list[float]]:
    for _ in range(warmup):
        for run in steps.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in [*steps, "hf (again)"]}
    for _ in range(rounds):
        order = [*steps, "hf (again)"]
        rng.shuffle(order)
        for name in order:
            run = steps[BASELINE if name == "hf (again)" else name]
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def _ratios(reference: list[float], samples: list[float]) -> tuple[float, float, float, float, float]:
    """(median, p10, p90, min, max) of reference/sample per round."""
    ratios = sorted(r / s for r, s in zip(reference, samples))
    deciles = statistics.quantiles(ratios, n=10, method="inclusive")
    return statistics.median(ratios), deciles[0], deciles[-1], ratios[0], ratios[-1]


def summary(times: dict[str, list[float]]) -> list[tuple]:
    """(variant, median s, ratios against the baseline, ratios against `roll`) per variant."""
    return [(name, statistics.median(samples), _ratios(times[BASELINE], samples), _ratios(times["roll"], samples))
            for name, samples in times.items() if name != BASELINE]


def bf16_native() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="tiny-L4,tiny-L5")
    parser.add_argument("--calls", type=int, default=20, help="RoPE calls per sample of the RoPE-only timing")
    parser.add_argument("--no-results", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    check_variants()
    rng = random.Random(0)
    load_before = os.getloadavg()
    tables = []
    for size in args.sizes.split(","):
        tables.append((f"{size} training step (forward + backward)", summary(measure(model_step(size), args.rounds,
                                                                                  2, rng))))
        print(tables[-1], flush=True)
    last = args.sizes.split(",")[-1]
    tables.append((f"RoPE alone, {last} queries, {args.calls} forward + backward calls",
                   summary(measure(rope_only(last, args.calls), args.rounds, 2, rng))))
    print(tables[-1], flush=True)
    load_after = os.getloadavg()
    lines = [BEGIN, "## RoPE: autograd Function against plain ops (`benchmarks/rope_speed.py`)", "",
             f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}; torch {torch.__version__}, "
             f"{args.threads} thread(s), fp32",
             f"- CPU: {cpu_model()}, {os.cpu_count()} cores; native bf16 (avx512_bf16): "
             f"{'yes' if bf16_native() else 'no'}",
             f"- Load average (1/5/15 min): before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
             f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}",
             f"- {args.rounds} rounds, each variant once per round in a shuffled order, after 2 warm-up rounds. "
             f"Speed-up = time(`{BASELINE}`) / time(variant) in the same round (> 1: faster than HF's formula "
             "under autograd); `hf (again)` is the baseline against itself, the noise of one pairing. "
             "`model` is `lm.model.apply_rope` as committed, `function` the custom autograd Function, "
             "`roll` its forward under autograd; vs `roll` = time(roll) / time(variant) in the same round.", ""]
    for title, rows in tables:
        lines += [f"**{title}**", "", f"| variant | median time (ms) | vs `{BASELINE}`, median | p10–p90 | min–max "
                  "| vs `roll`, median (p10–p90) |", "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {t * 1000:.1f} | {r:.3f}× | {lo:.3f}–{hi:.3f} | {mn:.3f}–{mx:.3f} "
                  f"| {q[0]:.3f}× ({q[1]:.3f}–{q[2]:.3f}) |"
                  for name, t, (r, lo, hi, mn, mx), q in rows]
        lines.append("")
    lines.append(END)
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_results:
        update_results(section, BEGIN, END)


if __name__ == "__main__":
    main()
