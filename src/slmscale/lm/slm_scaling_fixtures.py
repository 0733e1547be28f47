"""Small checkpoints in the authors' native format (docs/PAPER.md §11.1), with random weights, for
tests and for trying `slmscale import-checkpoint` without their code or a download.

Written tensor by tensor under their names, as their `save_pretrained` lays a checkpoint out, not
through this package's exporter, so an import test checks the format and not the exporter's reading
of it. Variants that slmscale must refuse (grouped-query attention, prefix embeddings, an untied
head) are made by `model_args` overrides and `untied_head`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

TINY_ARGS = {"dim": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": None, "vocab_size": 26, "prefix_vocab_size": None,
             "hidden_dim": None, "multiple_of": 16, "norm_eps": 1e-5, "block_size": 64, "dropout": 0.0,
             "prefix_pad": None}
"""Their ModelArgs fields, in their order, for a model of 2 layers of width 32 (SwiGLU hidden 96)."""


def _hidden(args: dict[str, Any]) -> int:
    if args["hidden_dim"] is not None:
        return int(args["hidden_dim"])
    hidden = int(2 * 4 * args["dim"] / 3)
    return args["multiple_of"] * -(-hidden // args["multiple_of"])


def native_tensors(args: dict[str, Any], seed: int = 0, untied_head: bool = False) -> dict[str, torch.Tensor]:
    """Random weights under their names: projections N(0, 0.1) (large enough that every layer changes
    the logits), norm gains around 1, the embedding N(0, 0.5) (also the tied output head)."""
    gen = torch.Generator().manual_seed(seed)
    dim, kv = args["dim"], (args["n_kv_heads"] or args["n_heads"]) * args["dim"] // args["n_heads"]
    hidden = _hidden(args)

    def normal(*size: int, std: float = 0.1) -> torch.Tensor:
        return torch.randn(*size, generator=gen) * std

    tensors = {"tok_embeddings.weight": normal(args["vocab_size"], dim, std=0.5)}
    for layer in range(args["n_layers"]):
        sizes = {"attention.wq": (dim, dim), "attention.wk": (kv, dim), "attention.wv": (kv, dim),
                 "attention.wo": (dim, dim), "feed_forward.w1": (hidden, dim), "feed_forward.w2": (dim, hidden),
                 "feed_forward.w3": (hidden, dim)}
        tensors.update({f"layers.{layer}.{name}.weight": normal(*size) for name, size in sizes.items()})
        tensors.update({f"layers.{layer}.{name}.weight": 1 + normal(dim) for name in ("attention_norm", "ffn_norm")})
    tensors["norm.weight"] = 1 + normal(dim)
    if args.get("prefix_vocab_size") is not None:
        tensors["prefix_embeddings.weight"] = normal(args["prefix_vocab_size"], dim)
    if untied_head:
        tensors["output.weight"] = normal(args["vocab_size"], dim)
    return tensors


def write_native_checkpoint(path: str | Path, seed: int = 0, shards: int = 1, untied_head: bool = False,
                            **model_args: Any) -> Path:
    """A checkpoint dir: config.json and model.safetensors, or `shards` files and their index.
    `model_args` override TINY_ARGS (any key, also ones their ModelArgs does not have)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    args = {**TINY_ARGS, **model_args}
    tensors = native_tensors(args, seed, untied_head)
    config = {"format_version": 1, "model_type": "slm", "architectures": ["TransformerLM"], "model_args": args,
              "torch_dtype": "float32", "tied_weights": ["tok_embeddings.weight", "output.weight"]}
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if shards == 1:
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
        return path
    names = list(tensors)
    weight_map = {}
    for index in range(shards):
        file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[index::shards]}
        save_file(part, str(path / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    return path
