"""Sampling a mixture of units dirs (issue 19; the paper's seven corpora, docs/PAPER.md §3): each
corpus's pool and share of the windows, and the windows of every update.

Pools: a run on U unique tokens (its unique_tokens, else every train token of the mixture) takes the
first U·T_i/T tokens of each corpus's train split (largest remainders, so the pools sum to U): a
data-constrained run cuts every corpus alike. Shares: the weights normalised, else each pool's share
of U, which is each corpus's share of the train tokens (the paper's one concatenated corpus).

Windows, like TrainWindows', are a pure function of (seed, update), so a resumed run and a run split
over processes draw the same ones as one uninterrupted process. `random` draws each window's corpus
by its share, then its offset uniformly in that corpus's pool. `epochs` permutes the union of every
corpus's non-overlapping windows once per epoch, so each is seen once per epoch; its shares are the
pools' windows, so it takes no weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from slmscale.config import ConfigError


@dataclass(frozen=True)
class Share:
    """What one corpus of a mixture contributes to a run."""
    unique_tokens: int
    """Its pool: the first this many tokens of its train split."""
    probability: float
    """The share of the run's windows drawn from it."""


def mixture_shares(labels: Sequence[str], train_tokens: Sequence[int], weights: Sequence[float] | None,
                   unique_tokens: int, context: int, sampling: str) -> list[Share]:
    """Each corpus's pool and share (see the module doc); a ConfigError names a corpus whose pool holds
    no window, and refuses weights under `epochs` sampling."""
    total = sum(train_tokens)
    exact = [unique_tokens * t / total for t in train_tokens]
    pools = [int(x) for x in exact]
    by_remainder = sorted(range(len(pools)), key=lambda i: (pools[i] - exact[i], i))
    for i in by_remainder[:unique_tokens - sum(pools)]:
        pools[i] += 1
    for label, pool in zip(labels, pools):
        if pool < context + 1:
            raise ConfigError(f"unique_tokens: corpus {label!r} of the mixture gets {pool} of the {unique_tokens} "
                              f"unique tokens, fewer than one window of context {context} + 1 (raise unique_tokens "
                              "or leave the corpus out)")
    if sampling == "epochs":
        if weights is not None:
            raise ConfigError("sampling: `epochs` sees every window of the mixture once per epoch, so its corpora "
                              "take no weights; use sampling=random, or drop the weights")
        windows = [(pool - 1) // context for pool in pools]
        return [Share(pool, w / sum(windows)) for pool, w in zip(pools, windows)]
    parts = list(weights) if weights is not None else pools
    return [Share(pool, part / sum(parts)) for pool, part in zip(pools, parts)]


class MixtureWindows:
    """Windows of context + 1 tokens from several streams (`TrainWindows`' interface)."""

    def __init__(self, streams: Sequence[np.ndarray], shares: Sequence[Share], context: int, sampling: str,
                 seed: int):
        self.streams, self.context, self.sampling, self.seed = list(streams), context, sampling, seed
        self.pools = np.array([s.unique_tokens for s in shares], dtype=np.int64)
        self.probabilities = np.array([s.probability for s in shares])
        self.probabilities /= self.probabilities.sum()
        windows = (self.pools - 1) // context
        self._first_window = np.concatenate([[0], np.cumsum(windows)])  # `epochs`: corpus i owns a range
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def draw(self, update: int, sequences: int) -> tuple[np.ndarray, np.ndarray]:
        """The corpus and the start offset in it of each window of one update."""
        if self.sampling == "random":
            rng = np.random.default_rng([self.seed, update])
            corpus = rng.choice(len(self.streams), size=sequences, p=self.probabilities)
            return corpus, rng.integers(0, self.pools[corpus] - self.context)
        windows = np.array([self._epoch_window(update * sequences + j) for j in range(sequences)], dtype=np.int64)
        corpus = np.searchsorted(self._first_window, windows, side="right") - 1
        return corpus, (windows - self._first_window[corpus]) * self.context

    def _epoch_window(self, index: int) -> int:
        epoch, position = divmod(index, int(self._first_window[-1]))
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            order = np.random.default_rng([self.seed, 1_000_003, epoch]).permutation(int(self._first_window[-1]))
            self._epoch_order = (epoch, order)
        return int(self._epoch_order[1][position])

    def batch(self, update: int, sequences: int, rows: slice = slice(None)) -> torch.Tensor:
        """(sequences, context + 1) int64 windows of one update, or only `rows` of them."""
        corpus, starts = (part[rows] for part in self.draw(update, sequences))
        out = np.empty((len(corpus), self.context + 1), dtype=np.int64)
        for index in np.unique(corpus):
            chosen = corpus == index
            out[chosen] = self.streams[index][starts[chosen][:, None] + np.arange(self.context + 1)]
        return torch.from_numpy(out)
