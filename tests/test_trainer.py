"""The trainer on a tiny units dir: exact budgets, the run record, stored losses, resume,
divergence, unique tokens, the CLI and HF export."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import slmscale.lm.train_data as train_data
import slmscale.lm.trainer as trainer
from slmscale.cli import main
from slmscale.config import ConfigError
from slmscale.files import StageError
from slmscale.lm.config import TrainConfig
from slmscale.lm.hf import load_pretrained
from slmscale.lm.trainer import TrainingDiverged, train
from slmscale.units.fixtures import make_units_dir
from slmscale.units.shards import read_meta

FAST = TrainConfig(size="tiny-L1", tokens=3000, context=32, tokens_per_update=256, log_every=1,
                   eval_every=4, lr=1e-2)
# Training losses of FAST on make_units_dir(seed 0), one per update (torch 2.13, CPU fp32).
# Regenerate with: [row["loss"] for row in metrics.jsonl if "loss" in row].
STORED_LOSSES = [3.286277, 3.25051, 3.24334, 3.136332, 3.086688, 3.039225,
                 2.970532, 2.895169, 2.888517, 2.842124, 2.873963, 2.761208]
RECORD_KEYS = {"status", "params", "tokens", "unique_tokens", "epochs", "flops", "flops_with_attention",
               "test_loss", "test_bits_per_second", "wall_seconds", "git_revision", "versions", "config"}


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    return make_units_dir(tmp_path_factory.mktemp("units"))


@pytest.fixture(scope="module")
def finished(units, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "fast"
    return run_dir, train(units, run_dir, FAST)


def test_run_record_is_complete_and_the_budget_exact(finished, units):
    run_dir, record = finished
    assert RECORD_KEYS <= set(record) and record["status"] == "completed"
    meta = json.loads((units / "meta.json").read_text())
    params = record["params"]
    assert params["total"] == params["embedding"] + params["non_embedding"] == 26 * 32 + 13_408
    assert record["tokens"] == 3000 and record["unique_tokens"] == meta["splits"]["train"]["tokens"]
    assert record["epochs"] == pytest.approx(3000 / record["unique_tokens"], rel=1e-5)
    assert record["flops"] == 6 * params["total"] * 3000
    assert record["flops_with_attention"] == record["flops"] + 12 * 1 * 32 * 32 * 3000
    test = meta["splits"]["test"]
    assert record["test_bits_per_second"] == pytest.approx(
        record["test_loss"] / math.log(2) * test["tokens"] / test["audio_seconds"])
    assert record["config"]["tokens"] == 3000 and "torch" in record["versions"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    assert [r["update"] for r in train_rows] == list(range(1, 13))
    assert train_rows[-1]["tokens"] == 3000 and train_rows[-2]["tokens"] == 11 * 256
    assert [r["update"] for r in rows if "valid_loss" in r] == [4, 8, 12]
    for name in ("config.json", "model.safetensors", "train.yaml", "checkpoint/trainer.pt", ".completed"):
        assert (run_dir / name).is_file(), name


def test_losses_match_stored_values(finished):
    assert _losses(finished[0]) == pytest.approx(STORED_LOSSES, abs=1e-4)


def test_rerun_skips_and_another_config_is_refused(finished, units):
    run_dir, record = finished
    stamp = (run_dir / "run.json").stat().st_mtime_ns
    assert train(units, run_dir, FAST)["test_loss"] == record["test_loss"]
    assert (run_dir / "run.json").stat().st_mtime_ns == stamp
    with pytest.raises(StageError, match="different config"):
        train(units, run_dir, TrainConfig(**{**FAST.__dict__, "lr": 2e-2}))


def test_a_run_trained_under_auto_is_the_same_run_with_its_precision_explicit(finished, units):
    """A sweep now passes its one precision explicitly: a run it trained under `auto` in that same
    precision is kept (skipped, not refused), one in the other precision is still refused."""
    run_dir, record = finished
    stamp = (run_dir / "run.json").stat().st_mtime_ns
    same = dataclasses.replace(FAST, precision=record["precision"])
    assert train(units, run_dir, same)["test_loss"] == record["test_loss"]
    assert (run_dir / "run.json").stat().st_mtime_ns == stamp
    other = {"fp32": "bf16", "bf16": "fp32"}[record["precision"]]
    with pytest.raises(StageError, match="different config"):
        train(units, run_dir, dataclasses.replace(FAST, precision=other))


def test_a_run_named_under_the_old_rule_with_its_thread_count_is_the_same_run(finished, units, tmp_path):
    """Fingerprints once covered `threads`: such a completed run is skipped under any thread count
    (not refused as a different config), and another lr is still refused."""
    import shutil

    from slmscale.config import fingerprint, to_dict
    run_dir = tmp_path / "old"
    shutil.copytree(finished[0], run_dir)
    identity = {k: v for k, v in train_data.units_identity(units, read_meta(units)).items() if k != "path"}
    legacy = fingerprint({"config": to_dict(FAST), "units": identity})
    assert legacy != trainer.run_fingerprint(FAST, train_data.units_identity(units, read_meta(units)))
    for name in ("run.json", ".completed"):
        path = run_dir / name
        path.write_text(json.dumps({**json.loads(path.read_text()), "fingerprint": legacy}))
    stamp = (run_dir / "run.json").stat().st_mtime_ns
    assert train(units, run_dir, dataclasses.replace(FAST, threads=2))["test_loss"] == finished[1]["test_loss"]
    assert (run_dir / "run.json").stat().st_mtime_ns == stamp
    with pytest.raises(StageError, match="different config"):
        train(units, run_dir, dataclasses.replace(FAST, lr=2e-2, threads=2))


def test_an_interrupted_run_resumes_onto_the_uninterrupted_curve(finished, units, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real_save = trainer.save_checkpoint

    def save_then_die(directory, model, optimizer, state):
        real_save(directory, model, optimizer, state)
        if state.update == 8:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(units, run_dir, dataclasses.replace(FAST, threads=2))
    stopped = json.loads((run_dir / "run.json").read_text())
    assert stopped["status"] == "interrupted" and "resume" in stopped["error"]  # was left "running"
    assert len(_losses(run_dir)) == 8
    monkeypatch.undo()
    # Resumed under another thread count (a sweep rerun with another worker count): the same run.
    record = train(units, run_dir, dataclasses.replace(FAST, threads=1))
    expected = finished[1]
    assert _losses(run_dir) == pytest.approx(_losses(finished[0]), abs=1e-5, rel=0)
    assert record["test_loss"] == pytest.approx(expected["test_loss"], abs=1e-5)


def test_a_nan_loss_fails_the_run_and_keeps_the_last_good_checkpoint(units, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    real_loss, calls = trainer.next_token_loss, []

    def loss_turning_nan(logits, targets):
        calls.append(1)
        loss = real_loss(logits, targets)
        return loss * float("nan") if len(calls) >= 6 else loss  # update 6 (one micro-batch each)

    monkeypatch.setattr(trainer, "next_token_loss", loss_turning_nan)
    with pytest.raises(TrainingDiverged, match="non-finite loss.*update 6"):
        train(units, run_dir, FAST)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and "non-finite" in record["error"]
    saved = torch.load(run_dir / "checkpoint" / "trainer.pt", weights_only=True)
    assert saved["update"] == 4
    assert not (run_dir / "model.safetensors").exists() and not (run_dir / ".completed").exists()


def test_an_error_inside_training_is_recorded_as_failed(units, tmp_path, monkeypatch):
    def broken_update(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(trainer, "_update", broken_update)
    with pytest.raises(RuntimeError, match="out of memory"):
        train(units, tmp_path / "run", FAST)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "RuntimeError: CUDA out of memory (simulated)"


def test_unique_tokens_set_the_epochs(units, tmp_path):
    cfg = TrainConfig(**{**FAST.__dict__, "unique_tokens": 1000, "sampling": "epochs"})
    record = train(units, tmp_path / "run", cfg)
    assert (record["unique_tokens"], record["epochs"]) == (1000, 3.0)


def test_a_tiny_lm_goes_well_below_the_unigram_entropy(units, tmp_path):
    cfg = TrainConfig(size="tiny-L2", tokens=30_000, context=64, tokens_per_update=1024, lr=1e-2,
                      eval_every=10**6)
    record = train(units, tmp_path / "run", cfg)
    unigram_nats = json.loads((units / "meta.json").read_text())["diagnostics"]["entropy_bits"] * math.log(2)
    assert record["test_loss"] < 0.7 * unigram_nats


def test_missing_split_is_named(units, tmp_path):
    with pytest.raises(StageError, match="no split 'dev'"):
        train(units, tmp_path / "run", TrainConfig(**{**FAST.__dict__, "test_split": "dev"}))


def test_cli_train_then_export_loads_in_transformers(units, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    run_dir, exported = tmp_path / "run", tmp_path / "hf"
    assert main(["train", "--units", str(units), "--size", "tiny-L1", "--tokens", "1024", "--out", str(run_dir),
                 "context=32", "tokens_per_update=256", "log_every=1"]) == 0
    assert "test loss" in capsys.readouterr().out
    assert main(["export", str(run_dir), "--out", str(exported)]) == 0
    ours = load_pretrained(run_dir).eval()
    tokens = torch.randint(0, 26, (2, 32), generator=torch.Generator().manual_seed(0))
    for directory in (run_dir, exported):
        hf = transformers.LlamaForCausalLM.from_pretrained(directory, torch_dtype=torch.float32).eval()
        with torch.no_grad():
            assert (hf(tokens).logits - ours(tokens)).abs().max().item() <= 1e-4
    assert main(["train", "--units", str(units), "--tokens", "-5", "--out", str(tmp_path / "bad")]) == 2
    assert "tokens" in capsys.readouterr().err


def test_ddp_is_wrapped_before_compile_with_gradients_as_bucket_views(monkeypatch):
    import socket

    import torch.distributed as dist
    with socket.socket() as probe:  # a free port: other tests may run a process group beside this one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        procs = trainer.distributed.Processes(rank=0, world_size=2, device=torch.device("cpu"))  # the DDP branch
        model = trainer.Llama(trainer.plan_run(FAST, 30, 10**5).shape)
        wrapped = trainer._wrap(model, dataclasses.replace(FAST, compile=True), procs)
        # Compiling the DDP module lets the gradient all-reduce overlap the backward.
        from torch.nn.parallel import DistributedDataParallel
        assert isinstance(wrapped._orig_mod, DistributedDataParallel)
        assert wrapped._orig_mod.gradient_as_bucket_view
        assert callable(wrapped.no_sync)  # what gradient accumulation calls on the wrapper
    finally:
        dist.destroy_process_group()


def test_a_termination_signal_checkpoints_at_once_and_the_run_resumes(finished, units, tmp_path, monkeypatch):
    # Slurm's time limit or a preemption sends SIGTERM: the update in progress finishes, a checkpoint
    # is saved there (not at the last periodic one, update 4 here), and the run is `interrupted`.
    import os
    import signal

    from slmscale.lm.stop_signals import TrainingStopped
    real_update, calls = trainer._update, []

    def update_then_signal(*args, **kwargs):
        calls.append(1)
        out = real_update(*args, **kwargs)
        if len(calls) == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(trainer, "_update", update_then_signal)
    run_dir = tmp_path / "run"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped, match="stopped by SIGTERM after update 6 of 12"):
        train(units, run_dir, FAST)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and "rerun" in record["error"]
    assert torch.load(run_dir / "checkpoint" / "trainer.pt", weights_only=True)["update"] == 6
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is gone after training
    monkeypatch.undo()
    record = train(units, run_dir, FAST)
    assert _losses(run_dir) == pytest.approx(_losses(finished[0]), abs=1e-5, rel=0)
    assert record["status"] == "completed"


def test_an_error_in_setup_or_in_the_final_test_loss_is_recorded_as_failed(units, tmp_path, monkeypatch):
    # Both once fell outside the recorded region: run.json kept saying `running`.
    import shutil
    truncated = tmp_path / "units"
    shutil.copytree(units, truncated)
    with open(truncated / "train.bin", "r+b") as handle:  # an odd byte count: half a uint16 token
        handle.truncate((truncated / "train.bin").stat().st_size - 1)
    with pytest.raises(StageError, match="not a whole number"):
        train(truncated, tmp_path / "setup", FAST)
    record = json.loads((tmp_path / "setup" / "run.json").read_text())
    assert record["status"] == "failed" and "train.bin" in record["error"]

    def broken_save(*args, **kwargs):
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(trainer, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="No space"):
        train(units, tmp_path / "final", FAST)
    record = json.loads((tmp_path / "final" / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "OSError: No space left on device (simulated)"
    assert not (tmp_path / "final" / ".completed").exists()
    monkeypatch.undo()
    assert train(units, tmp_path / "final", FAST)["status"] == "completed"  # the rerun resumes and finishes


def test_cli_integer_options_follow_the_config_rule(units, tmp_path, capsys):
    # `--tokens 2e4` was refused by argparse while `tokens=2e4` was accepted.
    common = ["train", "--units", str(units), "--size", "tiny-L1", "context=32", "tokens_per_update=256"]
    assert main([*common, "--tokens", "1e3", "--out", str(tmp_path / "flag")]) == 0
    assert main([*common, "tokens=1_000", "--out", str(tmp_path / "key")]) == 0
    capsys.readouterr()
    for given in (["--tokens", "2.5"], ["tokens=2.5"], ["--tokens", "1000", "--unique-tokens", "2.5"]):
        assert main([*common, *given, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert "value '2.5' is not an integer" in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad" / "run.json").exists()
    assert main([*common, "--tokens", "1000", "threads=-1", "--out", str(tmp_path / "bad")]) == 2
    assert "threads: must be at least 1" in capsys.readouterr().err


def test_a_budget_beyond_reason_is_refused_unless_the_limit_is_raised(units, tmp_path, capsys):
    args = ["train", "--units", str(units), "--size", "tiny-L1", "--tokens", "1e15", "--out", str(tmp_path / "huge")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "more than --max-epochs 1000" in err and "updates" in err and "FLOPs" in err and err.count("\n") == 1
    assert not (tmp_path / "huge").exists()  # refused before anything is written
    repeated = dataclasses.replace(FAST, unique_tokens=1000)  # 3 epochs
    with pytest.raises(ConfigError, match="repeats the 1,000 unique tokens of split 'train' 3 times"):
        train(units, tmp_path / "run", repeated, max_epochs=2)
    assert train(units, tmp_path / "run", repeated, max_epochs=3)["epochs"] == 3.0
