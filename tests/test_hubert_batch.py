"""Batched HuBERT frames (units/hubert_batch.py) equal one pass per chunk, whatever the padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slmscale.units.features import FeatureSpec
from slmscale.units.hubert import HubertFrames
from slmscale.units.hubert_batch import batched_utterance_frames, batches_by_length


def _tiny_hubert(directory, stable: bool, norm: str):
    from transformers import HubertConfig, HubertModel
    torch.manual_seed(1)
    config = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                          do_stable_layer_norm=stable, feat_extract_norm=norm)
    model = HubertModel(config).eval()
    with torch.no_grad():  # random GroupNorm gains and biases, so that a wrong statistic shows
        for module in model.modules():
            if isinstance(module, torch.nn.GroupNorm):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-1.0, 1.0)
    model.save_pretrained(directory, safe_serialization=True)


@pytest.mark.parametrize("stable, norm", [(False, "group"), (False, "layer"), (True, "layer")])
@pytest.mark.parametrize("layer", [1, 2])
def test_padded_batches_give_each_utterance_its_own_frames(tmp_path, stable, norm, layer):
    _tiny_hubert(tmp_path, stable, norm)
    spec = FeatureSpec(kind="hubert", hubert_path=str(tmp_path), layer=layer, frame_rate=50, cmvn=False,
                       chunk_seconds=1.0)
    frames = HubertFrames(spec)
    rng = np.random.default_rng(0)
    # Lengths from one frame's receptive field to 2.3 chunks, with an offset DC level each.
    waves = [(rng.standard_normal(n) * 0.3 + rng.uniform(-0.2, 0.2)).astype(np.float32)
             for n in (400, 4_801, 11_357, 16_000, 37_011, 9_999)]
    with torch.inference_mode():
        alone = [frames(w) for w in waves]
    for max_samples in (1, 40_000, 10**7):  # one chunk per batch, some, all of them in one
        together = batched_utterance_frames(frames, waves, max_samples)
        for wave, want, got in zip(waves, alone, together):
            assert got.shape == want.shape == (1 + (len(wave) - 400) // 320, 32)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_padding_is_not_ignored_without_the_masked_group_norm(tmp_path):
    """The test above can fail: HF's own padded forward (no mask for a GroupNorm model) differs."""
    _tiny_hubert(tmp_path, False, "group")
    frames = HubertFrames(FeatureSpec(kind="hubert", hubert_path=str(tmp_path), layer=2, frame_rate=50, cmvn=False))
    short, long = (np.random.default_rng(s).standard_normal(n).astype(np.float32) for s, n in ((1, 4_000), (2, 16_000)))
    padded = torch.zeros(2, 16_000)
    padded[0, :4_000], padded[1] = frames.chunks(short)[0], frames.chunks(long)[0]
    with torch.inference_mode():
        naive = frames.model(padded, output_hidden_states=True).hidden_states[2][0, :len(frames(short))]
        assert not np.allclose(naive.numpy(), frames(short).numpy(), atol=1e-3)


def test_batches_group_by_length_within_the_budget():
    assert batches_by_length([5, 1, 3, 3, 9], 9) == [[1, 2, 3], [0], [4]]
    assert batches_by_length([5, 1, 3, 3, 9], 1) == [[1], [2], [3], [0], [4]]
    assert batches_by_length([], 10) == []
