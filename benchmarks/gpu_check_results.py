"""Render a gpu_check.json (benchmarks/gpu_check.py) as the "GPU check" section of RESULTS.md:

    python benchmarks/gpu_check_results.py benchmarks/results/gpu_check_<machine>_<date>.json

The targets are the issue's: 85m MFU >= 45%, 823m >= 55%, at least 1.1x the tokens/s of
`transformers` at each size. MFU = tokens/s x (6N + 12·L·d·T) / peak, the paper's formula.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from results_md import update_results

BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
MFU_TARGETS = {"85m": 0.45, "823m": 0.55}
RATIO_TARGET = 1.1


def _train_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| size | params | micro-batch x 2050 | model | tokens/s | MFU (datasheet) | MFU (measured peak) | "
             "peak GB | planned GB | compile + 2 steps s | slmscale / transformers |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_size: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_size.setdefault(row["size"], {})[row["impl"]] = row
    for size, impls in by_size.items():
        ours, theirs = impls.get("slmscale"), impls.get("transformers")
        ratio = f"{ours['tokens_per_s'] / theirs['tokens_per_s']:.3f}x" if ours and theirs else ""
        for impl, row in impls.items():
            lines.append(f"| {size} | {row['params'] / 1e6:.1f}M | {row['micro_batch']} | {impl} | "
                         f"{row['tokens_per_s']:,.0f} | {row.get('mfu_datasheet', 0):.1%} | "
                         f"{row.get('mfu_measured', 0):.1%} | {row['peak_gb']} | {row['memory_estimate_gb']} | "
                         f"{row['warmup_s']} | {ratio if impl == 'slmscale' else ''} |")
    return lines


def _verdicts(rows: list[dict[str, Any]]) -> list[str]:
    ours = {r["size"]: r for r in rows if r["impl"] == "slmscale"}
    theirs = {r["size"]: r for r in rows if r["impl"] == "transformers"}
    lines = []
    for size, target in MFU_TARGETS.items():
        if size in ours and "mfu_datasheet" in ours[size]:
            mfu = ours[size]["mfu_datasheet"]
            lines.append(f"- {size} MFU {mfu:.1%} against the target {target:.0%}: "
                         f"{'met' if mfu >= target else 'NOT met'}.")
    ratios = {s: ours[s]["tokens_per_s"] / theirs[s]["tokens_per_s"] for s in ours if s in theirs}
    if ratios:
        worst = min(ratios.values())
        lines.append(f"- tokens/s against `transformers` ({', '.join(f'{s} {r:.2f}x' for s, r in ratios.items())}): "
                     f"{'met' if worst >= RATIO_TARGET else 'NOT met'} (target {RATIO_TARGET}x at every size).")
    return lines


def _section(entry: dict[str, Any]) -> dict[str, Any] | None:
    return entry.get("result")


def render(data: dict[str, Any], source: str) -> str:
    env, peaks, sections = data["env"], data["bf16_peak_flops"], data["sections"]
    out = [BEGIN, "## GPU check (`benchmarks/gpu_check.sh`)", "",
           f"{env.get('gpu', env['device'])} ({env.get('gpu_memory_gb', '?')} GB), {env['cpus']} CPU cores, "
           f"torch {env['torch']}, transformers {env.get('transformers', '?')}, Python {env['python']}. "
           f"bf16 matmul peak: {peaks['measured'] / 1e12:.0f} TFLOP/s measured (8192³, this run), "
           f"{(peaks.get('datasheet') or 0) / 1e12:.0f} TFLOP/s datasheet. Raw numbers: `{source}`.", ""]
    for name, entry in sections.items():
        if "error" in entry:
            out += [f"**{name}**: failed: {entry['error']}", ""]
    train = _section(sections.get("train", {}))
    if train:
        out += ["### Training throughput", "",
                "bf16 autocast, every block compiled (`block.compile()`), summed fp32 cross entropy, clip 1.0, "
                "fused AdamW; one micro-batch per optimizer step on one fixed batch on the GPU (no loader); "
                "20 timed steps after 3 warm-up steps. Micro-batch: `lm.plan.auto_micro_batch` for an 80 GB "
                "GPU (the paper's); both models run the same loop in the same process.", "",
                *_train_table(train), "", *_verdicts(train), ""]
    hubert = _section(sections.get("hubert", {}))
    if hubert:
        out += ["### HuBERT-base features (random weights, layer 11)", "",
                f"{hubert['utterances']} utterances of {hubert['seconds_each']:.0f} s, audio hours per GPU hour:", "",
                "| route | audio h / GPU h |", "|---|---|",
                f"| `HubertFrames` (the extractor `tokenize` uses), one utterance at a time, fp32 (TF32 matmuls) | "
                f"{hubert['extractor_fp32_audio_h_per_device_h']:,.0f} |",
                f"| batches of 16 equal-length utterances, fp32 (TF32 matmuls) | "
                f"{hubert['batched_fp32_audio_h_per_device_h']:,.0f} |",
                f"| batches of 16, bf16 autocast | {hubert['batched_bf16_audio_h_per_device_h']:,.0f} |", ""]
    scoring = _section(sections.get("scoring", {}))
    if scoring:
        out += ["### Scoring (85m, `evaluate.scoring.token_log_probs`)", "",
                f"{scoring['pairs']} pairs of {scoring['units_per_utterance']}-unit utterances, 65,536 tokens per "
                f"batch: **{scoring['fp32_pairs_per_s']:,.0f} pairs/s** in fp32 (TF32 matmuls), "
                f"{scoring['bf16_pairs_per_s']:,.0f} pairs/s under bf16 autocast.", ""]
    trainer = _section(sections.get("trainer", {}))
    if trainer:
        speeds = ", ".join(f"{s:,.0f}" for s in trainer["tokens_per_s_logged"])
        out += ["### The trainer itself (`lm.trainer.train`, 85m, whole-model `torch.compile`)", "",
                f"20 updates of 32 x 2050 tokens on the study's units, validation at update 10 and 20, checkpoint, "
                f"test loss: {trainer['wall_s']} s wall in all, status {trainer['status']}. Tokens/s per 5 logged "
                f"updates: {speeds} (the first includes compilation, the third a validation pass)"
                f"{_mfus(trainer)}.", ""]
    study = _section(sections.get("study", {}))
    if study:
        runs = study.get("runs", [])
        out += ["### A miniature study on the GPU", "",
                f"`slmscale study` from units prepared on a CPU machine (the built-in world, MFCC k=200; espeak-ng is "
                f"not on the GPU machine), {len(runs)} runs (tiny-L4..L7 x 1M, 2M, 4M tokens), trained in "
                f"{study.get('precision')}, evaluated on a small spoken benchmark set, then the report: "
                f"**{study['wall_s']} s** wall (sweep {study['stages']['sweep']['seconds']} s, report "
                f"{study['stages']['report']['seconds']} s), status {study['sweep']['status']}.", ""]
    out.append(END)
    return "\n".join(out) + "\n"


def _mfus(trainer: dict) -> str:
    mfus = trainer.get("mfu_logged") or []  # absent in results from before the trainer logged MFU
    return "; MFU the trainer logged: " + ", ".join(f"{m:.1%}" for m in mfus) if mfus else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path)
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    update_results(render(data, str(args.json.relative_to(Path(__file__).resolve().parent.parent)
                                    if args.json.is_absolute() else args.json)), BEGIN, END)


if __name__ == "__main__":
    main()
