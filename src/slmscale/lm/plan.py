"""From a TrainConfig and a units dir to the exact numbers of one run: shape, batch
geometry, updates, warmup, LR schedule, epochs. Pure, so it is tested without training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from slmscale.config import ConfigError
from slmscale.lm.config import TrainConfig
from slmscale.lm.model import ModelShape
from slmscale.lm.sizes import count_params, flops_per_token, get_preset

# bf16 autocast on a CPU without native bf16 matmuls (AVX2, no AVX512-BF16/AMX) made a
# training step about 10x slower at every tiny size (benchmarks/RESULTS.md, train-speed);
# on CPUs with them it pays from this width up (docs/DESIGN.md §5.3: 1.5x at d128, 1.8x at d256).
CPU_BF16_MIN_WIDTH = 128
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

# Memory per process, the estimate behind the automatic micro-batch. Weights, gradients and
# the two AdamW moments are fp32: 16 bytes per parameter. Activations kept for the backward
# grow as tokens x layers x width: about 37 bytes per token, layer and unit of width in bf16
# autocast (measured on CPU for the 309m and 823m shapes: 116 GB and 283 GB for a whole
# per-GPU share in one pass; benchmarks/gpu_check.py records the measured peak beside this
# estimate). fp32 keeps every activation at twice the size. The logits add (bf16 + fp32 +
# their gradient) 10 bytes per token and vocabulary entry.
STATE_BYTES_PER_PARAM = 16
ACTIVATION_BYTES = {"bf16": 37, "fp32": 74}
LOGIT_BYTES = 10


def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists AVX512-BF16 or AMX-BF16 (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


@dataclass(frozen=True)
class RunPlan:
    shape: ModelShape
    tokens: int
    """D: predicted tokens in all."""
    unique_tokens: int
    tokens_per_update: int
    sequences_per_update: int
    sequences_per_process: int
    """The largest share of a process (`share`): with a world size that does not divide the update's
    sequences, the first processes take one sequence more than the others."""
    micro_batch_size: int
    updates: int
    warmup_updates: int
    lr: float
    final_lr: float
    world_size: int
    precision: str = "bf16"
    """The precision the memory estimate assumes (`auto` is planned as bf16, the larger bound
    on GPUs, where it resolves to bf16)."""

    @property
    def memory_bytes(self) -> int:
        """Estimated peak memory of one process (see STATE_BYTES_PER_PARAM)."""
        return memory_estimate(self.shape, self.micro_batch_size, self.precision)

    @property
    def epochs(self) -> float:
        return self.tokens / self.unique_tokens

    @property
    def micro_batches(self) -> int:
        return self.sequences_per_process // self.micro_batch_size

    def share(self, rank: int) -> slice:
        """The rows of an update's windows that process `rank` trains on: contiguous, in rank order,
        sizes differing by at most one (252 sequences over 8 GPUs: 4 x 32 then 4 x 31). The loss is
        summed over tokens and divided by the update's token count (trainer._update), so any split
        gives the one-process gradient."""
        base, extra = divmod(self.sequences_per_update, self.world_size)
        first = rank * base + min(rank, extra)
        return slice(first, first + base + (rank < extra))

    def tokens_in_update(self, update: int) -> int:
        """Every update is full except possibly the last, which stops the run at exactly D."""
        return min(self.tokens_per_update, self.tokens - update * self.tokens_per_update)

    def lr_at(self, update: int) -> float:
        """Linear warmup to the peak, then a half-cycle cosine to final_lr (docs/PAPER.md §2.3)."""
        if update < self.warmup_updates:
            return self.lr * (update + 1) / self.warmup_updates
        progress = (update - self.warmup_updates) / max(1, self.updates - self.warmup_updates)
        return self.final_lr + 0.5 * (self.lr - self.final_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))

    def outline(self) -> str:
        """The plan in one line: what a budget implies before it is spent."""
        return (f"{self.updates:,} updates of {self.tokens_per_update:,} tokens, {self.epochs:,.6g} epochs over "
                f"{self.unique_tokens:,} unique tokens, {flops_per_token(self.shape) * self.tokens:.3g} FLOPs")

    def check_epochs(self, max_epochs: float, split: str) -> None:
        """Refuse a plan beyond reason (see lm/config.py MAX_EPOCHS), naming the budget, the plan and the override."""
        if self.epochs > max_epochs:
            raise ConfigError(f"tokens: D = {self.tokens:,} repeats the {self.unique_tokens:,} unique tokens of split "
                              f"{split!r} {self.epochs:,.0f} times, more than --max-epochs {max_epochs:g} (the plan: "
                              f"{self.outline()}); lower --tokens, or raise --max-epochs to run it anyway")

    def summary(self) -> dict[str, Any]:
        counts = count_params(self.shape)
        return {"shape": asdict(self.shape), "params": counts.as_dict(),
                "tokens": self.tokens, "unique_tokens": self.unique_tokens, "epochs": round(self.epochs, 6),
                "flops": flops_per_token(self.shape) * self.tokens,
                "flops_with_attention": flops_per_token(self.shape, with_attention=True) * self.tokens,
                "updates": self.updates, "warmup_updates": self.warmup_updates,
                "tokens_per_update": self.tokens_per_update, "micro_batch_size": self.micro_batch_size,
                "world_size": self.world_size, "lr": self.lr, "final_lr": self.final_lr,
                "memory_gb_estimate": round(self.memory_bytes / 1e9, 2)}


def plan_run(cfg: TrainConfig, vocab_size: int, train_tokens: int, world_size: int = 1) -> RunPlan:
    """Resolve every derived number; an impossible combination is a ConfigError naming the key."""
    try:
        preset = get_preset(cfg.size)
    except KeyError as err:
        raise ConfigError(f"size: {err.args[0]}") from None
    if cfg.tokens <= 0:
        raise ConfigError(f"tokens: the training budget D must be positive, got {cfg.tokens}")
    context = cfg.context or preset.context
    try:
        shape = preset.shape(vocab_size, context)
    except ValueError as err:
        raise ConfigError(f"context/size: {err}") from None
    tokens_per_update = cfg.tokens_per_update or preset.sequences_per_update * context
    if tokens_per_update % context:
        raise ConfigError(f"tokens_per_update: {tokens_per_update} is not a multiple of the context {context}")
    sequences = tokens_per_update // context
    if sequences < world_size:
        raise ConfigError(f"tokens_per_update: {sequences} sequences per update are fewer than the {world_size} "
                          f"processes (give each at least one: tokens_per_update >= {world_size * context})")
    per_process = -(-sequences // world_size)  # the largest share; the others may hold one fewer
    precision = "fp32" if cfg.precision == "fp32" else "bf16"
    micro = cfg.micro_batch_size or auto_micro_batch(shape, per_process, cfg.memory_gb * 1e9, precision)
    if per_process % micro:
        raise ConfigError(f"micro_batch_size: {micro} does not divide the {per_process} sequences "
                          f"per update and process")  # a smaller share ends on a shorter micro-batch
    unique = cfg.unique_tokens or train_tokens
    if unique > train_tokens:
        raise ConfigError(f"unique_tokens: {unique} > the {train_tokens} tokens of the train split")
    if unique < context + 1:
        shorter = f"context <= {unique - 1}" if unique >= 2 else "no context fits"
        if cfg.unique_tokens is None:  # the whole split is the pool: the context is what does not fit
            raise ConfigError(f"context: a window of {context} + 1 tokens does not fit the {train_tokens} tokens "
                              f"of split {cfg.train_split!r} ({shorter}; or use a units dir with more data)")
        raise ConfigError(f"unique_tokens: {unique} tokens do not fill one window of context {context} + 1 "
                          f"(use unique_tokens >= {context + 1}, or {shorter})")
    updates = -(-cfg.tokens // tokens_per_update)
    warmup = max(cfg.warmup_min_steps, math.ceil(cfg.warmup_fraction * updates))
    warmup = max(1, min(warmup, updates // 2))
    lr = cfg.lr or preset.lr
    return RunPlan(shape=shape, tokens=cfg.tokens, unique_tokens=unique, tokens_per_update=tokens_per_update,
                   sequences_per_update=sequences, sequences_per_process=per_process, micro_batch_size=micro,
                   updates=updates, warmup_updates=warmup, lr=lr, final_lr=lr * cfg.final_lr_fraction,
                   world_size=world_size, precision=precision)


def memory_estimate(shape: ModelShape, sequences: int, precision: str) -> int:
    """Peak bytes of one process training `sequences` windows per forward pass (an estimate)."""
    tokens = sequences * shape.context
    activations = ACTIVATION_BYTES[precision] * tokens * shape.layers * shape.width
    return (STATE_BYTES_PER_PARAM * count_params(shape).total + activations
            + LOGIT_BYTES * tokens * shape.vocab_size)


def auto_micro_batch(shape: ModelShape, per_process: int, memory_bytes: float, precision: str) -> int:
    """The largest divisor of the per-process sequences whose pass fits `memory_bytes`: the
    paper's sizes differ 40x in activations per sequence, so no one micro-batch fits them all
    (1 when even a single sequence does not fit: the run may still fit, the estimate is rough)."""
    fitting = [m for m in range(1, per_process + 1)
               if per_process % m == 0 and memory_estimate(shape, m, precision) <= memory_bytes]
    return max(fitting, default=1)


def resolve_precision(cfg: TrainConfig, shape: ModelShape, device: torch.device) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() and shape.width >= CPU_BF16_MIN_WIDTH else "fp32"
