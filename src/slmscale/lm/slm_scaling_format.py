"""The native checkpoint format of the authors' code (tiagoCuervo/slm_scaling), read and written.

A checkpoint dir as their `TransformerLM.save_pretrained` writes it (docs/PAPER.md §11.1):

    config.json                    format_version 1, model_type "slm", model_args {dim, n_layers,
                                   n_heads, n_kv_heads, vocab_size, hidden_dim, multiple_of, norm_eps,
                                   block_size, dropout, prefix_vocab_size, prefix_pad}
    model.safetensors              fp32 weights under the names below, the tied head stored once
    (or model-0000i-of-0000n.safetensors + model.safetensors.index.json when sharded)

Their names map one to one onto `model.Llama`'s (HF's), with one change of layout: their rotary
embedding rotates the interleaved pairs (2i, 2i+1) of each head, HF's the pairs (i, i + head_dim/2).
The rows of wq and wk are permuted per head on the way in (`interleaved_to_halves`) and back on the
way out; q·k is unchanged because both sides move alike, so the models compute the same function.
What `model.Llama` cannot be is refused, naming the file and key: prefix embeddings, grouped-query
attention, an untied head, another format version.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from slmscale.files import StageError, ordinary_permissions, read_json, temporary_path, write_json
from slmscale.lm.hf import load_pretrained
from slmscale.lm.model import ModelShape
from slmscale.lm.record import RECORD, RunRecord

FORMAT = "slm-scaling"
FORMAT_VERSION = 1
MODEL_TYPE = "slm"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
MODEL_ARGS = ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "prefix_vocab_size", "hidden_dim",
              "multiple_of", "norm_eps", "block_size", "dropout", "prefix_pad")
"""The fields of their ModelArgs (src/slm/model.py); their loader refuses any other key, and so does this one."""
DEFAULT_MULTIPLE_OF = 256
"""Their ModelArgs default, written for a model made here (its hidden_dim is explicit, so unused)."""
ROPE_THETA = 10_000.0
"""Their precompute_freqs_cis base, fixed in code (not a model argument)."""

_LAYER_NAMES = {"attention.wq": "self_attn.q_proj", "attention.wk": "self_attn.k_proj",
                "attention.wv": "self_attn.v_proj", "attention.wo": "self_attn.o_proj",
                "feed_forward.w1": "mlp.gate_proj", "feed_forward.w3": "mlp.up_proj",
                "feed_forward.w2": "mlp.down_proj", "attention_norm": "input_layernorm",
                "ffn_norm": "post_attention_layernorm"}
"""Their per-layer module names -> model.Llama's. SwiGLU is w2(silu(w1 x) * w3 x): w1 the gate."""
_ROTATED = ("attention.wq.weight", "attention.wk.weight")
"""The projections whose rows RoPE rotates (q and k)."""


def swiglu_hidden(dim: int, multiple_of: int) -> int:
    """Their FeedForward's hidden size when hidden_dim is null: int(2 * 4d / 3), rounded up to a
    multiple of `multiple_of` (a floor before the rounding, where lm/sizes.py takes a ceiling)."""
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def native_names(layers: int) -> dict[str, str]:
    """Their tensor name -> model.Llama's, for a model of `layers` blocks (the tied head left out)."""
    names = {"tok_embeddings.weight": "embed_tokens.weight", "norm.weight": "norm.weight"}
    for layer in range(layers):
        names.update({f"layers.{layer}.{theirs}.weight": f"layers.{layer}.{ours}.weight"
                      for theirs, ours in _LAYER_NAMES.items()})
    return names


def native_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    """Their tensor name -> its shape, for a model of `shape` (the tied head left out)."""
    width, hidden = shape.width, shape.ffn_hidden
    per_layer = {"attention.wq": (width, width), "attention.wk": (width, width), "attention.wv": (width, width),
                 "attention.wo": (width, width), "feed_forward.w1": (hidden, width),
                 "feed_forward.w3": (hidden, width), "feed_forward.w2": (width, hidden),
                 "attention_norm": (width,), "ffn_norm": (width,)}
    shapes = {"tok_embeddings.weight": (shape.vocab_size, width), "norm.weight": (width,)}
    for layer in range(shape.layers):
        shapes.update({f"layers.{layer}.{name}.weight": size for name, size in per_layer.items()})
    return shapes


def interleaved_to_halves(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows of a q/k projection from their RoPE pairing (2i, 2i+1) to HF's (i, i + half), per head."""
    rows, cols = weight.shape
    return weight.reshape(heads, rows // heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols).contiguous()


def halves_to_interleaved(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """The inverse of `interleaved_to_halves`."""
    rows, cols = weight.shape
    return weight.reshape(heads, 2, rows // heads // 2, cols).transpose(1, 2).reshape(rows, cols).contiguous()


@dataclasses.dataclass(frozen=True)
class NativeCheckpoint:
    """A checkpoint read from the native format, in model.Llama's names and layout."""
    shape: ModelShape
    state: dict[str, torch.Tensor]
    """model.Llama's state dict (fp32, q/k rows in HF's layout), ready for load_state_dict."""
    model_args: dict[str, Any]
    """config.json's model_args as read, kept so that an export writes the same config back."""
    files: tuple[Path, ...]
    """config.json and the weight files, in a fixed order (what the checkpoint's identity hashes)."""


def _arg(args: dict[str, Any], key: str, where: str) -> int:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StageError(f"{where}: model_args.{key} is {value!r}, not a positive integer")
    return value


def shape_from_args(args: Any, where: str) -> ModelShape:
    """model.Llama's shape of their model_args; what it cannot represent is refused, naming the key."""
    if not isinstance(args, dict):
        raise StageError(f"{where}: model_args is not a JSON object")
    unknown = sorted(set(args) - set(MODEL_ARGS))
    if unknown:
        raise StageError(f"{where}: unknown model_args key {unknown[0]!r} (their ModelArgs has "
                         f"{', '.join(MODEL_ARGS)})")
    for key, what in (("prefix_vocab_size", "prefix embeddings"), ("prefix_pad", "prefix padding")):
        if args.get(key) is not None:
            raise StageError(f"{where}: model_args.{key} is {args[key]!r}: {what} (a prefix-conditioned model) "
                             "cannot be represented by slmscale's unit LM")
    dim, layers, heads = (_arg(args, key, where) for key in ("dim", "n_layers", "n_heads"))
    kv_heads = args.get("n_kv_heads")
    if kv_heads is not None and kv_heads != heads:
        raise StageError(f"{where}: model_args.n_kv_heads is {kv_heads} with n_heads {heads}: grouped-query attention "
                         "is not supported by slmscale's unit LM")
    hidden = args.get("hidden_dim")
    hidden = _arg(args, "hidden_dim", where) if hidden is not None else swiglu_hidden(
        dim, _arg(args, "multiple_of", where))
    norm_eps = args.get("norm_eps", 1e-5)
    if isinstance(norm_eps, bool) or not isinstance(norm_eps, (int, float)) or not norm_eps > 0:
        raise StageError(f"{where}: model_args.norm_eps is {norm_eps!r}, not a positive number")
    try:
        return ModelShape(vocab_size=_arg(args, "vocab_size", where), context=_arg(args, "block_size", where),
                          layers=layers, width=dim, heads=heads, ffn_hidden=hidden, norm_eps=float(norm_eps),
                          rope_theta=ROPE_THETA)
    except ValueError as err:
        raise StageError(f"{where}: model_args: {err}") from None


def args_for(shape: ModelShape) -> dict[str, Any]:
    """Their model_args for a model made here (hidden_dim explicit, so no rounding rule applies)."""
    return {"dim": shape.width, "n_layers": shape.layers, "n_heads": shape.heads, "n_kv_heads": None,
            "vocab_size": shape.vocab_size, "prefix_vocab_size": None, "hidden_dim": shape.ffn_hidden,
            "multiple_of": DEFAULT_MULTIPLE_OF, "norm_eps": shape.norm_eps, "block_size": shape.context,
            "dropout": 0.0, "prefix_pad": None}


def _load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise StageError(f"{path}: not a readable safetensors file ({err})") from None


def _weight_files(src: Path) -> list[Path]:
    """The weight files of a checkpoint dir: model.safetensors, or the shards its index names."""
    single, index = src / WEIGHTS, src / INDEX
    if single.is_file() and index.is_file():
        raise StageError(f"{src}: holds both {WEIGHTS} and {INDEX}; which are the weights is ambiguous")
    if single.is_file():
        return [single]
    if not index.is_file():
        raise StageError(f"{src}: no {WEIGHTS} or {INDEX}; not a checkpoint of the slm-scaling format")
    content = read_json(index)
    weight_map = content.get("weight_map") if isinstance(content, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise StageError(f"{index}: no weight_map")
    shards = sorted(set(map(str, weight_map.values())))
    for name in shards:
        if Path(name).name != name or not name.endswith(".safetensors") or not (src / name).is_file():
            raise StageError(f"{index}: weight_map names {name!r}, not a safetensors file in {src}")
    return [src / name for name in shards]


def _native_state(files: list[Path]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in files:
        for name, tensor in _load(path).items():
            if name in state:
                raise StageError(f"{path}: tensor {name!r} is also in another shard")
            state[name] = tensor
    return state


def read_checkpoint(src: str | Path) -> NativeCheckpoint:
    """Read a native checkpoint dir; anything slmscale's Llama cannot be is a StageError naming it."""
    src = Path(src)
    if not (src / CONFIG).is_file():
        raise StageError(f"{src}: no {CONFIG}; not a checkpoint dir of the slm-scaling format")
    config = read_json(src / CONFIG)
    where = str(src / CONFIG)
    if not isinstance(config, dict):
        raise StageError(f"{where}: not a JSON object")
    if config.get("format_version") != FORMAT_VERSION:
        raise StageError(f"{where}: format_version is {config.get('format_version')!r}; only version "
                         f"{FORMAT_VERSION} of the slm-scaling format is known")
    if config.get("model_type") != MODEL_TYPE:
        raise StageError(f"{where}: model_type is {config.get('model_type')!r}, not {MODEL_TYPE!r}")
    shape = shape_from_args(config.get("model_args"), where)
    files = _weight_files(src)
    native = _native_state(files)
    names, shapes = native_names(shape.layers), native_shapes(shape)
    head = native.pop("output.weight", None)
    embedding = native.get("tok_embeddings.weight")
    if head is not None and (embedding is None or not torch.equal(head, embedding)):
        raise StageError(f"{files[0].parent}: output.weight differs from tok_embeddings.weight: an untied output "
                         "head, which slmscale's unit LM (tied embeddings) cannot represent")
    unknown = sorted(set(native) - set(names))
    if unknown:
        raise StageError(f"{files[0].parent}: tensor {unknown[0]!r} is not a weight of the model config.json "
                         f"describes ({shape.layers} layers, no prefix embeddings)")
    missing = sorted(set(names) - set(native))
    if missing:
        raise StageError(f"{files[0].parent}: no tensor {missing[0]!r}")
    state = {}
    for theirs, ours in names.items():
        tensor = native[theirs]
        if not tensor.is_floating_point() or tuple(tensor.shape) != shapes[theirs]:
            raise StageError(f"{files[0].parent}: tensor {theirs!r} is {tensor.dtype} {tuple(tensor.shape)}; "
                             f"config.json's model_args need floating point {shapes[theirs]}")
        tensor = tensor.float()
        state[ours] = interleaved_to_halves(tensor, shape.heads) if theirs.endswith(_ROTATED) else tensor
    return NativeCheckpoint(shape, state, dict(config["model_args"]), (src / CONFIG, *files))


def write_checkpoint(state: dict[str, torch.Tensor], shape: ModelShape, out_dir: str | Path,
                     model_args: dict[str, Any] | None = None) -> Path:
    """Write model.Llama's `state` as a native checkpoint dir (config.json + model.safetensors, fp32,
    the head tied and stored once, as their save_pretrained does). `model_args`: the config to write
    (an imported checkpoint's own, so a round trip gives its config back); default `args_for(shape)`."""
    out_dir = Path(out_dir)
    if (out_dir / INDEX).exists():
        raise StageError(f"{out_dir}: holds a sharded checkpoint ({INDEX}); their loader would refuse "
                         f"it beside a {WEIGHTS}; choose another --out or delete it")
    args = dict(model_args) if model_args is not None else args_for(shape)
    described = shape_from_args(args, "model_args")
    if dataclasses.replace(described, init_std=shape.init_std) != shape:
        raise StageError(f"the model's shape {dataclasses.asdict(shape)} is not the one the slm-scaling format "
                         f"can describe (model_args {args}; its RoPE base is fixed at {ROPE_THETA:g})")
    ours_to_theirs = {ours: theirs for theirs, ours in native_names(shape.layers).items()}
    native = {}
    for ours, tensor in state.items():
        theirs = ours_to_theirs[ours]
        tensor = tensor.detach().float().cpu()
        native[theirs] = halves_to_interleaved(tensor, shape.heads) if theirs.endswith(_ROTATED) else tensor
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(out_dir / WEIGHTS)
    try:
        save_file(native, str(tmp), metadata={"format": "pt"})
        ordinary_permissions(tmp).replace(out_dir / WEIGHTS)
    finally:
        tmp.unlink(missing_ok=True)
    write_json(out_dir / CONFIG, {"format_version": FORMAT_VERSION, "model_type": MODEL_TYPE,
                                  "architectures": ["TransformerLM"], "model_args": args, "torch_dtype": "float32",
                                  "tied_weights": ["tok_embeddings.weight", "output.weight"]})
    return out_dir


def export(run_dir: str | Path, out_dir: str | Path) -> Path:
    """A run dir as a native checkpoint their `TransformerLM.from_pretrained` loads. An imported run
    writes the model_args it was imported with (run.json `origin`), so the round trip gives back the
    same config.json as well as the same weights."""
    run_dir = Path(run_dir)
    model = load_pretrained(run_dir)
    origin = (RunRecord.read(run_dir / RECORD).origin or {}) if (run_dir / RECORD).is_file() else {}
    model_args = origin.get("model_args") if origin.get("format") == FORMAT else None
    return write_checkpoint(model.state_dict(), model.shape, out_dir, model_args)
