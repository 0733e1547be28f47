"""Interpolated modified Kneser–Ney baseline (slmscale.evaluate.ngram)."""

from collections import Counter, defaultdict
from math import log

import numpy as np
import pytest

from slmscale.evaluate.ngram import FALLBACK_DISCOUNTS, KneserNey
from slmscale.files import StageError


def markov_stream(rng, vocab, length, memory=1, concentration=0.3, successors=None):
    """A stream from a random order-`memory` Markov chain (each context gets its own peaked
    next-token distribution, optionally restricted to `successors` random tokens)."""
    contexts = vocab**memory
    table = rng.dirichlet(np.full(vocab, concentration), size=contexts)
    if successors is not None:
        keep = np.argsort(rng.random((contexts, vocab)), axis=1) < successors
        table = np.where(keep, table + 1e-3, 0.0)
        table /= table.sum(axis=1, keepdims=True)
    cumulative = table.cumsum(axis=1)
    draws = rng.random(length)
    out, state = np.empty(length, np.int64), 0
    for t in range(length):
        token = min(int(np.searchsorted(cumulative[state], draws[t])), vocab - 1)
        out[t], state = token, (state * vocab + token) % contexts
    return out


# --- a deliberately slow, dictionary-based reference written straight from Chen & Goodman ----


def reference_discounts(counts):
    n = Counter(counts)
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    if 0 in (n1, n2, n3, n4):
        return list(FALLBACK_DISCOUNTS)
    y = n1 / (n1 + 2 * n2)
    d = [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3]
    if all(0 < d[j] < j + 1 for j in range(3)):
        return d
    return list(FALLBACK_DISCOUNTS)


class ReferenceKN:
    def __init__(self, stream, vocab, order):
        stream = [int(t) for t in stream]
        self.vocab, self.order = vocab, order
        grams = {k: Counter(tuple(stream[i : i + k]) for i in range(len(stream) - k + 1)) for k in range(1, order + 1)}
        self.counts = {order: dict(grams[order])}
        for k in range(1, order):
            left = defaultdict(set)  # N1+(. g): distinct tokens seen right before g
            for gram in grams[k + 1]:
                left[gram[1:]].add(gram[0])
            self.counts[k] = {gram: len(tokens) for gram, tokens in left.items()}
        self.discounts = {k: reference_discounts(list(self.counts[k].values())) for k in self.counts}
        self.history = {k: defaultdict(lambda: [0, 0, 0, 0]) for k in self.counts}  # total, N1, N2, N3+
        for k, counts in self.counts.items():
            for gram, c in counts.items():
                entry = self.history[k][gram[:-1]]
                entry[0] += c
                entry[min(c, 3)] += 1

    def prob(self, context, word):
        context = tuple(context)[max(0, len(context) - (self.order - 1)) :] if self.order > 1 else ()
        p = 1 / self.vocab
        for k in range(1, len(context) + 2):
            h = context[len(context) - (k - 1) :]
            if h not in self.history[k]:
                continue
            total, n1, n2, n3 = self.history[k][h]
            d1, d2, d3 = self.discounts[k]
            c = self.counts[k].get(h + (word,), 0)
            discounted = 0.0 if c == 0 else c - (d1, d2, d3)[min(c, 3) - 1]
            p = discounted / total + (d1 * n1 + d2 * n2 + d3 * n3) / total * p
        return p

    def token_log_probs(self, sequence):
        sequence = [int(t) for t in sequence]
        return [log(self.prob(sequence[:i], sequence[i])) for i in range(1, len(sequence))]


# --- hand-worked cases ------------------------------------------------------------------------


def test_order_one_by_hand():
    # Counts: token 0 x4, 1 x3, 2 x2, 3 x1, 4 never -> n1 = n2 = n3 = n4 = 1, so Y = 1/3,
    # D1 = 1 - 2/3 = 1/3, D2 = 2 - 3*(1/3) = 1, D3+ = 3 - 4*(1/3) = 5/3. Total 10;
    # gamma = (1/3 + 1 + 2*5/3) / 10 = 7/15, so each token also gets 7/15 * 1/5 = 14/150:
    # p(0) = (4 - 5/3)/10 + 14/150 = 49/150, p(1) = (3 - 5/3)/10 + 14/150 = 34/150,
    # p(2) = (2 - 1)/10 + 14/150 = 29/150, p(3) = (1 - 1/3)/10 + 14/150 = 24/150, p(4) = 14/150.
    model = KneserNey.fit(np.array([0, 1, 2, 0, 3, 0, 1, 2, 0, 1]), vocab_size=5, order=1)
    np.testing.assert_allclose(model.discounts, [[1 / 3, 1, 5 / 3]], rtol=0, atol=1e-15)
    expected = np.array([49, 34, 29, 24, 14]) / 150
    np.testing.assert_allclose(model.next_token_probs(np.array([], np.int64)), expected, rtol=0, atol=1e-15)
    (scored,) = model.token_log_probs([np.array([4, 0, 1, 2, 3, 4])])  # context is ignored at order 1
    np.testing.assert_allclose(scored, np.log(expected[[0, 1, 2, 3, 4]]), rtol=0, atol=1e-12)


def test_continuation_unigram_and_bigram_by_hand():
    # Stream 0 1 0 2 0 1, vocab 3, order 2. Bigram counts: (0,1)=2, (1,0)=1, (0,2)=1, (2,0)=1.
    # Continuation counts N1+(. w): 0 follows {1, 2} -> 2; 1 follows {0} -> 1; 2 follows {0} -> 1.
    # Both orders have n3 = 0, so both use the fallback D = (0.5, 1, 1.5).
    # Unigram: total 4, gamma = (1 + 0.5 + 0.5)/4 = 1/2 ->
    #   p(0) = (2-1)/4 + 1/6 = 5/12, p(1) = p(2) = (1-0.5)/4 + 1/6 = 7/24.
    # After 0: counts {1: 2, 2: 1}, total 3, gamma = (1 + 0.5)/3 = 1/2 ->
    #   p(0|0) = 5/24, p(1|0) = 1/3 + 7/48 = 23/48, p(2|0) = 1/6 + 7/48 = 15/48.
    # After 1 (and after 2): counts {0: 1}, total 1, gamma = 1/2 ->
    #   p(0|1) = 1/2 + 5/24 = 17/24, p(1|1) = p(2|1) = 7/48.
    model = KneserNey.fit(np.array([0, 1, 0, 2, 0, 1]), vocab_size=3, order=2)
    np.testing.assert_allclose(model.discounts, [FALLBACK_DISCOUNTS] * 2)
    none = np.array([], np.int64)
    np.testing.assert_allclose(model.next_token_probs(none), [5 / 12, 7 / 24, 7 / 24], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.next_token_probs(np.array([0])), [5 / 24, 23 / 48, 15 / 48], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.next_token_probs(np.array([2])), [17 / 24, 7 / 48, 7 / 48], rtol=0, atol=1e-15)
    first, second = model.token_log_probs([np.array([0, 1, 0, 2]), np.array([1, 1])])
    np.testing.assert_allclose(first, np.log([23 / 48, 17 / 24, 15 / 48]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(second, np.log([7 / 48]), rtol=0, atol=1e-12)


# --- properties -------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_distributions_sum_to_one_for_seen_and_unseen_histories(order):
    rng = np.random.default_rng(order)
    stream = markov_stream(rng, vocab=12, length=20_000, memory=2, successors=3)
    model = KneserNey.fit(stream, vocab_size=12, order=order)
    unseen = 0
    for length in range(order):
        windows = {tuple(stream[i : i + length]) for i in range(stream.size - length + 1)}
        starts = rng.integers(0, stream.size - length, size=20)
        histories = [stream[s : s + length] for s in starts] + [rng.integers(0, 12, size=length) for _ in range(20)]
        for history in histories:
            unseen += tuple(history) not in windows
            probs = model.next_token_probs(history)
            assert probs.dtype == np.float64 and np.all(probs > 0)
            assert abs(probs.sum() - 1) < 1e-9
    assert order < 3 or unseen > 0  # the random histories really include unseen ones


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_dictionary_reference(order):
    rng = np.random.default_rng(100 + order)
    formula_used = np.zeros(order, bool)
    for vocab, length in [(4, 40), (6, 400), (8, 3000), (30, 90), (20, 60), (40, 300)]:
        stream = markov_stream(rng, vocab, length, concentration=0.5)
        model = KneserNey.fit(stream, vocab_size=vocab, order=order)
        reference = ReferenceKN(stream, vocab, order)
        np.testing.assert_allclose(model.discounts, [reference.discounts[k] for k in range(1, order + 1)], rtol=0, atol=1e-12)
        formula_used |= ~np.isclose(model.discounts, FALLBACK_DISCOUNTS).all(axis=1)
        sequences = [rng.integers(0, vocab, size=rng.integers(1, 9)) for _ in range(40)]
        sequences += [stream[s : s + 7] for s in rng.integers(0, length - 7, size=40)]
        for sequence, scored in zip(sequences, model.token_log_probs(sequences)):
            np.testing.assert_allclose(scored, reference.token_log_probs(sequence), rtol=0, atol=1e-12)
    assert formula_used.all()  # at every order Chen & Goodman's discounts, not only the fallback, were compared


def test_higher_order_fits_a_third_order_source_better():
    rng = np.random.default_rng(7)
    stream = markov_stream(rng, vocab=6, length=80_000, memory=3, concentration=0.2)
    train, held_out = stream[:70_000], stream[70_000:]
    means = [KneserNey.fit(train, 6, order).token_log_probs([held_out])[0].mean() for order in (1, 2, 4)]
    assert means[0] + 0.05 < means[1] and means[1] + 0.05 < means[2], means


def test_batched_scoring_equals_one_at_a_time():
    rng = np.random.default_rng(3)
    model = KneserNey.fit(markov_stream(rng, 10, 5_000), 10, order=4)
    sequences = [rng.integers(0, 10, size=n) for n in (1, 2, 3, 5, 9, 30, 1, 4)]
    batched = model.token_log_probs(sequences)
    assert [s.size for s in batched] == [n - 1 for n in (1, 2, 3, 5, 9, 30, 1, 4)]
    for sequence, scored in zip(sequences, batched):
        np.testing.assert_array_equal(scored, model.token_log_probs([sequence])[0])
    assert model.token_log_probs([]) == []


def test_scoring_agrees_with_next_token_probs():
    rng = np.random.default_rng(4)
    model = KneserNey.fit(markov_stream(rng, 7, 3_000), 7, order=3)
    sequence = rng.integers(0, 7, size=12)
    scored = model.token_log_probs([sequence])[0]
    expected = [np.log(model.next_token_probs(sequence[max(0, i - 2) : i])[sequence[i]]) for i in range(1, 12)]
    np.testing.assert_allclose(scored, expected, rtol=0, atol=1e-13)


# --- files and errors -------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    model = KneserNey.fit(markov_stream(rng, 9, 4_000), 9, order=3)
    path = tmp_path / "kn.npz"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["kn.npz"]  # no temporary left behind
    loaded = KneserNey.load(path)
    assert (loaded.order, loaded.vocab_size) == (3, 9)
    sequences = [rng.integers(0, 9, size=n) for n in (2, 6, 15)]
    for a, b in zip(model.token_log_probs(sequences), loaded.token_log_probs(sequences)):
        np.testing.assert_array_equal(a, b)


def test_load_rejects_bad_files(tmp_path):
    model = KneserNey.fit(np.array([0, 1, 0, 2, 0, 1]), 3, order=2)
    good = tmp_path / "good.npz"
    model.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a model at all")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    lone = tmp_path / "lone.npy"
    np.save(lone, np.zeros(3))
    missing_level = tmp_path / "missing_level.npz"
    with np.load(good) as archive:
        np.savez(missing_level, **{k: archive[k] for k in archive.files if k != "ngram_alpha_2"})
    for path in (truncated, garbage, other, lone, missing_level, tmp_path / "absent.npz"):
        with pytest.raises(StageError, match=path.name):
            KneserNey.load(path)


def test_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match="-1"):
        KneserNey.fit(np.array([0, 1, -1, 2]), 3)
    with pytest.raises(ValueError, match="token id 3 "):
        KneserNey.fit(np.array([0, 1, 3, 2]), 3)
    model = KneserNey.fit(np.array([0, 1, 0, 2]), 3, order=2)
    with pytest.raises(ValueError, match="token id 17 "):
        model.token_log_probs([np.array([0, 1]), np.array([0, 17, 1])])
    with pytest.raises(ValueError, match="1-D integer"):
        KneserNey.fit(np.array([0.0, 1.0]), 3)


def test_rejects_keys_that_overflow_int64():
    with pytest.raises(ValueError, match=r"order-5 .* 10000 .*lower the order"):
        KneserNey.fit(np.array([0, 1, 2]), vocab_size=10_000, order=5)
    KneserNey.fit(np.array([0, 1, 2]), vocab_size=6_000, order=5)  # 6000**5 still fits
