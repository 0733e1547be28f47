"""Per-token log-likelihoods of whole utterances under a unit LM, batched.

Each utterance is scored as the paper's released evaluation does (docs/PAPER.md §5.1): EOS is
prepended as BOS, every unit is scored, and no terminal EOS is scored, so the score
depends on the utterance alone, not on where it would end.

An utterance longer than the model's context is scored in overlapping windows: each
window re-reads the last half context of the previous one and scores only the tokens it
adds, so every token after the first window sees at least half a context of history.

Windows are sorted by length and packed into batches of about `tokens_per_batch` padded
tokens. Padding is on the right and attention is causal, so a padded position never
reaches a scored one: a score does not depend on which other windows share its batch
(tested against one window per batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from slmscale.lm.model import Llama


@dataclass(frozen=True)
class Window:
    sequence: int
    """Index of the utterance."""
    start: int
    """First token of the window in [BOS, units...]."""
    end: int
    first_target: int
    """First position scored in this window (predicting token `first_target` from the ones before)."""


def windows(length: int, context: int, sequence: int = 0) -> list[Window]:
    """Windows over a sequence of `length` tokens (BOS included) that score tokens 1..length-1 once."""
    if context < 2:
        raise ValueError(f"context {context} is too short to score anything")
    if length < 2:
        return []
    out = [Window(sequence, 0, min(length, context), 1)]
    overlap = context // 2
    while out[-1].end < length:
        start = out[-1].end - overlap
        out.append(Window(sequence, start, min(length, start + context), out[-1].end))
    return out


def _batches(all_windows: list[Window], tokens_per_batch: int) -> Iterator[list[Window]]:
    ordered = sorted(all_windows, key=lambda w: w.end - w.start, reverse=True)
    batch: list[Window] = []
    for window in ordered:
        width = batch[0].end - batch[0].start if batch else window.end - window.start
        if batch and (len(batch) + 1) * width > tokens_per_batch:
            yield batch
            batch = []
        batch.append(window)
    if batch:
        yield batch


@torch.no_grad()
def token_log_probs(model: Llama, sequences: list[np.ndarray], eos_id: int, tokens_per_batch: int = 16384,
                    autocast_dtype: torch.dtype | None = None) -> list[np.ndarray]:
    """Natural-log probability of every unit of each sequence (units only, no EOS), given EOS
    as BOS and the units before it; float64 arrays of the sequences' lengths."""
    model.eval()
    device = model.embed_tokens.weight.device
    context = model.shape.context
    padded = [np.concatenate([[eos_id], np.asarray(s, dtype=np.int64)]) for s in sequences]
    out = [np.zeros(len(s), dtype=np.float64) for s in sequences]
    all_windows = [w for i, s in enumerate(padded) for w in windows(len(s), context, i)]
    for batch in _batches(all_windows, max(tokens_per_batch, context)):
        width = batch[0].end - batch[0].start
        tokens = torch.full((len(batch), width), eos_id, dtype=torch.long)
        for row, w in enumerate(batch):
            tokens[row, :w.end - w.start] = torch.from_numpy(padded[w.sequence][w.start:w.end])
        tokens = tokens.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(tokens)
        log_probs = F.log_softmax(logits.float(), dim=-1)
        # Position p predicts token p+1 of the window.
        picked = log_probs[:, :-1].gather(-1, tokens[:, 1:, None]).squeeze(-1).double().cpu().numpy()
        for row, w in enumerate(batch):
            first = w.first_target - w.start - 1  # logit index predicting `first_target`
            count = w.end - w.first_target
            # Units are positions 1.. of [BOS, units]; unit j sits at out index j - 1.
            out[w.sequence][w.first_target - 1:w.end - 1] = picked[row, first:first + count]
    return out
