"""`train(units, run_dir, cfg)`: one unit LM trained to exactly D tokens, on a units dir or a mixture
of them (lm/train_data.py).

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
import time
from pathlib import Path
from typing import Any

import torch

from slmscale.config import fingerprint, to_dict
from slmscale.files import StageError, check_output_dir, mark_completed, write_text
from slmscale.lm import distributed
from slmscale.lm.checkpoint import TrainerState, has_checkpoint, load_checkpoint, save_checkpoint
from slmscale.lm.config import MAX_EPOCHS, MixtureConfig, TrainConfig
from slmscale.lm.device_peak import device_peak_flops
from slmscale.lm.hf import save_pretrained
from slmscale.lm.metrics_log import MetricsLog
from slmscale.lm.model import Llama, next_token_loss
from slmscale.lm.plan import RunPlan, plan_run, resolve_precision
from slmscale.lm.record import RECORD, RunRecord
from slmscale.lm.sizes import flops_per_token
from slmscale.lm.stop_signals import StopSignals, TrainingStopped
from slmscale.lm.train_data import TrainData, identity_without_paths, open_train_data, pooled_loss_sum
from slmscale.log import get_logger
from slmscale.provenance import git_revision, utc_now, versions

log = get_logger(__name__)


class TrainingDiverged(StageError):
    """A non-finite loss or gradient: the run stops, keeping its last good checkpoint."""


# How a run executes, not what it computes: left out of its fingerprint, so a run interrupted under
# one worker count (a sweep gives each worker cores / workers threads) resumes under another.
EXECUTION_KEYS = ("threads",)


def run_fingerprint(cfg: TrainConfig, units: dict[str, Any]) -> str:
    identity = identity_without_paths(units)
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
    identity = identity_without_paths(units)
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


def train(units: str | Path | MixtureConfig, run_dir: str | Path, cfg: TrainConfig,
          max_epochs: float = MAX_EPOCHS) -> dict[str, Any]:
    """Train (or resume, or skip) one run on a units dir or a mixture of them (lm/train_data.py);
    returns the run record. A plan that repeats its data more than `max_epochs` times is refused
    (lm/config.py MAX_EPOCHS). The limit is an argument, not a TrainConfig key: a key would enter every
    run's recorded config, and a sweep retrains a run whose recorded config differs from what it now
    builds (sweep.worker.stale_config)."""
    run_dir = Path(run_dir)
    data = open_train_data(units, cfg)
    identity = data.identity()
    print_ = run_fingerprint(cfg, identity)
    recorded = _recorded_fingerprint(run_dir, cfg, identity, print_)
    if check_output_dir(run_dir, recorded):
        log.info("%s: already trained with this config; skipping", run_dir)
        return RunRecord.read(run_dir / RECORD).to_json()
    _check_same_config(run_dir, recorded)  # a resumed run goes on under the current fingerprint

    procs = distributed.start(cfg.device)
    try:
        plan = plan_run(cfg, data.meta["vocab_size"], data.train_tokens(cfg.train_split), procs.world_size)
        plan.check_epochs(max_epochs, cfg.train_split)
        data.shares(cfg, plan)  # a mixture's corpus too small for its pool fails before the run starts
        log.info("%s: %s", run_dir, plan.outline())
        if cfg.unique_tokens is None and plan.epochs > 1:
            log.warning("%s: D = %d exceeds the %d tokens of split %r: the data repeats, %.2f epochs",
                        run_dir, plan.tokens, plan.unique_tokens, cfg.train_split, plan.epochs)
        return _train(data, run_dir, cfg, print_, plan, procs)
    finally:
        procs.close()


def _train(data: TrainData, run_dir: Path, cfg: TrainConfig, print_: str, plan: RunPlan,
           procs: distributed.Processes) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = procs.device
    precision = resolve_precision(cfg, plan.shape, device)
    resuming = has_checkpoint(run_dir)
    procs.barrier()  # every process has looked at the run dir before rank 0 writes to it
    record = RunRecord(
        status="running", run_id=run_dir.name, size=cfg.size, **plan.summary(), mixture=data.summary(cfg, plan),
        test_corpora=data.split_corpora(cfg.test_split), valid_corpora=data.split_corpora(cfg.valid_split),
        precision=precision, device=str(device), units=data.identity(), fingerprint=print_,
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
        windows = data.windows(cfg, plan)
        valid = data.valid_streams(cfg.valid_split)
        # One validation set: eval_tokens of it (as before mixtures); several share them.
        valid_tokens = max(2, cfg.eval_tokens // max(1, len(valid)))
        step_model = _wrap(model, cfg, procs)
        eval_every = cfg.eval_every or max(1, plan.updates // 10)
        checkpoint_every = cfg.checkpoint_every or eval_every
        started = time.perf_counter()  # the wall time counts training, not setup
        last_log = (time.perf_counter(), state.tokens)
        flops_per_token_ = flops_per_token(plan.shape, with_attention=True)
        peak = device_peak_flops(device)
        # An update's numbers (loss, gradient norm, finiteness, a stop request) stay on the device,
        # reduced over the processes in one all-reduce, and are read one update late: by then the
        # next update's work is queued, so the host never holds the GPU idle. Where they are needed
        # (a log row, a validation, a checkpoint, a stop), the current update is read at once, so
        # nothing is logged or saved from an update not known to be finite.
        pending, stopping = None, False
        with stop:
            for update in range(state.update, plan.updates):
                loss_sum, grad_norm = _update(step_model, optimizer, windows, plan, update, precision,
                                              cfg.grad_clip, procs)
                stats = _copy_to_host(procs.sum(_update_stats(loss_sum, grad_norm, stop.check() is not None,
                                                              device)))
                if pending is not None:
                    stopping |= _read_stats(*pending, plan, procs, run_dir)[2]
                state.update, state.tokens = update + 1, state.tokens + plan.tokens_in_update(update)
                done = state.update == plan.updates
                log_now = state.update % cfg.log_every == 0 or done
                eval_now = bool(valid) and (state.update % eval_every == 0 or done)
                save_now = state.update % checkpoint_every == 0 or done
                if not (log_now or eval_now or save_now or stopping):
                    pending = (stats, update)
                    continue
                pending = None
                loss, grad_norm, stop_now = _read_stats(stats, update, plan, procs, run_dir)
                stopping |= stop_now
                if log_now:
                    now = time.perf_counter()
                    speed = (state.tokens - last_log[1]) / max(now - last_log[0], 1e-9)
                    last_log = (now, state.tokens)
                    # MFU per device: the run's model FLOP/s over the peak of all its devices.
                    rate = speed * flops_per_token_
                    mfu = {} if peak is None else {"mfu": round(rate / (peak * procs.world_size), 4)}
                    metrics.write(update=state.update, tokens=state.tokens, lr=plan.lr_at(update), loss=loss,
                                  grad_norm=grad_norm, tokens_per_second=round(speed, 1),
                                  model_flops_per_second=float(f"{rate:.4g}"), **mfu,
                                  elapsed_s=round(elapsed(), 3))
                if eval_now:
                    pooled = [pooled_loss_sum(model, stream, plan, procs, valid_tokens) for stream in valid]
                    valid_loss = sum(summed / max(tokens, 1) for summed, tokens in pooled) / len(pooled)
                    record.valid_loss = valid_loss
                    metrics.write(update=state.update, tokens=state.tokens, valid_loss=valid_loss)
                    log.info("update %d/%d  tokens %d  loss %.4f  valid %.4f", state.update, plan.updates,
                             state.tokens, loss, valid_loss)
                if (save_now or stopping) and procs.is_main:
                    state.wall_seconds = elapsed()
                    started = time.perf_counter()
                    save_checkpoint(run_dir, model, optimizer, state)
                if stopping and not done:
                    raise TrainingStopped(f"stopped by {stop.requested or 'a signal to another process'} after "
                                          f"update {state.update} of {plan.updates}; checkpoint saved there, rerun "
                                          "the same command to resume")
        test = data.test_results(model, cfg, plan, procs)  # every process evaluates its share
        if procs.is_main:
            save_pretrained(model, run_dir, data.meta["eos_id"], data.meta.get("pad_id"))
            wall = elapsed()
            record = dataclasses.replace(
                record, status="completed", **test, wall_seconds=round(wall, 3),
                tokens_per_second=round(plan.tokens / max(wall, 1e-9), 1), finished=utc_now())
            record.write(run_dir / RECORD)
            mark_completed(run_dir, print_, test_loss=record.test_loss)
            log.info("%s: test loss %.4f nats/token over %d tokens (%s)", run_dir, record.test_loss,
                     record.test_tokens, ", ".join(record.test_loss_covers or ()))
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
            update: int, precision: str, grad_clip: float,
            procs: distributed.Processes) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer update over this process's share of the update's windows. Returns this
    process's summed loss and the gradient norm, on the device and unread: the host does not wait
    for the GPU here. A non-finite update is still stepped (skipping it would need a host read);
    the trainer raises on it before anything is logged or saved."""
    device = procs.device
    lr = plan.lr_at(update)
    for group in optimizer.param_groups:
        group["lr"] = lr
    rows = plan.share(procs.rank)  # sizes may differ by one between processes (RunPlan.share)
    first = rows.start
    batch = windows.batch(update, plan.sequences_per_update, rows)
    inputs, targets = batch[:, :-1], batch[:, 1:].clone()
    # Mask targets past the budget (only the last update can be partial): exactly D tokens.
    # Positions count over the whole update, this process's rows starting at `first`.
    count = plan.tokens_in_update(update)
    targets.view(-1)[max(0, count - first * plan.shape.context):] = -1
    if device.type == "cuda":
        # Page-locked, the copies run asynchronously: the host goes on to queue the forward.
        inputs, targets = inputs.contiguous().pin_memory(), targets.pin_memory()
    inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
    # Gradients of the update's mean loss: each process sums its tokens' losses and divides by
    # the update's token count; DDP averages over processes, hence the world-size factor.
    scale = procs.world_size / count
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    micro = plan.micro_batch_size
    micro_batches = -(-len(batch) // micro)  # a smaller share's last micro-batch is shorter
    for index in range(micro_batches):
        rows = slice(index * micro, (index + 1) * micro)
        x, y = inputs[rows], targets[rows]
        last = index == micro_batches - 1
        sync = model.no_sync() if procs.distributed and not last else contextlib.nullcontext()
        with sync, _autocast(device, precision):
            loss = next_token_loss(model(x), y)
            (loss * scale).backward()
        loss_sum += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm


def _update_stats(loss_sum: torch.Tensor, grad_norm: torch.Tensor, stop: bool, device: torch.device) -> torch.Tensor:
    """[loss sum, gradient norm, non-finite, stop requested], float64, to be summed over processes:
    the loss sums to the update's, the norm (the same on every process after DDP's averaging) to
    world_size times it, and a flag above 0 means some process raised it."""
    bad = ~(torch.isfinite(loss_sum) & torch.isfinite(grad_norm))
    flag = torch.tensor(float(stop), dtype=torch.float64)
    if device.type == "cuda":
        flag = flag.pin_memory()
    return torch.stack([loss_sum, grad_norm.double(), bad.double(), flag.to(device, non_blocking=True)])


def _copy_to_host(stats: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Start copying `stats` into page-locked host memory; returns the copy and a CUDA event that
    marks its end. Waiting on the event waits for this update's numbers only: a plain read
    (`.tolist()`) would also wait for every kernel queued after them, the next update's included."""
    if stats.device.type != "cuda":
        return stats, None
    host = torch.empty(stats.shape, dtype=stats.dtype, pin_memory=True)
    host.copy_(stats, non_blocking=True)
    done = torch.cuda.Event()
    done.record()
    return host, done


def _read_stats(stats: tuple[torch.Tensor, Any], update: int, plan: RunPlan, procs: distributed.Processes,
                run_dir: Path) -> tuple[float, float, bool]:
    """(mean loss, gradient norm, stop requested) of an update (`_copy_to_host`'s pair); TrainingDiverged
    when any process's loss or gradient norm was not finite."""
    host, done = stats
    if done is not None:
        done.synchronize()
    loss_sum, norm_sum, bad, stop = host.tolist()
    loss, grad_norm = loss_sum / plan.tokens_in_update(update), norm_sum / procs.world_size
    if bad > 0:
        raise TrainingDiverged(
            f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at update {update + 1}; "
            f"the last good checkpoint is kept in {run_dir / 'checkpoint'} (try a lower lr)")
    return loss, grad_norm, stop > 0


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _yaml(data: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump(data, sort_keys=False)
