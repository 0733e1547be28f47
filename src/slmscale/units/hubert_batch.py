"""HuBERT frames of many chunks in one padded forward pass, equal to one pass per chunk.

One chunk at a time keeps a GPU mostly idle (1,029 audio hours per GPU hour for HuBERT-base on an
H200, against 8,499 for batches of 16 equal-length chunks; docs/LOG.md 2026-12-04). Real corpora
rarely have equal lengths, so chunks are right-padded, and the padding is made invisible:

- the conv front end has no padding of its own, so a valid output frame sees valid samples only;
  except the first layer's GroupNorm (feat_extract_norm="group", HuBERT base and mHuBERT), whose
  per-channel statistics run over the whole time axis. Here they run over the valid frames alone;
- the encoder is given the frame mask: it zeroes the padded frames before the positional conv
  (which then sees the zeros an unpadded chunk's own conv padding gives) and masks padded keys.

So a chunk's frames match its unpadded pass up to float round-off (tests/test_hubert_batch.py).
Batching does not autocast: bf16 made the front end slower on the H200 (same LOG entry).
"""

from __future__ import annotations

import numpy as np
import torch


def frame_counts(model, lengths: torch.Tensor) -> list[torch.Tensor]:
    """The valid length after each conv layer, starting from `lengths` samples."""
    counts, current = [], lengths
    for kernel, stride in zip(model.config.conv_kernel, model.config.conv_stride):
        current = torch.div(current - kernel, stride, rounding_mode="floor") + 1
        counts.append(current)
    return counts


class _ValidFramesGroupNorm(torch.nn.Module):
    """The first conv layer's GroupNorm (one channel per group) over each row's valid frames only;
    x [batch, channels, time]. Swapped in for the duration of one padded pass."""

    def __init__(self, norm: torch.nn.GroupNorm, valid: torch.Tensor):
        super().__init__()
        self.norm, self.valid = norm, valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[-1], device=x.device)[None, :] < self.valid[:, None]).to(x.dtype)[:, None, :]
        n = mask.sum(-1, keepdim=True)
        mean = (x * mask).sum(-1, keepdim=True) / n
        var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / n
        return ((x - mean) / torch.sqrt(var + self.norm.eps) * self.norm.weight[None, :, None]
                + self.norm.bias[None, :, None])


@torch.inference_mode()
def padded_frames(model, layer: int, chunks: list[torch.Tensor]) -> list[torch.Tensor]:
    """hidden_states[layer] of each 1-D chunk (already on the model's device), its valid frames."""
    lengths = torch.tensor([len(c) for c in chunks], device=chunks[0].device)
    wav = torch.zeros(len(chunks), int(lengths.max()), dtype=chunks[0].dtype, device=chunks[0].device)
    for row, chunk in enumerate(chunks):
        wav[row, :len(chunk)] = chunk
    sample_mask = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
    counts = frame_counts(model, lengths)
    swapped = []
    for index, conv_layer in enumerate(model.feature_extractor.conv_layers):
        norm = getattr(conv_layer, "layer_norm", None)
        if isinstance(norm, torch.nn.GroupNorm):  # a LayerNorm per frame cannot see the padding
            if norm.num_groups != norm.num_channels:
                raise ValueError(f"GroupNorm with {norm.num_groups} groups of {norm.num_channels} channels "
                                 "is not one channel per group; batch_seconds=0 extracts one chunk at a time")
            conv_layer.layer_norm = _ValidFramesGroupNorm(norm, counts[index])
            swapped.append((conv_layer, norm))
    try:
        # With the mask, the encoder zeroes padded frames and masks padded keys (module docstring).
        out = model(wav, attention_mask=sample_mask.long(), output_hidden_states=True)
    finally:
        for conv_layer, norm in swapped:
            conv_layer.layer_norm = norm
    states, frames = out.hidden_states[layer], counts[-1]
    return [states[row, :int(frames[row])] for row in range(len(chunks))]


def batches_by_length(lengths: list[int], max_samples: int) -> list[list[int]]:
    """Indices grouped so that a group's padded size (count x longest) stays within `max_samples`
    (a single longer item stands alone): sorted by length, so little is padding. A function of the
    lengths alone, so the groups, and the output, do not depend on a worker count."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    groups: list[list[int]] = []
    for index in order:
        if groups and (len(groups[-1]) + 1) * lengths[index] <= max_samples:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def batched_utterance_frames(frames, waves: list[np.ndarray], max_samples: int) -> list[torch.Tensor]:
    """`frames(wave)` (a hubert.HubertFrames) for every wave, with the chunks of all of them padded
    into batches of at most `max_samples` samples."""
    pieces = [frames.chunks(wave) for wave in waves]
    flat = [(u, c) for u, chunks in enumerate(pieces) for c in range(len(chunks))]
    out: dict[tuple[int, int], torch.Tensor] = {}
    for group in batches_by_length([len(pieces[u][c]) for u, c in flat], max_samples):
        results = padded_frames(frames.model, frames.spec.layer, [pieces[flat[i][0]][flat[i][1]] for i in group])
        for i, result in zip(group, results):
            out[flat[i]] = result
    return [torch.cat([out[(u, c)] for c in range(len(chunks))]).float().cpu() for u, chunks in enumerate(pieces)]
