"""The likelihood core: BOS/EOS handling, windows past the context, batch independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slmscale.evaluate.evaluate import file_scores
from slmscale.evaluate.scoring import token_log_probs, windows
from slmscale.files import StageError
from slmscale.lm.model import Llama, ModelShape

EOS = 20


@pytest.fixture(scope="module")
def model() -> Llama:
    torch.manual_seed(0)
    shape = ModelShape(vocab_size=22, layers=2, width=32, heads=2, ffn_hidden=64, context=16)
    return Llama(shape).eval()


def _sequences(count: int, seed: int = 0, longest: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, EOS, size=int(rng.integers(1, longest))) for _ in range(count)]


def test_short_sequences_score_every_unit_after_bos_and_no_terminal_eos(model):
    units = np.array([3, 7, 7, 1, 19])
    got = token_log_probs(model, [units], EOS)[0]
    tokens = torch.tensor([[EOS, *units.tolist()]])
    with torch.no_grad():
        log_probs = F.log_softmax(model(tokens).float(), dim=-1)[0]
    expected = [log_probs[i, units[i]].item() for i in range(len(units))]
    assert got.shape == (5,) and np.allclose(got, expected, atol=1e-6)


def test_windows_score_each_position_once_with_half_a_context_of_history():
    for length in (1, 2, 15, 16, 17, 40, 101):
        spans = windows(length, 16)
        scored = [p for w in spans for p in range(w.first_target, w.end)]
        assert scored == list(range(1, length))
        for w in spans:
            assert w.end - w.start <= 16 and (w.start == 0 or w.first_target - w.start >= 8)


def test_long_sequences_match_full_context_scoring_in_the_first_window(model):
    units = np.random.default_rng(1).integers(0, EOS, size=50)
    got = token_log_probs(model, [units], EOS)[0]
    assert got.shape == (50,) and np.isfinite(got).all()
    assert np.allclose(got[:15], token_log_probs(model, [units[:15]], EOS)[0], atol=1e-6)


def test_batch_composition_never_changes_a_score(model):
    sequences = _sequences(30)
    one_by_one = [token_log_probs(model, [s], EOS, tokens_per_batch=2)[0] for s in sequences]
    batched = token_log_probs(model, sequences, EOS, tokens_per_batch=4096)
    shuffled = token_log_probs(model, sequences[::-1], EOS, tokens_per_batch=64)[::-1]
    for single, big, other in zip(one_by_one, batched, shuffled):
        assert np.allclose(single, big, atol=1e-5, rtol=0) and np.allclose(single, other, atol=1e-5, rtol=0)


def test_file_scores_are_mean_and_sum_and_refuse_empty_inputs():
    scores = file_scores({"a": np.array([-1.0, -3.0]), "b": np.array([-2.0])}, "task")
    assert scores == {"mean": {"a": -2.0, "b": -2.0}, "sum": {"a": -4.0, "b": -2.0}}
    with pytest.raises(StageError, match="'c' has no tokens"):
        file_scores({"c": np.zeros(0)}, "task")
