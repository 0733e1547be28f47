"""Feature extractors: MFCC/log-mel against a numpy reference, stacking, CMVN, HuBERT loading and chunking."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from slmscale.config import ConfigError
from slmscale.units.features import FeatureSpec, build_extractor, deltas, native_frame_rate, with_frame_rate
from slmscale.units.hubert import chunk_bounds, conv_geometry

SR = 16000


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A few gliding harmonics with amplitude modulation plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum(np.sin(h * phase) / h for h in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.1 * wav + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


# ---- an independent float64 numpy reference (loops and formulas, no shared code) ----

def reference_log_mel(wav: np.ndarray, n_mels: int) -> np.ndarray:
    win, hop, n_fft = 400, 160, 512
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win) / (win - 1))
    n_frames = 1 + (len(wav) - win) // hop
    frames = np.stack([wav[i * hop:i * hop + win].astype(np.float64) * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, n=n_fft)) ** 2
    mel = lambda f: 2595 * math.log10(1 + f / 700)
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)
    top = mel(SR / 2)
    points = [inv(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    fb = np.zeros((n_fft // 2 + 1, n_mels))
    for m in range(n_mels):
        lo, mid, hi = points[m], points[m + 1], points[m + 2]
        for b in range(n_fft // 2 + 1):
            f = b * SR / n_fft
            if lo < f <= mid:
                fb[b, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                fb[b, m] = (hi - f) / (hi - mid)
    return np.log(np.maximum(power @ fb, 1e-10))


def reference_mfcc(wav: np.ndarray) -> np.ndarray:
    logmel = reference_log_mel(wav, 40)
    n = 40
    ceps = np.zeros((len(logmel), 13))
    for k in range(13):
        scale = math.sqrt(1 / n) if k == 0 else math.sqrt(2 / n)
        ceps[:, k] = scale * sum(logmel[:, j] * math.cos(math.pi * k * (2 * j + 1) / (2 * n)) for j in range(n))

    def delta(x):
        out = np.zeros_like(x)
        last = len(x) - 1
        for t in range(len(x)):
            acc = sum(d * (x[min(t + d, last)] - x[max(t - d, 0)]) for d in range(1, 5))
            out[t] = acc / (2 * (1 + 4 + 9 + 16))
        return out

    d1 = delta(ceps)
    return np.concatenate([ceps, d1, delta(d1)], axis=1)


# ---- mfcc / logmel ----

def test_mfcc_matches_numpy_reference():
    wav = speechlike(1.0)
    got = build_extractor(FeatureSpec(cmvn=False))(wav)
    want = reference_mfcc(wav)
    assert got.shape == want.shape == (1 + (len(wav) - 400) // 160, 39)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=2e-3)


def test_logmel_matches_numpy_reference():
    wav = speechlike(0.5, seed=1)
    got = build_extractor(FeatureSpec(kind="logmel", cmvn=False))(wav)
    np.testing.assert_allclose(got, reference_log_mel(wav, 80), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("n", [400, 401, 559, 560, 16000, 16123])
def test_frame_count_is_not_centred(n):
    feats = build_extractor(FeatureSpec())(speechlike(1.1)[:n])
    assert feats.shape == (1 + (n - 400) // 160, 39)


def test_too_short_names_the_sample_count():
    with pytest.raises(ValueError, match="399 samples"):
        build_extractor(FeatureSpec())(np.zeros(399, np.float32))
    # At 25 Hz one output frame needs four 10 ms frames: 400 + 3 * 160 samples.
    extractor = build_extractor(FeatureSpec(frame_rate=25))
    assert extractor(np.ones(880, np.float32)).shape == (1, 156)
    with pytest.raises(ValueError, match="879 samples"):
        extractor(np.ones(879, np.float32))


def test_deltas_of_a_constant_signal_are_zero():
    feats = build_extractor(FeatureSpec(cmvn=False))(np.full(8000, 0.25, np.float32))
    assert np.abs(feats[:, 13:]).max() < 1e-5
    assert np.ptp(feats[:, :13], axis=0).max() < 1e-4
    ramp = torch.arange(20, dtype=torch.float32)[:, None].repeat(1, 3)
    # A linear ramp has delta 1 away from the edges.
    torch.testing.assert_close(deltas(ramp)[4:-4], torch.ones(12, 3))


def test_cmvn_gives_zero_mean_unit_std():
    for kind in ("mfcc", "logmel"):
        feats = build_extractor(FeatureSpec(kind=kind))(speechlike(2.0, seed=2))
        np.testing.assert_allclose(feats.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(feats.std(axis=0), 1, atol=1e-3)
    silent = build_extractor(FeatureSpec())(np.zeros(4000, np.float32))
    assert np.isfinite(silent).all() and np.abs(silent).max() == 0


@pytest.mark.parametrize("kind,rate,stack", [("mfcc", 50, 2), ("mfcc", 25, 4), ("logmel", 50, 2)])
def test_lower_rates_concatenate_consecutive_frames(kind, rate, stack):
    wav = speechlike(1.0, seed=3)
    native = build_extractor(FeatureSpec(kind=kind))(wav)
    extractor = build_extractor(FeatureSpec(kind=kind, frame_rate=rate))
    stacked = extractor(wav)
    whole = len(native) // stack
    assert extractor.frame_rate == rate and extractor.dim == native.shape[1] * stack
    assert stacked.shape == (whole, extractor.dim)
    np.testing.assert_array_equal(stacked, native[:whole * stack].reshape(whole, -1))


def test_default_frame_rate_is_the_native_one():
    assert FeatureSpec().frame_rate == 0
    for kind in ("mfcc", "logmel"):
        assert build_extractor(FeatureSpec(kind=kind)).frame_rate == 100
        assert with_frame_rate(FeatureSpec(kind=kind)) == FeatureSpec(kind=kind, frame_rate=100)
    assert with_frame_rate(FeatureSpec(frame_rate=25)).frame_rate == 25


@pytest.mark.parametrize("fields,message", [
    ({"frame_rate": 30}, "frame_rate 30"), ({"kind": "wavelet"}, "'wavelet'"), ({"layer": -1}, "layer=-1"),
    ({"n_mfcc": 0}, "n_mfcc=0"), ({"chunk_seconds": 0.0}, "chunk_seconds"), ({"sample_rate": 0}, "sample_rate=0")])
def test_spec_is_validated_when_built(fields, message):
    with pytest.raises(ConfigError, match=message):
        FeatureSpec(**fields)


def test_bad_specs_and_inputs():
    with pytest.raises(ValueError, match="frame_rate 30"):
        build_extractor(FeatureSpec(frame_rate=30))
    with pytest.raises(ValueError, match="'wavelet'"):
        build_extractor(FeatureSpec(kind="wavelet"))
    with pytest.raises(ValueError, match="shape"):
        build_extractor(FeatureSpec())(np.zeros((2, 8000), np.float32))
    # float64 input is accepted and gives float32 frames.
    assert build_extractor(FeatureSpec())(np.zeros(800)).dtype == np.float32


# ---- hubert ----

def save_tiny_hubert(directory, stable_layer_norm: bool = False, seed: int = 0):
    from transformers import HubertConfig, HubertModel
    torch.manual_seed(seed)
    config = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                          do_stable_layer_norm=stable_layer_norm,
                          feat_extract_norm="layer" if stable_layer_norm else "group")
    model = HubertModel(config).eval()
    model.save_pretrained(directory, safe_serialization=True)
    return model


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hubert")
    return directory, save_tiny_hubert(directory)


@pytest.mark.parametrize("stable", [False, True])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_hubert_layer_equals_direct_model_call(tmp_path, stable, layer):
    model = save_tiny_hubert(tmp_path, stable_layer_norm=stable)
    wav = speechlike(1.0, seed=4)
    extractor = build_extractor(FeatureSpec(kind="hubert", hubert_path=str(tmp_path), layer=layer,
                                            frame_rate=50, cmvn=False))
    got = extractor(wav)
    with torch.inference_mode():
        want = model(torch.from_numpy(wav)[None], output_hidden_states=True).hidden_states[layer][0].numpy()
    assert extractor.dim == 32 and got.shape == want.shape == (1 + (len(wav) - 400) // 320, 32)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_hubert_stacking_cmvn_and_normalisation(tiny_hubert):
    directory, _ = tiny_hubert
    wav = speechlike(1.0, seed=5) * 3 + 0.05
    base = FeatureSpec(kind="hubert", hubert_path=str(directory), layer=2, frame_rate=50)
    native = build_extractor(base)(wav)
    np.testing.assert_allclose(native.std(axis=0), 1, atol=1e-3)
    quarter = build_extractor(replace(base, frame_rate=25))
    assert quarter.dim == 64
    np.testing.assert_array_equal(quarter(wav), native[:len(native) // 2 * 2].reshape(-1, 64))
    normalised = (wav - wav.mean()) / np.sqrt(wav.var() + 1e-7)
    on = build_extractor(replace(base, normalize_waveform=True))(wav)
    np.testing.assert_allclose(on, build_extractor(base)(normalised.astype(np.float32)), rtol=1e-5, atol=2e-5)
    # GroupNorm in the first conv layer makes the model nearly blind to scale and offset,
    # so normalising moves the output only a little, but measurably.
    assert np.abs(on - native).max() > 1e-4


def test_chunk_bounds_reproduce_whole_signal_conv_frames(tmp_path):
    # LayerNorm conv stack: every conv frame depends only on its receptive field. (With
    # GroupNorm the first layer normalises over the whole input, so no chunking is exact.)
    model = save_tiny_hubert(tmp_path, stable_layer_norm=True)
    field, stride = conv_geometry(tuple(model.config.conv_kernel), tuple(model.config.conv_stride))
    assert (field, stride) == (400, 320)
    for n in (400, 719, 720, 3 * 3200 + 80, 3 * 3200 + 79, 23457):
        wav = torch.from_numpy(speechlike(2.0, seed=6)[:n])[None]
        bounds = chunk_bounds(n, 3200, field, stride)
        with torch.inference_mode():
            whole = model.feature_extractor(wav)
            pieces = torch.cat([model.feature_extractor(wav[:, a:b]) for a, b in bounds], dim=2)
        assert whole.shape[2] == 1 + (n - field) // stride
        torch.testing.assert_close(pieces, whole, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of the stride"):
        chunk_bounds(1000, 3000, field, stride)


def test_hubert_chunks_keep_the_frame_grid(tiny_hubert):
    directory, model = tiny_hubert
    wav = speechlike(2.3, seed=7)
    spec = FeatureSpec(kind="hubert", hubert_path=str(directory), layer=1, frame_rate=50, cmvn=False,
                       chunk_seconds=0.5)
    chunked = build_extractor(spec)(wav)
    unchunked = build_extractor(replace(spec, chunk_seconds=30.0))(wav)
    assert chunked.shape == unchunked.shape
    # Each chunk is an independent forward pass over its samples (transformer context stops there).
    with torch.inference_mode():
        want = np.concatenate([
            model(torch.from_numpy(wav[a:b])[None], output_hidden_states=True).hidden_states[1][0].numpy()
            for a, b in chunk_bounds(len(wav), 8000, 400, 320)])
    np.testing.assert_allclose(chunked, want, rtol=1e-4, atol=1e-5)


def test_hubert_native_rate_comes_from_its_config(tiny_hubert, tmp_path):
    directory, _ = tiny_hubert
    spec = FeatureSpec(kind="hubert", hubert_path=str(directory), layer=1)
    assert native_frame_rate(spec) == 50 and with_frame_rate(spec).frame_rate == 50
    assert build_extractor(spec).frame_rate == 50
    # Read from config.json alone: no weights are needed to resolve the rate.
    (tmp_path / "config.json").write_text((directory / "config.json").read_text())
    assert native_frame_rate(FeatureSpec(kind="hubert", hubert_path=str(tmp_path))) == 50
    with pytest.raises(FileNotFoundError, match="nowhere"):
        native_frame_rate(FeatureSpec(kind="hubert", hubert_path=str(tmp_path / "nowhere")))


def test_hubert_errors(tiny_hubert, tmp_path):
    directory, _ = tiny_hubert
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_extractor(FeatureSpec(kind="hubert", hubert_path=str(tmp_path / "nowhere"), frame_rate=50))
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_extractor(FeatureSpec(kind="hubert", hubert_path=str(tmp_path), frame_rate=50))
    with pytest.raises(ValueError, match="hubert_path"):
        build_extractor(FeatureSpec(kind="hubert", frame_rate=50))
    with pytest.raises(ValueError, match="layer 3"):
        build_extractor(FeatureSpec(kind="hubert", hubert_path=str(directory), layer=3, frame_rate=50))
    with pytest.raises(ValueError, match="chunk_seconds"):
        build_extractor(FeatureSpec(kind="hubert", hubert_path=str(directory), frame_rate=50, chunk_seconds=0))
    with pytest.raises(ValueError, match="frame_rate 100"):
        build_extractor(FeatureSpec(kind="hubert", hubert_path=str(directory), layer=1, frame_rate=100))
    extractor = build_extractor(FeatureSpec(kind="hubert", hubert_path=str(directory), layer=1, frame_rate=50))
    with pytest.raises(ValueError, match="399 samples"):
        extractor(np.zeros(399, np.float32))


def test_past_cmvn_gives_a_shared_prefix_identical_features():
    """Two files that share their first 2 s (a cloze prompt, the start of a minimal pair) get the
    same past-CMVN features over it, up to the frames whose window or deltas reach the join (to
    round-off: a BLAS kernel may sum a longer file's rows in another order); per-utterance CMVN
    changes every frame of the prefix by far more."""
    prefix = speechlike(2.0, seed=4)
    a = np.concatenate([prefix, speechlike(1.5, seed=5)])
    b = np.concatenate([prefix, 0.3 * speechlike(0.7, seed=6)])
    past = build_extractor(FeatureSpec(cmvn_stats="past"))
    # 2 s = 200 frames; the last ones see the join through the 25 ms window and 2 x 4 delta frames.
    safe = 200 - 3 - 8
    fa, fb = past(a), past(b)
    np.testing.assert_allclose(fa[:safe], fb[:safe], rtol=0, atol=1e-5)
    assert not np.array_equal(fa[safe + 20:len(fb)], fb[safe + 20:])
    whole = build_extractor(FeatureSpec(cmvn_stats="utterance"))
    assert (np.abs(whole(a)[:safe] - whole(b)[:safe]).max(axis=1) > 1e-3).all()


def test_past_cmvn_statistics():
    """Frame t is normalised by frames 0..max(t, warm-up); an utterance within the warm-up is
    normalised as a whole, and constant dimensions map to 0."""
    from slmscale.units.features import CMVN_WARMUP_SECONDS, cmvn, cmvn_past
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.normal(3.0, 2.0, size=(300, 5)).astype(np.float32))
    frames[:, 4] = 7.0
    warmup = 100
    out = cmvn_past(frames, warmup)
    for t in (0, 50, 99, 100, 180, 299):
        upto = frames[:max(t, warmup - 1) + 1, :4].double()
        expected = (frames[t, :4].double() - upto.mean(0)) / upto.std(0, unbiased=False)
        torch.testing.assert_close(out[t, :4].double(), expected, atol=1e-5, rtol=1e-5)
    assert np.abs(out[:, 4].numpy()).max() < 1e-6
    torch.testing.assert_close(cmvn_past(frames[:80], warmup), cmvn(frames[:80]), atol=1e-5, rtol=1e-5)
    assert build_extractor(FeatureSpec(cmvn_stats="past")).cmvn_warmup == round(100 * CMVN_WARMUP_SECONDS)
    with pytest.raises(ConfigError, match="cmvn_stats 'future'"):
        FeatureSpec(cmvn_stats="future")
