"""What the training loop asks of the host: one reduction per update, read one update late except
where a row is logged or a checkpoint saved; MFU in metrics.jsonl; sharded evaluation losses."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import slmscale.lm.trainer as trainer
from slmscale.lm.config import TrainConfig
from slmscale.lm.data import split_loss_sum
from slmscale.lm.device_peak import bf16_peak_tflops
from slmscale.lm.distributed import Processes
from slmscale.lm.model import Llama
from slmscale.lm.sizes import flops_per_token, get_preset
from slmscale.lm.trainer import train
from slmscale.units.fixtures import make_units_dir

# 12 updates; a log row every 5, validation every 6, checkpoints with validation.
SPARSE = TrainConfig(size="tiny-L1", tokens=3000, context=32, tokens_per_update=256, log_every=5,
                     eval_every=6, lr=1e-2)


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    return make_units_dir(tmp_path_factory.mktemp("units"))


def test_an_update_is_read_after_the_next_one_is_queued_unless_it_is_logged_or_saved(units, tmp_path, monkeypatch):
    events, real_update, real_read, real_sum = [], trainer._update, trainer._read_stats, Processes.sum

    def update(*args, **kwargs):
        events.append(("update", args[4]))
        return real_update(*args, **kwargs)

    def read(stats, update, *args):
        events.append(("read", update))
        return real_read(stats, update, *args)

    def summed(self, value):
        events.append(("sum", None))
        return real_sum(self, value)

    monkeypatch.setattr(trainer, "_update", update)
    monkeypatch.setattr(trainer, "_read_stats", read)
    monkeypatch.setattr(Processes, "sum", summed)
    train(units, tmp_path / "run", SPARSE)
    updates = [u for kind, u in events if kind == "update"]
    assert updates == list(range(12))
    training = events[:events.index(("read", 11)) + 1]
    assert sum(kind == "sum" for kind, _ in training) == 12  # one reduction per update, no more
    assert sorted(u for kind, u in training if kind == "read") == list(range(12))  # each read once
    read_at_once = {4, 5, 9, 11}  # updates 5 and 10 logged, 6 validated and saved, 12 the last
    for u in range(12):
        before = events[:events.index(("read", u))]
        queued = max(v for kind, v in before if kind == "update")
        # Read at once where logged or saved, else once update u + 1 is queued and reduced.
        assert queued == (u if u in read_at_once else u + 1), u
        assert before[-1] == ("sum", None) or before[-1][0] == "read"


def test_metrics_rows_carry_the_model_flops_rate_and_mfu_where_the_peak_is_known(units, tmp_path, monkeypatch):
    cpu = tmp_path / "cpu"
    train(units, cpu, SPARSE)
    rows = [json.loads(line) for line in (cpu / "metrics.jsonl").read_text().splitlines()]
    logged = [row for row in rows if "loss" in row]
    shape = get_preset("tiny-L1").shape(json.loads((units / "meta.json").read_text())["vocab_size"])
    shape = dataclasses.replace(shape, context=32)
    for row in logged:
        assert row["model_flops_per_second"] == pytest.approx(
            row["tokens_per_second"] * flops_per_token(shape, with_attention=True), rel=1e-3)
        assert "mfu" not in row  # a CPU has no datasheet peak
    monkeypatch.setattr(trainer, "device_peak_flops", lambda device: 1e9)
    known = tmp_path / "known"
    train(units, known, SPARSE)
    rows = [json.loads(line) for line in (known / "metrics.jsonl").read_text().splitlines()]
    for row in (row for row in rows if "loss" in row):
        assert row["mfu"] == pytest.approx(row["model_flops_per_second"] / 1e9, rel=1e-3)


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L40S", 362.0), ("NVIDIA L4", 121.0),
    ("NVIDIA GeForce GTX 1080", None)])
def test_the_bf16_peak_is_read_from_the_device_name(name, peak):
    assert bf16_peak_tflops(name) == peak


def test_shards_of_an_evaluation_sum_to_the_whole(units):
    shape = get_preset("tiny-L1").shape(64)
    model = Llama(dataclasses.replace(shape, context=16))
    stream = np.random.default_rng(0).integers(0, 64, 1000)
    whole = split_loss_sum(model, stream, 16, 4, torch.device("cpu"))
    parts = [split_loss_sum(model, stream, 16, 4, torch.device("cpu"), shard=(rank, 3)) for rank in range(3)]
    assert sum(p[1] for p in parts) == whole[1] == 999
    # fp32 sums of differently grouped batches: round-off only; one missing window would be 1.6%
    assert sum(p[0] for p in parts) == pytest.approx(whole[0], rel=1e-5)
    assert all(p[1] > 0 for p in parts)
