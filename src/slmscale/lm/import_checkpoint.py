"""`import_checkpoint(src, units_dir, run_dir, cfg)`: a checkpoint of the authors' code (their released
`gslm-scaling-*` models, or one of their training runs converted by their `slm-convert`) as a
completed slmscale run dir.

The run dir is what `train` leaves (docs/DESIGN.md §4.8): the HF layout (`config.json` +
`model.safetensors`), `run.json` and a `.completed` marker, so eval, generate, export, sweeps and
`LlamaForCausalLM.from_pretrained` take it as they take a trained run. What training would have
recorded comes from elsewhere: the units dir `--units` says what the token ids are (its tokenizer
is what eval and generate tokenize audio with) and holds the test split the test loss is measured
on, here, as train measures its own runs'; the released model's name gives its size and tokens seen
(lm/released.py), so it can enter a results table and a fit. run.json's `origin` says where the
weights come from; `import.yaml` holds the resolved config.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import yaml

from slmscale.config import fingerprint, to_dict
from slmscale.files import MARKER, StageError, atomic_dir, check_output_dir, content_hash_stream, mark_completed
from slmscale.lm.config import CheckpointImportConfig
from slmscale.lm.data import split_loss
from slmscale.lm.hf import save_pretrained
from slmscale.lm.model import Llama, ModelShape
from slmscale.lm.record import RECORD, RunRecord
from slmscale.lm.released import released_run
from slmscale.lm.sizes import PRESETS, count_params, flops_per_token
from slmscale.lm.slm_scaling_format import FORMAT, NativeCheckpoint, read_checkpoint
from slmscale.lm.trainer import bits_per_second, split_corpora, units_identity
from slmscale.log import get_logger
from slmscale.provenance import git_revision, utc_now, versions
from slmscale.units.shards import open_split, read_meta

log = get_logger(__name__)
IMPORT_FILE = "import.yaml"
EXECUTION_KEYS = ("batch_size", "device")
"""How the test loss is computed, not what it is: left out of the import's fingerprint."""


def _file_blocks(files: list[Path]):
    for path in files:
        yield path.name
        with path.open("rb") as handle:
            while block := handle.read(1 << 24):
                yield block


def _preset(shape: ModelShape) -> str | None:
    """The size preset of this shape (at its vocabulary and context), if one is."""
    return next((p.name for p in PRESETS.values() if p.shape(shape.vocab_size, shape.context) == shape), None)


def _tokens(cfg: CheckpointImportConfig, name: str, shape: ModelShape, where: str) -> tuple[int | None, str | None]:
    """D and where it comes from: the config's `tokens`, else what the released model's name gives."""
    released = released_run(name)
    if released is not None and released.size != _preset(shape):
        raise StageError(f"{name}: the name says size {released.size}, but {where} describes "
                         f"{_preset(shape) or 'no size preset'} ({shape.layers} layers of width {shape.width}); "
                         "give the model's own name with --name")
    if cfg.tokens is not None:
        return cfg.tokens, "config tokens"
    if released is None:
        return None, None
    return released.tokens, "released table" if released.exact else "name (rounded as written)"


def _check_units(units_dir: Path, meta: dict[str, Any], shape: ModelShape, cfg: CheckpointImportConfig,
                 where: str) -> None:
    if meta.get("vocab_size") != shape.vocab_size:
        raise StageError(f"{where}: vocab_size {shape.vocab_size}, but {units_dir / 'meta.json'} has vocab_size "
                         f"{meta.get('vocab_size')}: the model's token ids are not these units")
    if cfg.test_split not in meta.get("splits", {}):
        raise StageError(f"{units_dir / 'meta.json'}: no split {cfg.test_split!r} to measure the test loss on "
                         f"(has {sorted(meta.get('splits', {}))})")


def _test_loss(native: NativeCheckpoint, units_dir: Path, cfg: CheckpointImportConfig,
               device: torch.device) -> tuple[Llama, float, int]:
    model = Llama(native.shape)
    model.load_state_dict(native.state, strict=True)
    model.to(device)
    stream = open_split(units_dir, cfg.test_split).tokens
    if len(stream) < 2:
        raise StageError(f"{units_dir}: split {cfg.test_split!r} has {len(stream)} token(s); the test loss needs 2")
    loss, count = split_loss(model, stream, native.shape.context, cfg.batch_size, device, cfg.test_tokens)
    return model.cpu(), loss, count


def import_checkpoint(src: str | Path, units_dir: str | Path, run_dir: str | Path,
                      cfg: CheckpointImportConfig) -> dict[str, Any]:
    """Import (or, done before with the same inputs, skip) one checkpoint; returns run.json's content."""
    src, units_dir, run_dir = Path(src), Path(units_dir), Path(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / MARKER).exists():
        raise StageError(f"{run_dir}: exists and is not an imported run; choose another --out or delete it")
    meta = read_meta(units_dir)
    units = units_identity(units_dir, meta)
    started = utc_now()
    native = read_checkpoint(src)
    weights_hash = content_hash_stream(_file_blocks(list(native.files)))
    print_ = fingerprint({"weights": weights_hash, "units": {k: v for k, v in units.items() if k != "path"},
                          "config": {k: v for k, v in to_dict(cfg).items() if k not in EXECUTION_KEYS}})
    if check_output_dir(run_dir, print_):
        log.info("%s: already imported from %s; skipping", run_dir, src)
        return RunRecord.read(run_dir / RECORD).to_json()
    where = str(src / "config.json")
    shape = native.shape
    _check_units(units_dir, meta, shape, cfg, where)
    name = cfg.name or src.resolve().name
    tokens, tokens_from = _tokens(cfg, name, shape, where)
    if tokens is None:
        log.warning("%s: its name gives no tokens seen and none were given (tokens=D): it cannot enter a "
                    "results table or a fit", name)
    unique = cfg.unique_tokens or tokens
    device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    model, loss, count = _test_loss(native, units_dir, cfg, device)
    flops = {"flops": flops_per_token(shape) * tokens,
             "flops_with_attention": flops_per_token(shape, with_attention=True) * tokens} if tokens else {}
    record = RunRecord(
        status="completed", run_id=run_dir.name, size=_preset(shape), shape=dataclasses.asdict(shape),
        params=count_params(shape).as_dict(), tokens=tokens, unique_tokens=unique,
        epochs=round(tokens / unique, 6) if tokens and unique else None, **flops, test_loss=loss,
        test_bits_per_second=bits_per_second(loss, meta["splits"][cfg.test_split]),
        test_corpora=split_corpora(meta, cfg.test_split), device=str(device), units=units, fingerprint=print_,
        git_revision=git_revision(), versions=versions(), config=to_dict(cfg), started=started,
        test_tokens=count, finished=utc_now(),
        origin={"format": FORMAT, "source": str(src.resolve()), "name": name, "model_args": native.model_args,
                "weights_hash": weights_hash, "tokens_from": tokens_from,
                "unique_tokens_from": "config unique_tokens" if cfg.unique_tokens else
                ("tokens (one pass assumed)" if tokens else None)})
    with atomic_dir(run_dir) as tmp:
        save_pretrained(model, tmp, meta["eos_id"], meta.get("pad_id"))
        record.write(tmp / RECORD)
        (tmp / IMPORT_FILE).write_text(yaml.safe_dump(
            {"source": str(src.resolve()), "units": str(units_dir.resolve()), **to_dict(cfg)}, sort_keys=False))
        mark_completed(tmp, print_, test_loss=loss)
    log.info("%s: imported %s; test loss %.4f nats/token over %d tokens", run_dir, src, loss, count)
    return record.to_json()
