"""`train(units_dir, run_dir, cfg)`: one unit LM trained to exactly D tokens.

The run dir (docs/DESIGN.md §4.8) holds `train.yaml` (the resolved config), `run.json` (the
run record, a `RunRecord` (record.py) that only this module writes; status `running` ->
`completed` / `failed` / `interrupted`), `metrics.jsonl` (training
and validation rows), `checkpoint/` (resumable state), and at the end the HF layout
`config.json` + `model.safetensors`. Rerunning the same command resumes from the last
checkpoint, or skips a completed run; a different config in the same dir is an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from slmscale.config import fingerprint, to_dict
from slmscale.files import StageError, check_output_dir, mark_completed, read_json_object, write_text
from slmscale.lm import distributed
from slmscale.lm.checkpoint import TrainerState, has_checkpoint, load_checkpoint, save_checkpoint
from slmscale.lm.config import MAX_EPOCHS, TrainConfig
from slmscale.lm.data import TrainWindows, split_loss
from slmscale.lm.hf import save_pretrained
from slmscale.lm.metrics_log import MetricsLog
from slmscale.lm.model import Llama, next_token_loss
from slmscale.lm.plan import RunPlan, plan_run, resolve_precision
from slmscale.lm.record import RECORD, RunRecord
from slmscale.lm.stop_signals import StopSignals, TrainingStopped
from slmscale.log import get_logger
from slmscale.provenance import git_revision, utc_now, versions
from slmscale.units.shards import open_split, read_meta

log = get_logger(__name__)


class TrainingDiverged(StageError):
    """A non-finite loss or gradient: the run stops, keeping its last good checkpoint."""


def units_identity(units_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """What a run depends on in its units dir (not its path, which may move)."""
    return {"path": str(units_dir.resolve()), "vocab_size": meta["vocab_size"], "eos_id": meta["eos_id"],
            "pad_id": meta.get("pad_id"), "tokenizer_fingerprint": meta.get("tokenizer_fingerprint"),
            "splits": {name: {k: s.get(k) for k in ("tokens", "utterances", "audio_seconds")}
                       for name, s in meta["splits"].items()}}


def _corpus_origin(source: Path) -> tuple[str | None, bool | None, dict[str, Any]]:
    """Who made a corpus dir, whether its speech is synthetic, and its synth summary if any."""
    importer = read_json_object(source / "import.json").get("importer")
    if importer:  # LibriSpeech is read speech; an imported folder may hold anything
        return f"import-{importer}", {"librispeech": False}.get(importer), {}
    synth = read_json_object(source.parent / "synth.json") if source.name == "corpus" else {}
    if synth:  # `slmscale synth` writes OUT/corpus and OUT/synth.json
        return "synth", True, synth
    return None, None, {}


def split_corpora(meta: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """The corpora whose speech a split of a units dir holds, as its meta.json and the corpus dir
    it was tokenized from tell (`[]` for a missing split): the corpus path, who made it, whether
    it is synthetic (None: not known), and, for a synth corpus, the kinds of text in the split.
    A units subset names the id prefixes it kept; unigram-encoded units (whose `source` is the
    units dir they encode) have that dir's corpora. Recorded so that a test loss says what it covers."""
    if split not in meta.get("splits", {}):
        return []
    source = meta.get("source")
    if isinstance(source, dict):
        encoded = read_json_object(Path(str(source.get("dir", ""))) / "meta.json")
        return split_corpora(encoded, split) or [{"corpus": None, "made_by": None, "synthetic": None}]
    source = str(source) if source else None
    made_by, synthetic, synth = _corpus_origin(Path(source)) if source else (None, None, {})
    entry: dict[str, Any] = {"corpus": source, "made_by": made_by, "synthetic": synthetic}
    subset = meta.get("subset")
    if subset:
        entry["ids_starting_with"] = subset.get("prefixes", [])
    elif synth:
        entry["kinds"] = sorted(synth.get("corpus", {}).get("hours", {}).get(split, {}))
    return [entry]


# How a run executes, not what it computes: left out of its fingerprint, so a run interrupted under
# one worker count (a sweep gives each worker cores / workers threads) resumes under another.
EXECUTION_KEYS = ("threads",)


def run_fingerprint(cfg: TrainConfig, units: dict[str, Any]) -> str:
    identity = {k: v for k, v in units.items() if k != "path"}
    config = {k: v for k, v in to_dict(cfg).items() if k not in EXECUTION_KEYS}
    return fingerprint({"config": config, "units": identity})


def _recorded_fingerprint(run_dir: Path, cfg: TrainConfig, units: dict[str, Any], print_: str) -> str:
    """The fingerprint under which `run_dir` holds this same run when an older rule named it: before
    EXECUTION_KEYS the fingerprint covered the thread count, and sweeps once trained under `auto`
    what they now pass explicitly (the same run when `auto` had resolved to that precision)."""
    old = RunRecord.peek(run_dir / RECORD)
    old_config = old.config
    if old.fingerprint in (None, print_) or not isinstance(old_config, dict):
        return print_
    identity = {k: v for k, v in units.items() if k != "path"}
    same = dataclasses.replace(cfg, threads=old_config.get("threads"))
    candidates = [same]
    if cfg.precision != "auto" and old.precision == cfg.precision:
        candidates.append(dataclasses.replace(same, precision="auto"))
    for candidate in candidates:
        for named in (run_fingerprint(candidate, units),
                      fingerprint({"config": to_dict(candidate), "units": identity})):
            if old.fingerprint == named:
                return named
    return print_


def _check_same_config(run_dir: Path, print_: str) -> None:
    record = run_dir / RECORD
    if not record.is_file():
        return
    old = RunRecord.read(record, hint="; delete the run dir to start over")
    if old.fingerprint != print_:
        raise StageError(f"{run_dir} holds a run with a different config or units dir (see {record}, "
                         f"{run_dir / 'train.yaml'}); choose another --out or delete it")


def bits_per_second(loss: float, split_meta: dict[str, Any]) -> float | None:
    """nats/token -> bits per second of audio, comparable across tokenizers of the same audio."""
    seconds = split_meta.get("audio_seconds")
    if not seconds:
        return None  # a text units dir has no audio
    return loss / math.log(2) * split_meta["tokens"] / seconds


def train(units_dir: str | Path, run_dir: str | Path, cfg: TrainConfig,
          max_epochs: float = MAX_EPOCHS) -> dict[str, Any]:
    """Train (or resume, or skip) one run; returns the run record. A plan that repeats its data more
    than `max_epochs` times is refused (lm/config.py MAX_EPOCHS). The limit is an argument, not a
    TrainConfig key: a key would enter every run's recorded config, and a sweep retrains a run whose
    recorded config differs from what it now builds (sweep.worker.stale_config)."""
    units_dir, run_dir = Path(units_dir), Path(run_dir)
    meta = read_meta(units_dir)
    for split in (cfg.train_split, cfg.test_split):
        if split not in meta.get("splits", {}):
            hint = ("; an imported synthetic corpus has no test split unless asked for (import-tinystories "
                    "--split-fractions 0.98,0.01,0.01)" if split == cfg.test_split else "")
            raise StageError(f"{units_dir}/meta.json: no split {split!r} (has {sorted(meta.get('splits', {}))})"
                             f"{hint}")
    units = units_identity(units_dir, meta)
    print_ = run_fingerprint(cfg, units)
    recorded = _recorded_fingerprint(run_dir, cfg, units, print_)
    if check_output_dir(run_dir, recorded):
        log.info("%s: already trained with this config; skipping", run_dir)
        return RunRecord.read(run_dir / RECORD).to_json()
    _check_same_config(run_dir, recorded)  # a resumed run goes on under the current fingerprint

    procs = distributed.start(cfg.device)
    try:
        plan = plan_run(cfg, meta["vocab_size"], meta["splits"][cfg.train_split]["tokens"], procs.world_size)
        plan.check_epochs(max_epochs, cfg.train_split)
        log.info("%s: %s", run_dir, plan.outline())
        if cfg.unique_tokens is None and plan.epochs > 1:
            log.warning("%s: D = %d exceeds the %d tokens of split %r: the data repeats, %.2f epochs",
                        run_dir, plan.tokens, plan.unique_tokens, cfg.train_split, plan.epochs)
        return _train(units_dir, run_dir, cfg, meta, units, print_, plan, procs)
    finally:
        procs.close()


def _train(units_dir: Path, run_dir: Path, cfg: TrainConfig, meta: dict[str, Any], units: dict[str, Any],
           print_: str, plan: RunPlan, procs: distributed.Processes) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = procs.device
    precision = resolve_precision(cfg, plan.shape, device)
    resuming = has_checkpoint(run_dir)
    procs.barrier()  # every process has looked at the run dir before rank 0 writes to it
    record = RunRecord(
        status="running", run_id=run_dir.name, size=cfg.size, **plan.summary(),
        test_corpora=split_corpora(meta, cfg.test_split), valid_corpora=split_corpora(meta, cfg.valid_split),
        precision=precision, device=str(device), units=units, fingerprint=print_,
        git_revision=git_revision(), versions=versions(), config=to_dict(cfg), started=utc_now())
    if procs.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "train.yaml", _yaml(to_dict(cfg)))
        record.write(run_dir / RECORD)

    # From the first `running` record on, every error is recorded (`failed`, or `interrupted`):
    # setup (a truncated shard, a bad checkpoint) and the final test loss once failed outside the
    # recorded region and left run.json saying `running`. Rank 0 alone writes; no barrier is added.
    state, metrics, started = TrainerState(), None, time.perf_counter()

    def elapsed() -> float:
        return state.wall_seconds + time.perf_counter() - started

    def fail(message: str, status: str = "failed") -> None:
        """Record why the run stopped: `failed` (an error; rerunning repeats it unless the cause is
        fixed) or `interrupted` (a signal or Ctrl-C; rerunning resumes from the last checkpoint)."""
        if procs.is_main:
            dataclasses.replace(record, status=status, error=message, wall_seconds=round(elapsed(), 3),
                                finished=utc_now()).write(run_dir / RECORD)

    stop = StopSignals()
    try:
        torch.manual_seed(cfg.seed)
        model = Llama(plan.shape).to(device)
        optimizer = _adamw(model, cfg, device)
        state = load_checkpoint(run_dir, model, optimizer, device) if resuming else TrainerState()
        if resuming:
            log.info("%s: resuming after update %d of %d", run_dir, state.update, plan.updates)
        metrics = MetricsLog(run_dir / "metrics.jsonl", keep_through_update=state.update,
                             enabled=procs.is_main)
        train_stream = open_split(units_dir, cfg.train_split).tokens
        windows = TrainWindows(train_stream, plan.shape.context, plan.unique_tokens, cfg.sampling, cfg.seed)
        valid = (open_split(units_dir, cfg.valid_split).tokens
                 if cfg.valid_split in meta["splits"] else None)
        step_model = _wrap(model, cfg, procs)
        eval_every = cfg.eval_every or max(1, plan.updates // 10)
        checkpoint_every = cfg.checkpoint_every or eval_every
        started = time.perf_counter()  # the wall time counts training, not setup
        last_log = (time.perf_counter(), state.tokens)
        with stop:
            for update in range(state.update, plan.updates):
                loss, grad_norm = _update(step_model, optimizer, windows, plan, update, precision, cfg.grad_clip,
                                          procs)
                finite, running = procs.all_agree(math.isfinite(loss) and math.isfinite(grad_norm),
                                                  stop.requested is None)
                if not finite:
                    raise TrainingDiverged(
                        f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at update {update + 1}; "
                        f"the last good checkpoint is kept in {run_dir / 'checkpoint'} (try a lower lr)")
                state.update, state.tokens = update + 1, state.tokens + plan.tokens_in_update(update)
                done = state.update == plan.updates
                if state.update % cfg.log_every == 0 or done:
                    now = time.perf_counter()
                    speed = (state.tokens - last_log[1]) / max(now - last_log[0], 1e-9)
                    last_log = (now, state.tokens)
                    metrics.write(update=state.update, tokens=state.tokens, lr=plan.lr_at(update), loss=loss,
                                  grad_norm=grad_norm, tokens_per_second=round(speed, 1),
                                  elapsed_s=round(elapsed(), 3))
                if valid is not None and (state.update % eval_every == 0 or done) and procs.is_main:
                    valid_loss, _ = split_loss(model, valid, plan.shape.context, plan.micro_batch_size,
                                               device, cfg.eval_tokens)
                    record.valid_loss = valid_loss
                    metrics.write(update=state.update, tokens=state.tokens, valid_loss=valid_loss)
                    log.info("update %d/%d  tokens %d  loss %.4f  valid %.4f", state.update, plan.updates,
                             state.tokens, loss, valid_loss)
                if (state.update % checkpoint_every == 0 or done or not running) and procs.is_main:
                    state.wall_seconds = elapsed()
                    started = time.perf_counter()
                    save_checkpoint(run_dir, model, optimizer, state)
                if not running and not done:
                    raise TrainingStopped(f"stopped by {stop.requested or 'a signal to another process'} after "
                                          f"update {state.update} of {plan.updates}; checkpoint saved there, rerun "
                                          "the same command to resume")
        procs.barrier()
        if procs.is_main:
            test = open_split(units_dir, cfg.test_split).tokens
            test_loss, test_count = split_loss(model, test, plan.shape.context, plan.micro_batch_size,
                                               device, cfg.test_tokens)
            save_pretrained(model, run_dir, meta["eos_id"], meta.get("pad_id"))
            wall = elapsed()
            record = dataclasses.replace(
                record, status="completed", test_loss=test_loss, test_tokens=test_count,
                test_bits_per_second=bits_per_second(test_loss, meta["splits"][cfg.test_split]),
                wall_seconds=round(wall, 3), tokens_per_second=round(plan.tokens / max(wall, 1e-9), 1),
                finished=utc_now())
            record.write(run_dir / RECORD)
            mark_completed(run_dir, print_, test_loss=test_loss)
            log.info("%s: test loss %.4f nats/token over %d tokens", run_dir, test_loss, test_count)
    except TrainingStopped as err:
        fail(str(err), status="interrupted")
        raise
    except TrainingDiverged as err:
        fail(str(err))
        raise
    except KeyboardInterrupt:
        fail(f"interrupted after update {state.update}; rerun the same command to resume from its last "
             "checkpoint", status="interrupted")
        raise
    except Exception as err:
        fail(f"{type(err).__name__}: {err}")
        raise
    finally:
        if metrics is not None:
            metrics.close()
    procs.barrier()  # past the final record: a completed run is never re-recorded as failed
    return RunRecord.read(run_dir / RECORD).to_json()


def _adamw(model: Llama, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Weight decay on matrices (embedding, projections), not on norm gains (docs/PAPER.md §2.3)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=0.0, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")


def _wrap(model: Llama, cfg: TrainConfig, procs: distributed.Processes) -> torch.nn.Module:
    """DDP first, then compile the DDP module: compiled inside DDP, the graph would end before the
    gradient hooks, so the all-reduce could not overlap the backward (torch's DDP + compile notes).
    Gradients are views into DDP's buckets, saving a copy of every gradient."""
    wrapped: torch.nn.Module = model
    if procs.distributed:
        from torch.nn.parallel import DistributedDataParallel
        wrapped = DistributedDataParallel(model, device_ids=[procs.device.index] if procs.device.type == "cuda"
                                          else None, gradient_as_bucket_view=True)
    return torch.compile(wrapped) if cfg.compile else wrapped


def _update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, windows: TrainWindows, plan: RunPlan,
            update: int, precision: str, grad_clip: float, procs: distributed.Processes) -> tuple[float, float]:
    """One optimizer update over this process's share of the update's windows."""
    device = procs.device
    lr = plan.lr_at(update)
    for group in optimizer.param_groups:
        group["lr"] = lr
    first = procs.rank * plan.sequences_per_process
    batch = windows.batch(update, plan.sequences_per_update, slice(first, first + plan.sequences_per_process))
    inputs, targets = batch[:, :-1], batch[:, 1:].clone()
    # Mask targets past the budget (only the last update can be partial): exactly D tokens.
    # Positions count over the whole update, this process's rows starting at `first`.
    count = plan.tokens_in_update(update)
    targets.view(-1)[max(0, count - first * plan.shape.context):] = -1
    # Gradients of the update's mean loss: each process sums its tokens' losses and divides by
    # the update's token count; DDP averages over processes, hence the world-size factor.
    scale = procs.world_size / count
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    micro = plan.micro_batch_size
    for index in range(plan.micro_batches):
        rows = slice(index * micro, (index + 1) * micro)
        x, y = inputs[rows].to(device, non_blocking=True), targets[rows].to(device, non_blocking=True)
        last = index == plan.micro_batches - 1
        sync = model.no_sync() if procs.distributed and not last else contextlib.nullcontext()
        with sync, _autocast(device, precision):
            loss = next_token_loss(model(x), y)
            (loss * scale).backward()
        loss_sum += loss.detach()
    loss_mean = float(procs.sum(loss_sum)) / count
    grad_norm = torch.nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip if grad_clip > 0 else float("inf"))
    if math.isfinite(loss_mean) and math.isfinite(float(grad_norm)):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_mean, float(grad_norm)


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _yaml(data: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump(data, sort_keys=False)
