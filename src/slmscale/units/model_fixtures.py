"""Stand-ins for the third-party models the real-data path reads, in their real formats: a HuBERT
checkpoint in the Hugging Face layout (random weights, the real shape by default) and a k-means
quantizer pickled the way fairseq's and textlesslib's `km*.bin` files are (scikit-learn's
MiniBatchKMeans through joblib). Tests and the README's command lines run on them; nothing here
downloads anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HUBERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
               "intermediate_size": 3072}
"""The shape of hubert-base-ls960 and mHuBERT-147 (transformers' HubertConfig defaults)."""


def save_random_hubert(directory: str | Path, seed: int = 0, **shape: int) -> Path:
    """A randomly initialised HubertModel saved with `save_pretrained` (config.json and
    model.safetensors); `shape` overrides HUBERT_BASE (e.g. hidden_size=32 for fast unit tests)."""
    import torch
    from transformers import HubertConfig, HubertModel
    torch.manual_seed(seed)
    model = HubertModel(HubertConfig(**{**HUBERT_BASE, **shape})).eval()
    model.save_pretrained(directory, safe_serialization=True)
    return Path(directory)


def save_pickled_kmeans(path: str | Path, k: int, dim: int, seed: int = 0) -> np.ndarray:
    """A MiniBatchKMeans of `k` centroids in `dim` dimensions fitted on Gaussian points and dumped
    with joblib (a pickle: loading it needs --trust-pickle); returns its centroids."""
    import joblib
    from sklearn.cluster import MiniBatchKMeans
    points = np.random.default_rng(seed).standard_normal((max(2 * k, 64), dim)).astype(np.float32)
    model = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=seed, batch_size=1024).fit(points)
    joblib.dump(model, path)
    return model.cluster_centers_.astype(np.float32)
