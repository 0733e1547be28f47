"""Audio I/O: conversion to 16 kHz mono, clear errors, atomic writes; the manifest format."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from slmscale.audio.io import SAMPLE_RATE, AudioError, duration_seconds, load_audio, write_wav
from slmscale.audio.manifest import Utterance, read_manifest, write_manifest
from slmscale.files import StageError


def _tone(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def test_stereo_44k_flac_is_converted(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, _tone(44_100, 1.0, channels=2), 44_100)
    audio = load_audio(path)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(len(audio.samples) - SAMPLE_RATE) <= 2
    assert audio.conversions == ["resampled 44100 -> 16000 Hz", "down-mixed 2 channels to mono"]
    # The tone survives resampling: its peak stays near 0.5.
    assert 0.45 < np.abs(audio.samples[100:-100]).max() < 0.55


@pytest.mark.parametrize("content, needle", [(b"", "empty file"), (b"not audio at all" * 10, "not readable")])
def test_bad_files_are_named(tmp_path, content, needle):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=needle) as err:
        load_audio(path)
    assert str(path) in str(err.value)


def test_zero_length_and_missing(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="zero-length"):
        load_audio(path)
    with pytest.raises(AudioError, match="no such"):
        load_audio(tmp_path / "nope.wav")


def test_write_wav_round_trip_and_refuses_empty(tmp_path):
    path = tmp_path / "x.wav"
    write_wav(path, _tone(SAMPLE_RATE, 0.5))
    assert abs(duration_seconds(path) - 0.5) < 1e-3
    assert sf.info(path).subtype == "PCM_16"
    with pytest.raises(AudioError):
        write_wav(tmp_path / "y.wav", np.zeros(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav"]


def test_manifest_round_trip_and_validation(tmp_path):
    utts = [Utterance("a", "audio/a.wav", 1.0, 16000, "s1", "train", "hello"),
            Utterance("b", "audio/b.wav", 2.0, 16000, "s2", "test", "")]
    write_manifest(tmp_path, utts)
    assert read_manifest(tmp_path) == utts
    with pytest.raises(StageError, match="duplicate"):
        write_manifest(tmp_path, utts + utts[:1])
    with pytest.raises(StageError, match="split 'dev'"):
        write_manifest(tmp_path, [Utterance("c", "c.wav", 1.0, 16000, "s", "dev", "")])
    (tmp_path / "manifest.jsonl").write_text('{"id": "a"}\n')
    with pytest.raises(StageError, match="missing key 'path'"):
        read_manifest(tmp_path)
