"""The paper's unit LM: a Llama decoder (docs/PAPER.md §2.2).

Pre-norm RMSNorm (eps 1e-5), RoPE (theta 10,000), SwiGLU MLP, no biases, no GQA,
no dropout, tied input/output embeddings; init N(0, 0.02) with the two residual
output projections (attention out, MLP down) at 0.02/sqrt(2 * layers), as in GPT-2
and the authors' code, so the residual stream's variance does not grow with depth.

Parameter names are `transformers`' Llama names (without the `model.` prefix), so the
HF layout is a renaming. Separate q/k/v and gate/up projections, not fused ones:
fused matrices measured 3-5% slower per training step on the 2-core CPU, since the
views they are split into make every elementwise op after them strided
(docs/LOG.md, 2026-11-25). RoPE uses HF's rotate-half convention (not Meta's
interleaved pairs), so exported weights need no permutation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelShape:
    """The hyperparameters that define one Llama; everything else is derived."""
    vocab_size: int
    """Embedding rows: units plus EOS and PAD (502 for the paper's 500 units)."""
    context: int
    """Longest sequence the model is trained on (2050 in the paper)."""
    layers: int
    """Transformer blocks."""
    width: int
    """Model dimension d_model."""
    heads: int
    """Attention heads; the head dimension is width / heads."""
    ffn_hidden: int
    """SwiGLU hidden size (8d/3 rounded up to a multiple of 256 in the paper)."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""
    rope_theta: float = 10_000.0
    """RoPE base frequency."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation."""

    def __post_init__(self) -> None:
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"width {self.width} must split into {self.heads} heads of even size")
        for name in ("vocab_size", "context", "layers", "width", "heads", "ffn_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


def rope_tables(shape: ModelShape, length: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin of shape (length, head_dim): each frequency serves both halves,
    and the sin of the first half is negated (see `apply_rope`)."""
    half = shape.head_dim // 2
    inv_freq = 1.0 / (shape.rope_theta ** (torch.arange(half, dtype=torch.float64, device=device) / half))
    angles = torch.outer(torch.arange(length, dtype=torch.float64, device=device), inv_freq)
    return torch.cat([angles, angles], dim=-1).cos().float(), torch.cat([-angles, angles], dim=-1).sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, H, T, head_dim) by position with `rope_tables`' cos and signed sin.

    HF's x*cos + rotate_half(x)*sin with rotate_half(x) = [-x2, x1]: swapping the halves with
    one roll and negating the first half's sin gives the same sum in three ops (1.45x HF's
    chunk/cat formula alone). A hand-written backward (the rotation by -theta) was dropped: it
    gained nothing over autograd on these ops (benchmarks/rope_speed.py, docs/LOG.md 2026-12-07)."""
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), signed_sin)


class KVCache:
    """Keys and values of every layer for incremental decoding, preallocated to `capacity`."""

    def __init__(self, shape: ModelShape, batch: int, capacity: int, device: torch.device, dtype: torch.dtype):
        size = (shape.layers, batch, shape.heads, capacity, shape.head_dim)
        self.keys = torch.zeros(size, device=device, dtype=dtype)
        self.values = torch.zeros(size, device=device, dtype=dtype)
        self.length = 0
        self.capacity = capacity

    def append(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + keys.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache full: {end} positions > capacity {self.capacity}")
        self.keys[layer, :, :, start:end] = keys
        self.values[layer, :, :, start:end] = values
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 even under bf16 autocast, as HF's Llama does.
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, shape: ModelShape, layer: int):
        super().__init__()
        self.shape, self.layer = shape, layer
        self.q_proj = nn.Linear(shape.width, shape.width, bias=False)
        self.k_proj = nn.Linear(shape.width, shape.width, bias=False)
        self.v_proj = nn.Linear(shape.width, shape.width, bias=False)
        self.o_proj = nn.Linear(shape.width, shape.width, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        batch, length, width = x.shape
        split = (batch, length, self.shape.heads, self.shape.head_dim)
        q, k, v = (proj(x).view(split).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        q, k = apply_rope(q, cos, sin).to(v.dtype), apply_rope(k, cos, sin).to(v.dtype)
        prefix = 0
        if cache is not None:
            prefix = cache.length
            k, v = cache.append(self.layer, k, v)
        if prefix and length > 1:
            raise ValueError("KV cache: feed one token at a time after the prompt")
        # With a cache and one new token, every cached key is visible: no mask. Without a cache the
        # mask is always causal, a plain bool: `length > 1` on a compiled graph's symbolic length
        # would be a SymBool, which SDPA refuses.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None or length > 1)
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, width))


class SwiGLU(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.gate_proj = nn.Linear(shape.width, shape.ffn_hidden, bias=False)
        self.up_proj = nn.Linear(shape.width, shape.ffn_hidden, bias=False)
        self.down_proj = nn.Linear(shape.ffn_hidden, shape.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, shape: ModelShape, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(shape.width, shape.norm_eps)
        self.self_attn = Attention(shape, layer)
        self.post_attention_layernorm = RMSNorm(shape.width, shape.norm_eps)
        self.mlp = SwiGLU(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Token ids (B, T) to next-token logits (B, T, vocab)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.embed_tokens = nn.Embedding(shape.vocab_size, shape.width)
        self.layers = nn.ModuleList(Block(shape, i) for i in range(shape.layers))
        self.norm = RMSNorm(shape.width, shape.norm_eps)
        cos, sin = rope_tables(shape, shape.context)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def to_empty(self, *, device, recurse: bool = True) -> "Llama":
        """Materialise a model built on the `meta` device (large models are built there to skip
        a CPU copy): `to_empty` leaves every tensor uninitialised, and the RoPE tables are not
        parameters that a checkpoint or `reset_parameters` would fill, so they are computed here."""
        super().to_empty(device=device, recurse=recurse)
        cos, sin = rope_tables(self.shape, self.shape.context, self.rope_cos.device)
        self.rope_cos, self.rope_sin = cos, sin
        return self

    @torch.no_grad()
    def reset_parameters(self) -> None:
        residual_std = self.shape.init_std / math.sqrt(2 * self.shape.layers)
        for name, param in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "norm.weight":
                param.fill_(1.0)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                param.normal_(0.0, residual_std)
            else:
                param.normal_(0.0, self.shape.init_std)

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.length if cache is not None else 0
        end = start + tokens.shape[1]
        if end > self.shape.context:
            raise ValueError(f"sequence of {end} tokens exceeds the context of {self.shape.context}")
        cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]
        x = self.embed_tokens(tokens)
        for block in self.layers:
            x = block(x, cos, sin, cache)
        if cache is not None:
            cache.length = end
        # Tied output head: the embedding matrix maps hidden states back to the vocabulary.
        return F.linear(self.norm(x), self.embed_tokens.weight)

    def new_cache(self, batch: int, capacity: int | None = None) -> KVCache:
        weight = self.embed_tokens.weight
        return KVCache(self.shape, batch, capacity or self.shape.context, weight.device, weight.dtype)


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross entropy in fp32 over targets that are not -1 (masked)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=-1, reduction="sum")
