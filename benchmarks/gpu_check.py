"""The one prepared device check (`benchmarks/gpu_check.sh`): on a machine with one GPU, in at
most about 8 minutes, it measures

- training tokens/s and MFU of the paper's presets (bf16 autocast, each block compiled, fused
  AdamW, the micro-batch `lm.plan.auto_micro_batch` picks for an 80 GB GPU), paired with
  `transformers.LlamaForCausalLM` of the same shape in the same run and the same loop; the peak
  memory beside the planner's estimate;
- HuBERT-base feature throughput (randomly initialised, the real shape): the extractor the
  `tokenize` stage uses, and batched equal-length chunks under bf16 autocast;
- scoring throughput (pairs/s) of the 85m preset as `eval` scores;
- a miniature study end to end on the GPU (sweep, evaluation, report) over units prepared on a
  CPU machine (`--study-data`; espeak-ng, which makes the speech, is not on the GPU machine).

It writes gpu_check.json after every section (a time-out keeps what finished) and, with
`--results`, a section of benchmarks/RESULTS.md. `--dry-run` runs every section at tiny shapes
on the CPU in seconds (the test suite does); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from slmscale.lm.model import Llama, ModelShape, next_token_loss
from slmscale.lm.plan import auto_micro_batch, memory_estimate
from slmscale.lm.sizes import PAPER_VOCAB, count_params, flops_per_token, get_preset

# Dense bf16 peak by the vendors' datasheets (no sparsity), the denominator of MFU as the
# paper's code computes it (A100: 312 TFLOP/s). Unknown devices get MFU against the bf16
# matmul rate measured in the same run only.
DATASHEET_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}
SIZES = ("85m", "823m", "20m", "309m")  # the targets first: a time-out loses the others
MEMORY_BYTES = 80e9  # plan as for an 80 GB GPU, the paper's hardware


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int, repeats: int) -> float:
    """bf16 matrix-product FLOP/s on this device, mean of `repeats` after a warm-up."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def datasheet_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in DATASHEET_BF16.items() if key in name), None)


def hf_llama(shape: ModelShape) -> torch.nn.Module:
    """`transformers.LlamaForCausalLM` of exactly this shape (sdpa attention, tied head)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=shape.vocab_size, hidden_size=shape.width, intermediate_size=shape.ffn_hidden,
                         num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                         num_key_value_heads=shape.heads, max_position_embeddings=shape.context,
                         rms_norm_eps=shape.norm_eps, rope_theta=shape.rope_theta, tie_word_embeddings=True,
                         attention_bias=False, mlp_bias=False, use_cache=False, attn_implementation="sdpa")
    model = LlamaForCausalLM(config)
    if sum(p.numel() for p in model.parameters()) != count_params(shape).total:
        raise RuntimeError("transformers' Llama has another parameter count than slmscale's shape")
    return model


def build(impl: str, shape: ModelShape, device: torch.device, compile_blocks: bool):
    """The model and a tokens -> logits function; blocks compiled one by one (the same code
    for every block of a model, so compile time does not grow with depth)."""
    if impl == "slmscale":
        model = Llama(shape).to(device)
        blocks, forward = model.layers, model
    else:
        model = hf_llama(shape).to(device)
        blocks = model.model.layers
        forward = lambda tokens: model(input_ids=tokens, use_cache=False).logits  # noqa: E731
    if compile_blocks:
        for block in blocks:
            block.compile()
    return model, forward


def train_speed(impl: str, shape: ModelShape, micro: int, device: torch.device, steps: int,
                compile_blocks: bool) -> dict[str, Any]:
    """Training steps as the trainer takes them (bf16 autocast, summed fp32 CE, clip, fused
    AdamW), one micro-batch per optimizer step, on one fixed batch already on the device."""
    torch.manual_seed(0)
    model, forward = build(impl, shape, device, compile_blocks)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-4, betas=(0.9, 0.95), fused=device.type == "cuda")
    data = torch.randint(0, shape.vocab_size - 2, (micro, shape.context + 1), device=device)
    inputs, targets = data[:, :-1], data[:, 1:]
    bf16 = device.type == "cuda"

    def step() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = next_token_loss(forward(inputs), targets) / targets.numel()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(3):  # compiles forward and backward, then two steps at speed
        step()
    sync(device)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"impl": impl, "tokens_per_s": steps * targets.numel() / seconds, "step_s": seconds / steps,
            "warmup_s": round(warmup_s, 1), "loss": float(loss), "peak_gb": peak and round(peak / 1e9, 2)}


def section_train(device: torch.device, dry: bool, peaks: dict[str, float | None]) -> list[dict[str, Any]]:
    rows = []
    for name in SIZES:
        preset = get_preset(name)
        shape = (preset.shape(PAPER_VOCAB) if not dry else
                 ModelShape(vocab_size=PAPER_VOCAB, context=64, layers=2, width=64, heads=2, ffn_hidden=192))
        micro = auto_micro_batch(shape, preset.sequences_per_update, MEMORY_BYTES, "bf16") if not dry else 2
        flops = flops_per_token(shape, with_attention=True)
        for impl in ("slmscale", "transformers"):
            row = {"size": name, "params": count_params(shape).total, "micro_batch": micro, "context": shape.context,
                   "memory_estimate_gb": round(memory_estimate(shape, micro, "bf16") / 1e9, 2),
                   **train_speed(impl, shape, micro, device, steps=2 if dry else 20, compile_blocks=not dry)}
            for key, peak in peaks.items():
                if peak:
                    row[f"mfu_{key}"] = row["tokens_per_s"] * flops / peak
            rows.append(row)
            print(json.dumps(row), flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the finished model's memory, before the next one
    return rows


def section_hubert(device: torch.device, dry: bool) -> dict[str, Any]:
    """Audio seconds per wall second of HuBERT-base features to layer 11 (random weights)."""
    from transformers import HubertConfig, HubertModel

    from slmscale.units.features import FeatureSpec
    from slmscale.units.hubert import HubertFrames
    config = HubertConfig() if not dry else HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                         intermediate_size=64, conv_dim=(32,) * 7,
                                                         num_conv_pos_embeddings=16)
    layer = 11 if not dry else 2
    utterances, seconds = (64, 10.0) if not dry else (4, 1.0)
    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1 for _ in range(utterances)]
    total = utterances * seconds
    out: dict[str, Any] = {"utterances": utterances, "seconds_each": seconds, "layer": layer}
    with tempfile.TemporaryDirectory() as tmp:
        HubertModel(config).save_pretrained(tmp)
        frames = HubertFrames(FeatureSpec(kind="hubert", hubert_path=tmp, layer=layer), str(device))
        with torch.no_grad():
            frames(audio[0])
            sync(device)
            start = time.perf_counter()
            for samples in audio:
                frames(samples)
            sync(device)
        out["extractor_fp32_audio_s_per_s"] = total / (time.perf_counter() - start)
        model = frames.model  # the same model, layers above `layer` already dropped
        batch = torch.from_numpy(np.stack(audio)).to(device)
        for label, dtype in (("batched_fp32", None), ("batched_bf16", torch.bfloat16)):
            with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                for repeat in range(2):  # the first pass warms up
                    sync(device)
                    start = time.perf_counter()
                    for rows in range(0, utterances, 16):
                        model(batch[rows:rows + 16], output_hidden_states=True).hidden_states[layer].float()
                    sync(device)
            out[f"{label}_audio_s_per_s"] = total / (time.perf_counter() - start)
    for key in [k for k in out if k.endswith("_audio_s_per_s")]:
        out[key.replace("_audio_s_per_s", "_audio_h_per_device_h")] = out[key]  # s/s = h/h
    return out


def section_scoring(device: torch.device, dry: bool) -> dict[str, Any]:
    """Pairs per second of 85m scoring utterances of 60-250 units, fp32 and bf16 autocast."""
    from slmscale.evaluate.scoring import token_log_probs
    shape = (get_preset("85m").shape(PAPER_VOCAB) if not dry else
             ModelShape(vocab_size=PAPER_VOCAB, context=64, layers=2, width=64, heads=2, ffn_hidden=192))
    model = Llama(shape).to(device)
    rng = np.random.default_rng(0)
    pairs = 2000 if not dry else 8
    sequences = [rng.integers(0, 500, int(n)) for n in rng.integers(60, 250, 2 * pairs)]
    out: dict[str, Any] = {"pairs": pairs, "units_per_utterance": "60-250"}
    for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        token_log_probs(model, sequences[:64], PAPER_VOCAB - 2, autocast_dtype=dtype)  # warm-up
        sync(device)
        start = time.perf_counter()
        token_log_probs(model, sequences, PAPER_VOCAB - 2, tokens_per_batch=65536, autocast_dtype=dtype)
        sync(device)
        out[f"{label}_pairs_per_s"] = pairs / (time.perf_counter() - start)
    return out


def section_trainer(units: Path, work: Path, dry: bool) -> dict[str, Any]:
    """The real trainer (`lm.trainer.train`: whole-model torch.compile, bf16, fused AdamW, its
    loader, validation, checkpoint and test loss) on the 85m preset for 20 updates of 32
    sequences; its run.json and metrics.jsonl give tokens/s as a run records them."""
    from slmscale.lm.config import TrainConfig
    from slmscale.lm.trainer import train
    size, context, sequences = ("85m", None, 32) if not dry else ("tiny-L1", 64, 4)
    per_update = sequences * (context or 2050)
    cfg = TrainConfig(size=size, tokens=20 * per_update, tokens_per_update=per_update, context=context,
                      compile=not dry, precision="bf16" if not dry else "fp32", eval_every=10, eval_tokens=65536,
                      test_tokens=262144, log_every=5, warmup_min_steps=5)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    record = train(units, work / "trainer_run", cfg)
    rows = [json.loads(line) for line in (work / "trainer_run" / "metrics.jsonl").read_text().splitlines()]
    speeds = [row["tokens_per_second"] for row in rows if "tokens_per_second" in row]
    mfus = [row["mfu"] for row in rows if "mfu" in row]  # only where the device's peak is known
    return {"wall_s": round(time.perf_counter() - start, 1), "status": record["status"],
            "micro_batch": record["micro_batch_size"], "test_loss": record["test_loss"],
            "tokens_per_s_logged": speeds, "mfu_logged": mfus, "run_tokens_per_s": record.get("tokens_per_second"),
            "memory_estimate_gb": record.get("memory_gb_estimate"),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if torch.cuda.is_available() else None}


def study_yaml(units: Path, benchmarks: Path, dry: bool) -> str:
    sizes = ["tiny-L4", "tiny-L5", "tiny-L6", "tiny-L7"] if not dry else ["tiny-L1"]
    tokens = [1_000_000, 2_000_000, 4_000_000] if not dry else [20_000]
    return json.dumps({
        "prepared": [{"name": "raw", "units": str(units), "corpus": "all", "tokenizer": "raw"}],
        "benchmarks": [str(benchmarks)],
        "sweep": {"grids": [{"name": "main", "variants": ["raw"], "sizes": sizes, "tokens": tokens}],
                  "train": ["eval_every=1000", "eval_tokens=65536", "checkpoint_every=1000"],
                  "workers": 6 if not dry else 1},
        "fit": {"bootstrap": 100}})


def section_study(units: Path, benchmarks: Path, work: Path, dry: bool) -> dict[str, Any]:
    """The miniature study on this machine's device, from prepared units to report."""
    config = work / "study.yaml"
    config.write_text(study_yaml(units, benchmarks, dry))
    out = work / "study"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "slmscale", "study", "--out", str(out), "--config", str(config)],
                          capture_output=True, text=True)
    result: dict[str, Any] = {"wall_s": round(time.perf_counter() - start, 1), "rc": proc.returncode,
                              "output_tail": (proc.stdout + proc.stderr)[-3000:]}
    record = out / "study.json"
    if record.is_file():
        study = json.loads(record.read_text())
        result.update(stages=study["stages"], sweep=study["sweep"], precision=study.get("precision"))
    result["runs"] = [{k: run.get(k) for k in ("run_id", "wall_seconds", "tokens_per_second", "test_loss", "precision")}
                      for run in (json.loads(p.read_text()) for p in sorted(out.glob("sweep/**/run.json")))]
    report = out / "report" / "report.json"
    if report.is_file():
        result["report_checks"] = json.loads(report.read_text()).get("checks")
    return result


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "device": str(device), "cpus": os.cpu_count()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 1e9, 1)
    try:
        import transformers
        env["transformers"] = transformers.__version__
    except ImportError:
        pass
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU (the test suite)")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json")
    parser.add_argument("--study-units", type=Path, help="speech units dir of the miniature study")
    parser.add_argument("--study-benchmarks", type=Path, help="spoken benchmarks folder of the miniature study")
    parser.add_argument("--work", type=Path, help="folder for the trainer's and the study's runs (default: --out)")
    parser.add_argument("--sections", default="train,hubert,scoring,trainer,study")
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or args.out
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"dry_run": args.dry_run, "env": environment(device), "sections": {}}
    peaks = {"datasheet": datasheet_peak(device),
             "measured": matmul_peak(device, 8192 if device.type == "cuda" else 256, 10 if device.type == "cuda" else 2)}
    report["bf16_peak_flops"] = peaks
    jobs: dict[str, Callable[[], Any]] = {
        "train": lambda: section_train(device, args.dry_run, peaks),
        "hubert": lambda: section_hubert(device, args.dry_run),
        "scoring": lambda: section_scoring(device, args.dry_run),
        "trainer": lambda: (section_trainer(args.study_units.resolve(), work, args.dry_run)
                            if args.study_units else {"skipped": "no --study-units"}),
        "study": lambda: (section_study(args.study_units.resolve(), args.study_benchmarks.resolve(), work,
                                        args.dry_run)
                          if args.study_units and args.study_benchmarks else {"skipped": "no --study-units"})}
    failed = False
    for name in args.sections.split(","):
        start = time.perf_counter()
        try:
            report["sections"][name] = {"result": jobs[name]()}
        except Exception as err:  # noqa: BLE001 - a failed section is recorded, the next one runs
            failed = True
            report["sections"][name] = {"error": f"{type(err).__name__}: {err}"}
        report["sections"][name]["seconds"] = round(time.perf_counter() - start, 1)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
        print(f"gpu_check: {name} done in {report['sections'][name]['seconds']} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
