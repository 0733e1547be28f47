"""The unit HiFi-GAN: discrete units to a 16 kHz waveform, with a unit duration predictor.

The generator is HiFi-GAN's (Kong et al. 2020): transposed-convolution upsampling, each
stage followed by multi-receptive-field residual blocks. Polyak et al. 2021 ("Speech
Resynthesis from Discrete Disentangled Self-Supervised Representations") feed it a
learned embedding of each unit; Lee et al. 2022 (direct speech-to-speech translation with
discrete units) add a duration predictor so deduplicated units can be expanded again; the
released vocoders of speech-resynthesis and textlesslib (Kharitonov et al. 2022) are in
this form. Written here from the papers and the checkpoint layout, so those checkpoints
load into it:

    DIR/config.json   the training config; read: upsample_rates, upsample_kernel_sizes,
                      upsample_initial_channel, resblock ("1" or "2"), resblock_kernel_sizes,
                      resblock_dilation_sizes, num_embeddings, embedding_dim, model_in_dim,
                      dur_predictor_params (encoder_embed_dim, var_pred_hidden_dim,
                      var_pred_kernel_size, var_pred_dropout), multispkr, num_speakers,
                      sampling_rate; optional `tokenizer_fingerprint` (ignored upstream)
                      binds it to an slmscale tokenizer
    DIR/g_XXXXXXXX    torch.save({"generator": state_dict}); every generator convolution is
                      weight-normalised (`weight_g`, `weight_v`; newer torch writes
                      `parametrizations.weight.original0/1`)

Loading folds the weight norm into plain weights (w = g v / |v|, the norm over all dims
but the first), so inference runs ordinary convolutions. F0-conditioned and style
vocoders are refused: slmscale has no pitch or style stream to give them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from slmscale.files import StageError, atomic_file, read_json, write_json
from slmscale.vocoder.mean_mel import check_durations, check_units

SLOPE = 0.1
"""Leaky-ReLU slope inside HiFi-GAN (its paper's value)."""
CONFIG = "config.json"
UNSUPPORTED = ("f0", "multistyle", "embedder_params")


def _same_padding(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation // 2


class ResBlock1(nn.Module):
    """Three (dilated conv, conv) pairs, each a residual branch: HiFi-GAN's "V1" block."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_same_padding(kernel, 1))
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.convs1, self.convs2):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class ResBlock2(nn.Module):
    """One dilated conv per residual branch: HiFi-GAN's lighter "V3" block."""

    def __init__(self, channels: int, kernel: int, dilations: list[int]):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d))
                                   for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, SLOPE))
        return x


class DurationPredictor(nn.Module):
    """Two conv + ReLU + LayerNorm layers and a projection: log(1 + run length) per unit."""

    def __init__(self, encoder_embed_dim: int, var_pred_hidden_dim: int, var_pred_kernel_size: int,
                 var_pred_dropout: float):
        super().__init__()
        pad = (var_pred_kernel_size - 1) // 2
        self.conv1 = nn.Sequential(nn.Conv1d(encoder_embed_dim, var_pred_hidden_dim, var_pred_kernel_size,
                                             padding=pad), nn.ReLU())
        self.ln1 = nn.LayerNorm(var_pred_hidden_dim)
        # The released models pad the second conv by 1 whatever the kernel; kept for their weights.
        self.conv2 = nn.Sequential(nn.Conv1d(var_pred_hidden_dim, var_pred_hidden_dim, var_pred_kernel_size,
                                             padding=1), nn.ReLU())
        self.ln2 = nn.LayerNorm(var_pred_hidden_dim)
        self.proj = nn.Linear(var_pred_hidden_dim, 1)
        self.dropout = var_pred_dropout

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        """[batch, units, channels] -> log durations [batch, units]."""
        x = self.ln1(self.conv1(embedded.transpose(1, 2)).transpose(1, 2))
        x = F.dropout(x, self.dropout, self.training)
        x = self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2))
        x = F.dropout(x, self.dropout, self.training)
        return self.proj(x).squeeze(2)


def _get(config: dict[str, Any], key: str, where: str) -> Any:
    if key not in config:
        raise StageError(f"{where}: missing key {key!r}")
    return config[key]


class CodeHiFiGAN(nn.Module):
    """Unit embedding (+ speaker) -> HiFi-GAN generator; optional duration predictor."""

    def __init__(self, config: dict[str, Any], where: str = CONFIG):
        super().__init__()
        for key in UNSUPPORTED:
            if config.get(key):
                raise StageError(f"{where}: {key!r} is set; slmscale has no such input for the vocoder")
        rates, kernels = _get(config, "upsample_rates", where), _get(config, "upsample_kernel_sizes", where)
        res_kernels = _get(config, "resblock_kernel_sizes", where)
        res_dilations = _get(config, "resblock_dilation_sizes", where)
        block = {"1": ResBlock1, "2": ResBlock2}.get(str(config.get("resblock", "1")))
        if block is None or len(rates) != len(kernels) or len(res_kernels) != len(res_dilations):
            raise StageError(f"{where}: inconsistent generator config (resblock {config.get('resblock')!r}, "
                             f"{len(rates)} upsample rates, {len(kernels)} kernels)")
        channels = int(_get(config, "upsample_initial_channel", where))
        embedding_dim = int(_get(config, "embedding_dim", where))
        self.dict = nn.Embedding(int(_get(config, "num_embeddings", where)), embedding_dim)
        self.spkr = nn.Embedding(int(config.get("num_speakers", 200)), embedding_dim) if config.get("multispkr") else None
        params = config.get("dur_predictor_params")
        self.dur_predictor = DurationPredictor(**params) if params else None
        self.conv_pre = nn.Conv1d(int(config.get("model_in_dim", 80)), channels, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(channels >> i, channels >> (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(rates, kernels)))
        self.resblocks = nn.ModuleList(block(channels >> (i + 1), k, d) for i in range(len(rates))
                                       for k, d in zip(res_kernels, res_dilations))
        self.conv_post = nn.Conv1d(channels >> len(rates), 1, 7, padding=3)
        self.kernels_per_stage = len(res_kernels)
        self.hop = math.prod(rates)

    def predict_log_durations(self, units: torch.Tensor) -> torch.Tensor:
        if self.dur_predictor is None:
            raise StageError("this HiFi-GAN checkpoint has no duration predictor (no dur_predictor_params); "
                             "give it frame-level units with their durations")
        return self.dur_predictor(self.dict(units))

    def forward(self, units: torch.Tensor, durations: torch.Tensor | None = None, speaker: int = 0) -> torch.Tensor:
        """units [1, T] (+ durations [T] in frames) -> waveform [1, 1, sum(durations) * hop] in [-1, 1]."""
        x = self.dict(units).transpose(1, 2)
        if durations is not None:
            x = torch.repeat_interleave(x, durations, dim=2)
        if self.spkr is not None:
            voice = self.spkr(torch.full((x.shape[0],), speaker, dtype=torch.long, device=x.device))
            x = torch.cat([x, voice[:, :, None].expand(-1, -1, x.shape[2])], dim=1)
        x = self.conv_pre(x)
        for stage, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            blocks = self.resblocks[stage * self.kernels_per_stage:(stage + 1) * self.kernels_per_stage]
            x = sum(block(x) for block in blocks) / self.kernels_per_stage
        # The last activation uses torch's default slope (0.01), as the released generators do.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def _weight_normalised(name: str) -> bool:
    """Generator convolutions carry weight norm; embeddings and the duration predictor do not."""
    return name.endswith(".weight") and name.split(".")[0] in ("conv_pre", "ups", "resblocks", "conv_post")


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(g, v) pairs -> plain weights g * v / |v|, the norm over every dim but the first."""
    folded: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        for g_suffix, v_suffix in ((".weight_g", ".weight_v"),
                                   (".parametrizations.weight.original0", ".parametrizations.weight.original1")):
            if name.endswith(v_suffix):
                break
            if name.endswith(g_suffix):
                base = name[:-len(g_suffix)]
                v = state.get(base + v_suffix)
                if v is None:
                    raise StageError(f"weight-norm magnitude {name} has no direction {base + v_suffix}")
                norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
                folded[base + ".weight"] = v * (tensor / norm)
                break
        else:
            folded[name] = tensor
    return folded


def unfold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Plain weights -> the checkpoint's (weight_g, weight_v) layout (v = w, g = |w|)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if _weight_normalised(name):
            base = name[:-len(".weight")]
            out[base + ".weight_g"] = tensor.flatten(1).norm(dim=1).view(-1, *([1] * (tensor.dim() - 1))).clone()
            out[base + ".weight_v"] = tensor.clone()
        else:
            out[name] = tensor
    return out


def save_code_hifigan(model: CodeHiFiGAN, config: dict[str, Any], out_dir: str | Path, step: int = 0) -> Path:
    """Write `config.json` + `g_<step>` in the speech-resynthesis layout; returns the checkpoint path."""
    out_dir = Path(out_dir)
    write_json(out_dir / CONFIG, config)
    path = out_dir / f"g_{step:08d}"
    state = unfold_weight_norm({k: v.detach().cpu() for k, v in model.state_dict().items()})
    with atomic_file(path, "wb") as handle:
        torch.save({"generator": state}, handle)
    return path


def _checkpoint_file(path: Path) -> tuple[Path, Path]:
    """(config.json, generator checkpoint) of a vocoder dir or of a checkpoint file."""
    if path.is_file():
        return path.parent / CONFIG, path
    candidates = sorted(path.glob("g_*")) or sorted(p for ext in ("pt", "pth", "ckpt") for p in path.glob(f"*.{ext}"))
    if not candidates:
        raise StageError(f"{path}: no generator checkpoint (g_XXXXXXXX, *.pt, *.pth) beside {CONFIG}")
    return path / CONFIG, candidates[-1]  # g_ files sort by step: take the last


class CodeHiFiGANVocoder:
    """A loaded unit HiFi-GAN with the interface of the mean-mel vocoder."""

    def __init__(self, model: CodeHiFiGAN, config: dict[str, Any], source: Path):
        self.model, self.config, self.source = model.eval(), config, source
        self.sample_rate = int(config.get("sampling_rate", 16000))
        self.samples_per_frame = model.hop
        self.k = model.dict.num_embeddings
        self.frame_rate = self.sample_rate // model.hop
        self.tokenizer_fingerprint: str | None = config.get("tokenizer_fingerprint")

    @torch.no_grad()
    def predict_durations(self, units: np.ndarray) -> np.ndarray:
        units = check_units(units, self.k)
        if not units.size:
            return np.zeros(0, dtype=np.int64)
        log_durations = self.model.predict_log_durations(torch.from_numpy(units)[None])[0]
        return torch.clamp(torch.round(torch.exp(log_durations) - 1), min=1).long().numpy()

    @torch.no_grad()
    def synthesize(self, units: np.ndarray, durations: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """16 kHz float32 samples, sum(durations) * hop of them; `durations=None` predicts them."""
        units = check_units(units, self.k)
        durations = self.predict_durations(units) if durations is None else check_durations(durations, units)
        if not units.size:
            return np.zeros(0, dtype=np.float32)
        wave = self.model(torch.from_numpy(units)[None], torch.from_numpy(durations))
        return wave.reshape(-1).numpy().astype(np.float32)


def load_code_hifigan(path: str | Path) -> CodeHiFiGANVocoder:
    """Load a speech-resynthesis/textlesslib checkpoint (dir or g_ file with config.json beside it)."""
    path = Path(path)
    config_path, weights = _checkpoint_file(path)
    if not config_path.is_file():
        raise StageError(f"{path}: no {CONFIG} beside the generator checkpoint {weights.name}")
    config = read_json(config_path)
    model = CodeHiFiGAN(config, str(config_path))
    try:
        # weights_only: a checkpoint is data, never code to run.
        saved = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise StageError(f"{weights}: not a loadable torch checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(saved, dict) or not isinstance(saved.get("generator"), dict):
        raise StageError(f"{weights}: expected a dict with a 'generator' state dict (speech-resynthesis layout)")
    try:
        model.load_state_dict(fold_weight_norm(saved["generator"]), strict=True)
    except RuntimeError as err:
        raise StageError(f"{weights}: does not match {config_path} ({err})") from err
    sample_rate = int(config.get("sampling_rate", 16000))
    if sample_rate != 16000 or sample_rate % model.hop:
        raise StageError(f"{config_path}: sampling_rate {sample_rate} with a hop of {model.hop} samples; "
                         "slmscale needs 16 kHz and a whole number of frames per second")
    return CodeHiFiGANVocoder(model, config, weights)
