"""Sampling unit continuations from a trained LM, with a KV cache.

The prompt is run once through the model (prefill), filling every layer's keys and
values; each new token then costs one single-position forward. When the cache
reaches the context length, it is refilled from the last half-context of tokens, so
generation can continue past the training context at an amortised cost.
`use_cache=False` recomputes the whole window each step: the reference the cached
path is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from slmscale.lm.config import SamplingConfig
from slmscale.lm.model import Llama


def filter_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Logits (vocab,) with excluded tokens at -inf, after temperature."""
    logits = logits.float() / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < logits.numel():
        kth = torch.topk(logits, cfg.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p is not None and cfg.top_p < 1.0:
        ordered, order = torch.sort(logits, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        # Drop a token when the tokens before it already reach p (the first always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= cfg.top_p
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    return logits


def _pick(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator) -> int:
    if cfg.temperature == 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(filter_logits(logits, cfg), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


@torch.no_grad()
def sample(model: Llama, prompt: Sequence[int], max_new_tokens: int, cfg: SamplingConfig = SamplingConfig(),
           stop_token: int | None = None, use_cache: bool = True) -> list[int]:
    """Continue `prompt` by up to `max_new_tokens` units (fewer if `stop_token` is drawn)."""
    if not prompt:
        raise ValueError("sample: the prompt must hold at least one token")
    was_training = model.training
    model.eval()
    device = model.embed_tokens.weight.device
    context = model.shape.context
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    tokens = list(prompt)
    new: list[int] = []
    cache = None
    for _ in range(max_new_tokens):
        if not use_cache:
            logits = model(torch.tensor([tokens[-context:]], device=device))[0, -1]
        elif cache is None or cache.length == context:
            refill = cache is not None  # the cache is full: go on from the last half-context
            cache = model.new_cache(1)
            window = tokens[-(context // 2):] if refill else tokens[-context:]
            logits = model(torch.tensor([window], device=device), cache)[0, -1]
        else:
            logits = model(torch.tensor([[tokens[-1]]], device=device), cache)[0, -1]
        token = _pick(logits, cfg, generator)
        tokens.append(token)
        new.append(token)
        if token == stop_token:
            break
    model.train(was_training)
    return new
