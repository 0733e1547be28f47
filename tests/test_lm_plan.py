"""Run plans (exact budgets, warmup, LR schedule) and training/evaluation windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import slmscale.lm.plan as plan_module
from slmscale.config import ConfigError
from slmscale.lm.config import TrainConfig
from slmscale.lm.data import TrainWindows, eval_windows
from slmscale.lm.plan import plan_run, resolve_precision


def test_the_budget_is_exact_and_the_last_update_partial():
    plan = plan_run(TrainConfig(size="tiny-L2", tokens=10_000), vocab_size=202, train_tokens=10**6)
    assert (plan.tokens_per_update, plan.updates) == (4096, 3)
    assert [plan.tokens_in_update(u) for u in range(3)] == [4096, 4096, 1808]
    assert sum(plan.tokens_in_update(u) for u in range(plan.updates)) == 10_000


def test_paper_preset_geometry_and_warmup_rule():
    plan = plan_run(TrainConfig(size="20m", tokens=131_200 * 20_000, micro_batch_size=8),
                    vocab_size=502, train_tokens=10**10)
    assert (plan.shape.context, plan.tokens_per_update, plan.micro_batches) == (2050, 131_200, 8)
    assert plan.warmup_updates == 200  # max(100, 1% of 20,000)
    assert plan.lr == 5e-4 and plan.final_lr == pytest.approx(5e-5)
    small = plan_run(TrainConfig(size="tiny-L1", tokens=4096 * 50), vocab_size=30, train_tokens=10**6)
    assert small.warmup_updates == 25  # 100 would be the whole run: capped at half of it


def test_lr_schedule_warms_up_then_decays_by_half_cosine():
    plan = plan_run(TrainConfig(size="tiny-L2", tokens=4096 * 1000, lr=1e-3), vocab_size=202,
                    train_tokens=10**7)
    lrs = [plan.lr_at(u) for u in range(plan.updates)]
    assert lrs[0] == pytest.approx(1e-5) and lrs[99] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[99:], lrs[100:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=1e-3)
    middle = 100 + (1000 - 100) // 2
    assert lrs[middle] == pytest.approx((1e-3 + 1e-4) / 2, rel=1e-2)


@pytest.mark.parametrize("overrides, needle", [
    ({"size": "huge"}, "size"), ({"tokens": 0}, "tokens"), ({"unique_tokens": 10**9}, "unique_tokens"),
    ({"unique_tokens": 100}, "unique_tokens"), ({"tokens_per_update": 1000}, "tokens_per_update"),
    ({"micro_batch_size": 5}, "micro_batch_size"), ({"context": -4}, "context"),
])
def test_impossible_plans_name_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle):  # TrainConfig itself refuses a negative context
        plan_run(TrainConfig(**{"size": "tiny-L2", "tokens": 10_000, **overrides}), vocab_size=202,
                 train_tokens=10**6)


def test_a_context_longer_than_the_split_names_the_context_and_the_split():
    # It once blamed `unique_tokens`, a key the user had not set.
    with pytest.raises(ConfigError, match=r"^context: a window of 100000 \+ 1 tokens does not fit the 17958 "
                                          r"tokens of split 'train' \(context <= 17957"):
        plan_run(TrainConfig(size="tiny-L1", tokens=10_000, context=100_000), vocab_size=30, train_tokens=17_958)
    with pytest.raises(ConfigError, match=r"^unique_tokens: 500 .* \(use unique_tokens >= 1025, or context <= 499"):
        plan_run(TrainConfig(size="tiny-L1", tokens=10_000, context=1024, unique_tokens=500), vocab_size=30,
                 train_tokens=17_958)


@pytest.mark.parametrize("key, value", [
    ("threads", -1), ("threads", 0), ("tokens", -5), ("unique_tokens", 0), ("context", 0), ("tokens_per_update", 0),
    ("micro_batch_size", 0), ("eval_every", -1), ("checkpoint_every", 0), ("log_every", 0), ("seed", -1),
    ("warmup_min_steps", -1), ("eval_tokens", 1), ("test_tokens", 0), ("final_lr_fraction", 1.5),
    ("warmup_fraction", -0.1), ("beta1", 1.0), ("beta2", -0.5), ("weight_decay", -0.1), ("grad_clip", -1.0),
    ("grad_clip", float("nan")), ("lr", 0.0), ("lr", float("inf")), ("memory_gb", 0.0), ("train_split", ""),
])
def test_train_config_refuses_values_the_run_cannot_use(key, value):
    # `threads=-1` was a traceback from torch.set_num_threads; `lr=0`, `threads=0` silently meant the
    # default; `log_every=0` divided by zero; a negative grad_clip silently disabled clipping.
    # (`eval_every=0` stays the default's other name: sweeps' train overrides pass it.)
    with pytest.raises(ConfigError, match=f"^{key}: .*must "):
        TrainConfig(**{key: value})


def test_a_plan_beyond_the_epoch_limit_is_refused_in_words():
    plan = plan_run(TrainConfig(size="tiny-L1", tokens=4096 * 30), vocab_size=30, train_tokens=4096)
    plan.check_epochs(30, "train")  # at the limit: allowed
    with pytest.raises(ConfigError, match=r"^tokens: D = 122,880 repeats the 4,096 unique tokens of split 'train' "
                                          r"30 times, more than --max-epochs 29 \(the plan: 30 updates of 4,096 "
                                          r"tokens, 30 epochs over 4,096 unique tokens, .* FLOPs\)"):
        plan.check_epochs(29, "train")


def test_processes_split_the_update_evenly_or_within_one_sequence():
    plan = plan_run(TrainConfig(size="tiny-L2", tokens=10_000, micro_batch_size=4), 202, 10**6, world_size=2)
    assert (plan.sequences_per_process, plan.micro_batches) == (8, 2)
    assert [plan.share(rank) for rank in (0, 1)] == [slice(0, 8), slice(8, 16)]
    odd = plan_run(TrainConfig(size="tiny-L2", tokens=10_000), 202, 10**6, world_size=3)  # 16 over 3
    assert [odd.share(rank) for rank in range(3)] == [slice(0, 6), slice(6, 11), slice(11, 16)]
    assert odd.sequences_per_process == 6 and 6 % odd.micro_batch_size == 0
    # 309m's 252 sequences over 8 GPUs: 4 x 32 and 4 x 31, every row once, in rank order
    paper = plan_run(TrainConfig(size="309m", tokens=10**9, precision="bf16"), 502, 10**10, world_size=8)
    shares = [paper.share(rank) for rank in range(8)]
    assert [s.stop - s.start for s in shares] == [32] * 4 + [31] * 4 and shares[-1].stop == 252
    assert all(a.stop == b.start for a, b in zip(shares, shares[1:])) and shares[0].start == 0
    with pytest.raises(ConfigError, match=r"^tokens_per_update: 2 sequences per update are fewer than the 3 "
                                          r"processes \(give each at least one: tokens_per_update >= 96\)$"):
        plan_run(TrainConfig(size="tiny-L2", tokens=10_000, context=32, tokens_per_update=64), 202, 10**6,
                 world_size=3)


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_on_cpu_uses_bf16_only_where_it_was_measured_faster(native, monkeypatch):
    monkeypatch.setattr(plan_module, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    narrow = plan_run(TrainConfig(size="tiny-L2", tokens=1), 202, 10**6).shape
    wide = plan_run(TrainConfig(size="tiny-L7", tokens=1), 202, 10**6).shape
    assert resolve_precision(TrainConfig(), narrow, cpu) == "fp32"
    assert resolve_precision(TrainConfig(), wide, cpu) == ("bf16" if native else "fp32")
    assert resolve_precision(TrainConfig(precision="fp32"), wide, cpu) == "fp32"


def test_random_windows_are_a_function_of_seed_and_update_within_the_unique_prefix():
    stream = np.arange(10_000, dtype=np.uint16)
    windows = TrainWindows(stream, context=16, unique_tokens=500, sampling="random", seed=3)
    first = windows.batch(7, 32)
    assert torch.equal(first, TrainWindows(stream, 16, 500, "random", 3).batch(7, 32))
    assert not torch.equal(first, windows.batch(8, 32))
    assert first.shape == (32, 17) and int(first.max()) < 500
    assert torch.all(first[:, 1:] - first[:, :-1] == 1)  # contiguous windows of the stream


def test_epoch_windows_see_every_unique_window_once_per_epoch():
    stream = np.arange(1_000, dtype=np.uint16)
    windows = TrainWindows(stream, context=10, unique_tokens=101, sampling="epochs", seed=0)
    assert windows.windows_per_epoch == 10
    starts = np.concatenate([windows.starts(u, 5) for u in range(4)])  # 2 epochs
    assert sorted(starts[:10]) == sorted(starts[10:]) == list(range(0, 100, 10))
    assert list(starts[:10]) != list(starts[10:])  # reshuffled


def test_eval_windows_predict_every_token_but_the_first_once():
    stream = np.arange(1, 1_001, dtype=np.int64)
    windows = eval_windows(stream, context=64)
    targets = np.concatenate([w[1:] for w in windows])
    assert np.array_equal(targets, stream[1:])
    assert sum(len(w) - 1 for w in eval_windows(stream, 64, max_tokens=300)) == 299


# Peak memory measured on an H200 (bf16 autocast, each block compiled, fused AdamW; the
# planner's micro-batch for 80 GB), benchmarks/RESULTS.md "GPU check", 2026-12-04:
# size -> (sequences per pass, GB).
MEASURED_PEAK_GB = {"20m": (64, 19.39), "85m": (64, 43.88), "309m": (36, 68.1), "823m": (24, 68.87)}


@pytest.mark.parametrize("size", sorted(MEASURED_PEAK_GB))
def test_memory_estimate_is_within_a_quarter_of_the_measured_peak(size):
    sequences, measured = MEASURED_PEAK_GB[size]
    shape = plan_run(TrainConfig(size=size, tokens=10**9), 502, 10**10).shape
    estimate = plan_module.memory_estimate(shape, sequences, "bf16") / 1e9
    assert abs(estimate - measured) / measured < 0.25


def test_the_micro_batch_fits_each_paper_size_into_80_gb_and_tiny_updates_stay_whole():
    # The per-GPU shares differ 7x (16..114 sequences on 4 GPUs): one sweep-wide micro-batch
    # cannot fit them all, the planner picks each size's largest divisor under the budget.
    chosen = {}
    for size, gpus in (("20m", 4), ("85m", 4), ("155m", 4), ("309m", 4), ("823m", 4), ("823m", 1)):
        plan = plan_run(TrainConfig(size=size, tokens=10**9, precision="bf16"), 502, 10**10, world_size=gpus)
        assert plan.sequences_per_process % plan.micro_batch_size == 0
        assert plan.memory_bytes <= 80e9, size
        chosen[size, gpus] = plan.micro_batch_size
    assert chosen["823m", 4] == 19 and chosen["823m", 1] == 24 and chosen["20m", 4] == 16
    whole = plan_run(TrainConfig(size="823m", tokens=10**9, memory_gb=1e4), 502, 10**10, world_size=4)
    assert whole.micro_batch_size == 114  # the whole share: what overflowed an 80 GB GPU before
    for depth in range(1, 8):  # every tiny run keeps its whole update in one pass
        plan = plan_run(TrainConfig(size=f"tiny-L{depth}", tokens=10**6), 202, 10**7)
        assert plan.micro_batches == 1
    assert plan_run(TrainConfig(size="823m", tokens=10**9, micro_batch_size=6), 502, 10**10).micro_batch_size == 6
    with pytest.raises(ConfigError, match="memory_gb"):
        TrainConfig(memory_gb=0)
