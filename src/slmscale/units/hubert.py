"""HuBERT hidden-layer frames from a local model directory (never downloaded).

Chunking: long audio is cut into chunks of at most ``chunk_seconds`` whose
starts are multiples of the conv stride S (320 samples for base HuBERT), and
each chunk is extended by ``receptive_field - S`` samples (80 for base) into the
next one. The conv feature encoder then gives the frames of the whole
utterance: same count (``1 + (n - receptive_field) // S``) and same time grid;
with a LayerNorm conv stack (feat_extract_norm="layer") identical conv
features too. What differs is context: attention and the positional conv stop
at the chunk, and in models whose first conv layer uses GroupNorm
(feat_extract_norm="group", e.g. HuBERT base) that normalisation runs over the
chunk rather than the utterance. That is the cost of bounding memory; with the default 30 s
chunks most utterances are a single chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from slmscale.files import content_hash_stream


class HubertSpec(Protocol):
    """What HuBERT frames are computed from: the fields of a feature spec (features.FeatureSpec) this
    module reads. A protocol, so that features.py (which builds HuBERT extractors) depends on this
    module and not the other way round."""

    @property
    def hubert_path(self) -> str: ...
    @property
    def layer(self) -> int: ...
    @property
    def chunk_seconds(self) -> float: ...
    @property
    def normalize_waveform(self) -> bool: ...
    @property
    def sample_rate(self) -> int: ...


def conv_geometry(conv_kernel: tuple[int, ...], conv_stride: tuple[int, ...]) -> tuple[int, int]:
    """(receptive field in samples, total stride in samples) of an unpadded conv stack."""
    field, stride = 1, 1
    for kernel, step in zip(conv_kernel, conv_stride):
        field += (kernel - 1) * stride
        stride *= step
    return field, stride


def chunk_bounds(n_samples: int, chunk_samples: int, field: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) sample ranges whose conv frames, concatenated, equal those of the whole signal.

    ``chunk_samples`` must be a multiple of ``stride``; chunk i starts at i * chunk_samples
    and gives ``chunk_samples // stride`` frames (fewer for the last one).
    """
    if chunk_samples <= 0 or chunk_samples % stride:
        raise ValueError(f"chunk of {chunk_samples} samples is not a positive multiple of the stride {stride}")
    bounds = []
    start = 0
    while start + field <= n_samples:
        bounds.append((start, min(n_samples, start + chunk_samples + field - stride)))
        start += chunk_samples
    return bounds


def model_dir(path: str | Path) -> Path:
    """``path`` checked to be a local model directory with a config.json (save_pretrained layout)."""
    directory = Path(path) if str(path) else None
    if directory is None:
        raise ValueError("feature kind hubert needs hubert_path: a local directory with config.json and weights")
    if not directory.is_dir():
        raise FileNotFoundError(f"HuBERT model directory {directory} does not exist (if the model moved, "
                                "`tokenize --hubert-path DIR` names its new place)")
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"HuBERT model directory {directory} has no config.json "
                                "(expected the save_pretrained layout)")
    return directory


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json")
"""The files of a save_pretrained directory that decide its features: config, weights, shard index."""


def _weight_blocks(directory: Path) -> Iterator[bytes | str]:
    """Each weight file's name (and a newline), then its bytes in blocks of 1 MiB, in name order."""
    for file in sorted(f for f in directory.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES):
        yield f"{file.name}\n"
        with open(file, "rb") as handle:
            yield from iter(lambda: handle.read(1 << 20), b"")


def weights_hash(path: str | Path) -> str:
    """A content hash of the model under `path` (config.json, weights and index files), so that a
    tokenizer names the weights it was trained on, not where they lay (a moved or copied model
    directory is the same model; other weights at the same path are not)."""
    return content_hash_stream(_weight_blocks(model_dir(path)))


def load_hubert(path: str | Path, device: str = "cpu"):
    """The HubertModel saved under ``path`` (config.json + weights), in eval mode, fp32."""
    directory = model_dir(path)
    from transformers import HubertModel
    try:
        model = HubertModel.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32)
    except OSError as error:
        raise FileNotFoundError(f"cannot load HuBERT weights from {directory}: {error}") from error
    return model.to(device).eval()


def native_rate(conv_stride: tuple[int, ...], sample_rate: int) -> int:
    """Frames per second of a conv feature encoder with these strides (sample rate must be a multiple)."""
    stride = math.prod(conv_stride)
    if sample_rate % stride:
        raise ValueError(f"sample rate {sample_rate} is not a multiple of the HuBERT stride {stride}")
    return sample_rate // stride


def hubert_native_rate(path: str | Path, sample_rate: int) -> int:
    """The native frame rate of the model under ``path``, from its config.json alone (no weights loaded)."""
    directory = model_dir(path)
    from transformers import HubertConfig
    try:
        config = HubertConfig.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(f"cannot read the HuBERT config in {directory}: {error}") from error
    return native_rate(tuple(config.conv_stride), sample_rate)


class HubertFrames:
    """samples → hidden_states[layer] frames [T, hidden] at the model's native rate."""

    def __init__(self, spec: HubertSpec, device: str = "cpu"):
        if not spec.chunk_seconds > 0:
            raise ValueError(f"chunk_seconds must be positive, got {spec.chunk_seconds}")
        model = load_hubert(spec.hubert_path, device)
        config = model.config
        n_layers = config.num_hidden_layers
        if not 0 <= spec.layer <= n_layers:
            raise ValueError(f"HuBERT layer {spec.layer} out of range: the model in {spec.hubert_path} "
                             f"has hidden_states 0..{n_layers}")
        if not config.do_stable_layer_norm:
            # Post-LN encoder: hidden_states[layer] does not depend on later layers, so
            # they are dropped instead of being computed and thrown away. (The pre-LN
            # variant applies a final LayerNorm to the last entry only, so there we keep all.)
            # One layer is kept even for layer 0: HF reports no hidden_states for an empty encoder.
            model.encoder.layers = model.encoder.layers[:max(1, spec.layer)]
        self.field, self.stride = conv_geometry(tuple(config.conv_kernel), tuple(config.conv_stride))
        self.native_rate = native_rate(tuple(config.conv_stride), spec.sample_rate)
        self.dim = config.hidden_size
        self.chunk_samples = max(1, math.floor(spec.chunk_seconds * spec.sample_rate / self.stride)) * self.stride
        self.model = model
        self.spec = spec
        self.device = device

    def chunks(self, samples: np.ndarray) -> list[torch.Tensor]:
        """The waveform normalised (if asked) and cut into the chunks the model sees, on its device."""
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
        if self.spec.normalize_waveform:
            # What HF's Wav2Vec2FeatureExtractor does with do_normalize=True.
            wav = (wav - wav.mean()) / torch.sqrt(wav.var(unbiased=False) + 1e-7)
        wav = wav.to(self.device)
        return [wav[start:end] for start, end in chunk_bounds(len(wav), self.chunk_samples, self.field, self.stride)]

    def __call__(self, samples: np.ndarray) -> torch.Tensor:
        pieces = []
        for chunk in self.chunks(samples):
            out = self.model(chunk[None], output_hidden_states=True)
            pieces.append(out.hidden_states[self.spec.layer][0])
        return torch.cat(pieces).float().cpu()
