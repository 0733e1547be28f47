"""The Hugging Face layout: `config.json` + `model.safetensors` that
`transformers.LlamaForCausalLM.from_pretrained` loads, and slmscale loads back.

A run dir is itself such a directory, so the ecosystem (generation, fine-tuning,
lm-eval-style scoring) can use a trained unit LM without slmscale. `model.Llama`
uses HF's parameter names, so the layout is a `model.` prefix; the tied head is not
stored (HF ties it from `tie_word_embeddings`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from slmscale.files import StageError, atomic_file, ordinary_permissions, read_json, temporary_path, write_json
from slmscale.lm.model import Llama, ModelShape
from slmscale.lm.record import RECORD, RunRecord

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def hf_config(shape: ModelShape, eos_id: int | None = None, pad_id: int | None = None) -> dict[str, Any]:
    rope = {"rope_type": "default", "rope_theta": shape.rope_theta}
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": shape.vocab_size, "hidden_size": shape.width,
        "intermediate_size": shape.ffn_hidden, "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads, "num_key_value_heads": shape.heads,
        "head_dim": shape.head_dim, "max_position_embeddings": shape.context,
        "rms_norm_eps": shape.norm_eps, "initializer_range": shape.init_std,
        # transformers 4.x reads rope_theta, 5.x rope_parameters: write both.
        "rope_theta": shape.rope_theta, "rope_parameters": rope,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "attention_dropout": 0.0, "tie_word_embeddings": True, "use_cache": True,
        "torch_dtype": "float32", "bos_token_id": None, "eos_token_id": eos_id, "pad_token_id": pad_id,
    }


def shape_from_hf_config(config: dict[str, Any], source: str = CONFIG) -> ModelShape:
    try:
        if config.get("num_key_value_heads", config["num_attention_heads"]) != config["num_attention_heads"]:
            raise StageError(f"{source}: grouped-query attention is not supported")
        theta = config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta", 10_000.0)
        return ModelShape(vocab_size=config["vocab_size"], context=config["max_position_embeddings"],
                          layers=config["num_hidden_layers"], width=config["hidden_size"],
                          heads=config["num_attention_heads"], ffn_hidden=config["intermediate_size"],
                          norm_eps=config.get("rms_norm_eps", 1e-5), rope_theta=float(theta),
                          init_std=config.get("initializer_range", 0.02))
    except KeyError as err:
        raise StageError(f"{source}: missing key {err.args[0]!r}") from err


def to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """slmscale names -> HF names: the same names under `model.`."""
    return {f"model.{name}": tensor.contiguous() for name, tensor in state.items()}


def from_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF names -> slmscale names; the tied `lm_head.weight`, if stored, is dropped."""
    return {name.removeprefix("model."): tensor for name, tensor in state.items() if name != "lm_head.weight"}


def save_pretrained(model: Llama, directory: str | Path, eos_id: int | None = None,
                    pad_id: int | None = None) -> None:
    """Write `config.json` and `model.safetensors` (fp32) into `directory`, each atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    tmp = temporary_path(directory / WEIGHTS)
    try:
        save_file(to_hf(state), str(tmp), metadata={"format": "pt"})
        ordinary_permissions(tmp)
        tmp.replace(directory / WEIGHTS)
    finally:
        tmp.unlink(missing_ok=True)
    write_json(directory / CONFIG, hf_config(model.shape, eos_id, pad_id))


def load_pretrained(directory: str | Path, device: str | torch.device = "cpu") -> Llama:
    """Load a directory written by `save_pretrained` (or an HF Llama of the same kind)."""
    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise StageError(f"{directory}: no {name}; not a trained run or exported model")
    config = read_json(directory / CONFIG)
    shape = shape_from_hf_config(config, str(directory / CONFIG))
    model = Llama(shape)
    try:
        state = from_hf(load_file(str(directory / WEIGHTS)))
        model.load_state_dict(state, strict=True)
    except (KeyError, RuntimeError) as err:
        raise StageError(f"{directory / WEIGHTS}: does not match {CONFIG} ({err})") from err
    return model.to(device)


def export(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Copy a run's HF directory (weights, config, a README naming the units) to `out_dir`."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model = load_pretrained(run_dir)
    config = read_json(run_dir / CONFIG)
    save_pretrained(model, out_dir, config.get("eos_token_id"), config.get("pad_token_id"))
    record = run_dir / RECORD
    units = (RunRecord.read(record).units or {}) if record.is_file() else {}
    with atomic_file(out_dir / "README.md") as handle:
        handle.write(f"# slmscale unit LM exported from {run_dir.resolve()}\n\n"
                     f"Loads with `transformers.LlamaForCausalLM.from_pretrained`. Token ids are the "
                     f"units of the units dir below (speech units, unigram pieces or characters) "
                     f"0..{shape_from_hf_config(config).vocab_size - 3}, then EOS "
                     f"{config.get('eos_token_id')} and PAD {config.get('pad_token_id')}.\n"
                     f"Units: {json.dumps(units)}\n")
    return out_dir
