"""The trainer's config: one run of one model size on one token budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional


@dataclass(frozen=True)
class TrainConfig:
    size: str = "tiny-L2"
    """Model size preset (`slmscale sizes` lists them): its shape, context, batch and LR."""
    tokens: int = 0
    """Training budget D: the run stops after exactly this many predicted tokens."""
    unique_tokens: Optional[int] = None
    """Train only on the first U tokens of the train split (D/U epochs, the paper's
    data-constrained runs); none = the whole split."""
    sampling: Literal["random", "epochs"] = "random"
    """`random`: windows at random offsets, with replacement (the paper's nanoGPT-style loader).
    `epochs`: non-overlapping windows, reshuffled each epoch, so every unique token is seen
    once per epoch."""
    context: Optional[int] = None
    """Sequence length; none = the preset's (2050 for the paper's sizes, 256 for tiny)."""
    tokens_per_update: Optional[int] = None
    """Tokens per optimizer update (a multiple of the context); none = the preset's batch."""
    micro_batch_size: Optional[int] = None
    """Sequences per forward pass and process; updates accumulate gradients over micro-batches.
    None = the largest that fits `memory_gb` (lm.plan.auto_micro_batch): the whole update for
    every tiny size, 16-24 sequences of 2050 tokens for 823m on an 80 GB GPU."""
    memory_gb: float = 80.0
    """Memory per process (GB) the automatic micro-batch is planned to fit."""
    lr: Optional[float] = None
    """Peak learning rate; none = the preset's (5e-4 for the paper's sizes)."""
    final_lr_fraction: float = 0.1
    """The cosine decays to this fraction of the peak (5e-4 -> 5e-5 in the paper)."""
    warmup_min_steps: int = 100
    """Warmup lasts max(warmup_min_steps, warmup_fraction x steps), at most half the run."""
    warmup_fraction: float = 0.01
    """See warmup_min_steps."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2."""
    weight_decay: float = 0.1
    """AdamW weight decay, on tensors of 2+ dimensions only (not norms)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Training matmul precision: bf16 autocast over fp32 weights and optimizer state, or fp32.
    `auto`: bf16 on GPUs that support it, and on CPUs with native bf16 (AVX512-BF16/AMX) from
    width 128; fp32 elsewhere (10x faster than bf16 on an AVX2 CPU, benchmarks/RESULTS.md).
    That rule is per run: a sweep resolves `auto` once for all its runs (slmscale.sweep.precision)
    and passes the result here, so one grid never mixes precisions. Evaluation is always fp32."""
    compile: bool = False
    """Wrap the model in torch.compile for training."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """`auto` = CUDA when available (each torchrun process takes its LOCAL_RANK GPU)."""
    threads: Optional[int] = None
    """torch CPU threads per process; none = torch's default."""
    seed: int = 0
    """Seeds the initial weights and every training window."""
    eval_every: Optional[int] = None
    """Validation loss every this many updates; none = about 10 times per run."""
    eval_tokens: int = 131_072
    """Validation tokens per periodic evaluation (from the start of the split)."""
    test_tokens: Optional[int] = None
    """Cap on the final test evaluation; none = the whole test split."""
    checkpoint_every: Optional[int] = None
    """Save a resumable checkpoint every this many updates; none = at every evaluation."""
    log_every: int = 10
    """Write a training row to metrics.jsonl every this many updates."""
    train_split: str = "train"
    """Split of the units dir to train on."""
    valid_split: str = "valid"
    """Split for the periodic validation loss (skipped when absent)."""
    test_split: str = "test"
    """Split for the final test loss and bits per second."""

    def __post_init__(self) -> None:
        from slmscale.config import ConfigError
        if not self.memory_gb > 0:
            raise ConfigError(f"memory_gb: must be positive, got {self.memory_gb}")
