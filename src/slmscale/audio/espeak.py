"""espeak-ng, called in-process through ctypes (libespeak-ng.so.1).

In-process synthesis avoids a process spawn per utterance (DERISK §2: about 610 audio
seconds per CPU second) and its callback reports word events with audio positions,
which give word timings for free. The engine is process-global: it is initialised
once per process, and a lock serialises calls from threads.
"""

from __future__ import annotations

import bisect
import ctypes
import threading
from pathlib import Path

import numpy as np

from slmscale.audio.io import SAMPLE_RATE, resample
from slmscale.audio.phonemes import PhonemeError, arpabet_to_espeak
from slmscale.audio.tts import Speech, TTSError, parse_voice

# Constants of /usr/include/espeak-ng/speak_lib.h (API revision 12, espeak-ng 1.51).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES = 0x100      # text inside [[...]] is phoneme mnemonics
_ENDPAUSE = 0x1000     # add a sentence pause after the last clause
_RATE = 1              # espeak_PARAMETER espeakRATE
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED = 0, 1, 5, 6
_EE_OK = 0
_RATE_MIN, _RATE_MAX = 80, 450
_LIBRARY = "libespeak-ng.so.1"


class _Event(ctypes.Structure):
    # espeak_EVENT on x86-64: 6 ints, a void*, then an 8-byte union.
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_int64)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class _Engine:
    """The process's one libespeak-ng instance, with the buffers its callback fills."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(_LIBRARY)
        except OSError as err:
            raise TTSError(f"cannot load {_LIBRARY} ({err}); install espeak-ng "
                           "(Debian/Ubuntu: apt-get install espeak-ng)") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise TTSError(f"espeak_Initialize failed (returned {rate}); is espeak-ng-data installed?")
        self.lib = lib
        self.native_rate = rate
        self.lock = threading.Lock()
        self.chunks: list[bytes] = []
        self.events: list[tuple[int, int, int, int]] = []
        self.current: tuple[str, int] | None = None
        self._callback = _CALLBACK(self._on_audio)  # kept alive as long as the engine
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, count, events) -> int:
        if count > 0:
            self.chunks.append(ctypes.string_at(wav, count * 2))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED):
                self.events.append((event.type, event.text_position, event.length,
                                    event.audio_position))
            i += 1
        return 0  # 0 = continue synthesis

    def select(self, name: str, rate: int) -> None:
        if self.current == (name, rate):
            return
        if self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            self.current = None
            raise TTSError(f"espeak-ng has no voice {name!r} (see `espeak-ng --voices`)")
        # Setting a voice resets the speech parameters, so the rate follows it.
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.current = (name, rate)

    def speak(self, text: str, flags: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        self.chunks, self.events = [], []
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0,
                                       _CHARS_UTF8 | flags, None, None)
        if status != _EE_OK:
            raise TTSError(f"espeak_Synth failed with status {status}")
        samples = np.frombuffer(b"".join(self.chunks), dtype=np.int16)
        return samples, self.events

    def phonemes(self, text: str, ipa: bool) -> str:
        """espeak's own transcription, clause by clause (espeak_TextToPhonemes)."""
        # c_char_p keeps its bytes alive while the library advances the pointer through them.
        data = ctypes.c_char_p(text.encode("utf-8"))
        clauses = []
        while data.value:
            result = self.lib.espeak_TextToPhonemes(ctypes.byref(data), _CHARS_UTF8, 0x02 if ipa else 0)
            if result:
                clauses.append(result.decode("utf-8").strip())
        return " ".join(c for c in clauses if c)

    def list_voices(self, spec: _Voice | None) -> list[tuple[str, str, int]]:
        """(first language, identifier, gender) of the voices matching `spec`."""
        voices = self.lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        out, i = [], 0
        while voices[i]:
            voice = voices[i].contents
            # `languages` is (priority byte, NUL-terminated name)*, ended by an empty name.
            language = ctypes.string_at(voice.languages + 1).decode()
            out.append((language, (voice.identifier or b"").decode(), voice.gender))
            i += 1
        return out


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


class EspeakBackend:
    """espeak-ng voices and variants, e.g. "en-us", "en-us+m3@160" (rate in words per minute)."""

    name = "espeak"
    word_timings = True
    # Male voices only: a female variant yields MFCC units nearly disjoint from the male
    # ones (DERISK §3.3), splitting the unit inventory; rate variation is harmless.
    default_corpus_voices = tuple(f"{voice}@{rate}" for voice in ("en-us", "en-us+m1", "en-us+m3", "en-us+m7")
                                  for rate in (145, 160, 175))
    default_benchmark_voices = ("en-us@160", "en-us+m3@160")
    default_rate = 175  # espeakRATE_NORMAL

    def __init__(self, sample_rate: int = SAMPLE_RATE, end_pause: bool = False,
                 threads: int = 0) -> None:
        """`end_pause` adds espeak's sentence pause after the last clause (the CLI's `-w`
        output has it; without it the audio ends with the last phoneme). `threads` is
        accepted like every backend's thread cap; espeak-ng always runs on one."""
        self.engine = _engine()
        self.sample_rate = sample_rate
        self.flags = _ENDPAUSE if end_pause else 0
        self._variants: set[str] | None = None

    def _variant_names(self) -> set[str]:
        if self._variants is None:
            spec = _Voice()
            spec.languages = ctypes.cast(ctypes.c_char_p(b"variant"), ctypes.c_void_p)
            with self.engine.lock:
                found = self.engine.list_voices(spec)
            self._variants = {Path(identifier).name for _, identifier, _ in found}
        return self._variants

    def voices(self) -> list[str]:
        """The English voices, and en-us with each variant ("en-us+m3"); any voice of
        `espeak-ng --voices` with any variant can be used."""
        with self.engine.lock:
            languages = sorted({lang for lang, identifier, _ in self.engine.list_voices(None)
                                if lang.startswith("en") and not identifier.startswith("mb/")})
        return languages + [f"en-us+{v}" for v in sorted(self._variant_names())]

    def _parse(self, voice: str) -> tuple[str, int]:
        name, rate = parse_voice(voice)
        wpm = self.default_rate if rate is None else rate
        if not float(wpm).is_integer() or not _RATE_MIN <= wpm <= _RATE_MAX:
            raise TTSError(f"espeak voice {voice!r}: rate must be a whole number of words per "
                           f"minute in [{_RATE_MIN}, {_RATE_MAX}]")
        base, _, variant = name.partition("+")
        if variant and variant not in self._variant_names():
            # espeak-ng silently ignores an unknown variant; refuse it instead.
            raise TTSError(f"espeak voice {voice!r}: no variant {variant!r} "
                           f"(known: {', '.join(sorted(self._variant_names()))})")
        return name, int(wpm)

    def check_voice(self, voice: str) -> None:
        name, wpm = self._parse(voice)
        with self.engine.lock:
            self.engine.select(name, wpm)

    def synthesize(self, text: str, voice: str, sentence_pause: bool = False) -> Speech:
        if not text.strip():
            raise TTSError("nothing to say: empty text")
        return self._speak(text, voice, self.flags | (_ENDPAUSE if sentence_pause else 0), label=None)

    def synthesize_phones(self, arpabet: str, voice: str) -> Speech:
        """Speak one word given as ARPAbet ("B L IH1 K") through espeak's phoneme input."""
        try:
            mnemonics = arpabet_to_espeak(arpabet)
        except PhonemeError as err:
            raise TTSError(str(err)) from None
        return self._speak(f"[[{mnemonics}]]", voice, self.flags | _PHONEMES, label=arpabet)

    def phonemize(self, text: str, voice: str = "en-us", ipa: bool = False) -> str:
        """espeak's own phonemes for `text`: mnemonics ("k'at") or IPA ("kˈæt")."""
        name, wpm = self._parse(voice)
        with self.engine.lock:
            self.engine.select(name, wpm)
            return self.engine.phonemes(text, ipa)

    def _speak(self, text: str, voice: str, flags: int, label: str | None) -> Speech:
        name, wpm = self._parse(voice)
        with self.engine.lock:
            self.engine.select(name, wpm)
            pcm, events = self.engine.speak(text, flags)
        if pcm.size == 0:
            raise TTSError(f"espeak-ng produced no audio for {text[:60]!r}")
        native = self.engine.native_rate
        samples = resample(np.multiply(pcm, 1 / 32768, dtype=np.float32), native, self.sample_rate)
        words = _word_spans(events, text, label, len(pcm) / native)
        return Speech(samples, self.sample_rate, words)


def _word_spans(events: list[tuple[int, int, int, int]], text: str, label: str | None,
                total_s: float) -> tuple[tuple[str, float, float], ...]:
    """(word, start_s, end_s) from WORD events; a word ends at the next word or clause end.

    `text_position` is 1-based and counts characters (not bytes) of the UTF-8 input.
    espeak may fold a short function word into its neighbour's event ("there was") and,
    after earlier calls, emits an empty WORD event (position 0, length 0) that is dropped.
    Phoneme input is one word, reported under `label` and spanning the whole utterance.
    """
    starts = [(pos, length, ms / 1000.0) for kind, pos, length, ms in events
              if kind == _EVENT_WORD and pos > 0 and length > 0]
    if label is not None:
        return ((label, round(starts[0][2] if starts else 0.0, 3), round(total_s, 3)),)
    boundaries = sorted(ms / 1000.0 for _, _, _, ms in events)
    spans = []
    for i, (pos, length, start) in enumerate(starts):
        nxt = starts[i + 1][2] if i + 1 < len(starts) else total_s
        after = bisect.bisect_right(boundaries, start)
        end = boundaries[after] if after < len(boundaries) and boundaries[after] <= nxt else nxt
        spans.append((text[pos - 1:pos - 1 + length], round(start, 3), round(min(end, total_s), 3)))
    return tuple(spans)
