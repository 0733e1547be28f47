"""espeak-ng through libespeak-ng (ctypes), each utterance from a fresh engine state.

The library is used in two ways. Voice lists, voice checks and phonemization call it
in this process (`_Engine`). Speech comes from `espeak_server.py`, a small process that
initialises the library once and forks a child per utterance, so that every utterance
starts from the same state: libespeak-ng carries state from one call to the next that
no API call resets (the pitch flutter phase, the glottal cycle count, leftovers of the
previous clause's phoneme list; see that module), which made the audio of a text
depend on what the process had said before, so on the worker count and on resumes.
Now an utterance's audio is a function of its text, voice and options only. The
library's callback reports word events with audio positions, which give word timings.
One server per process, started on first use; forking it costs about a millisecond an
utterance, against the process spawn per utterance of the espeak-ng CLI.
"""

from __future__ import annotations

import atexit
import bisect
import ctypes
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from slmscale.audio import espeak_server as server
from slmscale.audio.io import SAMPLE_RATE, resample
from slmscale.audio.phonemes import PhonemeError, arpabet_to_espeak
from slmscale.audio.tts import Speech, TTSError, parse_voice

_PHONEMES = server.PHONEMES
_ENDPAUSE = server.ENDPAUSE
_EVENT_WORD = server.EVENT_WORD
_EE_OK = server.EE_OK
_RATE_MIN, _RATE_MAX = 80, 450
_LIBRARY = server.LIBRARY
_INSTALL_HINT = "install espeak-ng (Debian/Ubuntu: apt-get install espeak-ng)"


class _Engine:
    """This process's libespeak-ng, for voice lists, voice checks and phonemes (no speech)."""

    def __init__(self) -> None:
        try:
            lib = server.load_library()
        except OSError as err:
            raise TTSError(f"cannot load {_LIBRARY} ({err}); {_INSTALL_HINT}") from None
        rate = server.initialize(lib)
        if rate <= 0:
            raise TTSError(f"espeak_Initialize failed (returned {rate}); is espeak-ng-data installed?")
        self.lib = lib
        self.lock = threading.Lock()
        self.current: tuple[str, int] | None = None

    def select(self, name: str, rate: int) -> None:
        if self.current == (name, rate):
            return
        if self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            self.current = None
            raise TTSError(_no_voice(name))
        # Setting a voice resets the speech parameters, so the rate follows it.
        self.lib.espeak_SetParameter(server.RATE, rate, 0)
        self.current = (name, rate)

    def phonemes(self, text: str, ipa: bool) -> str:
        """espeak's own transcription, clause by clause (espeak_TextToPhonemes)."""
        # c_char_p keeps its bytes alive while the library advances the pointer through them.
        data = ctypes.c_char_p(text.encode("utf-8"))
        clauses = []
        while data.value:
            result = self.lib.espeak_TextToPhonemes(ctypes.byref(data), server.CHARS_UTF8, 0x02 if ipa else 0)
            if result:
                clauses.append(result.decode("utf-8").strip())
        return " ".join(c for c in clauses if c)

    def list_voices(self, spec: server.Voice | None) -> list[tuple[str, str, int]]:
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


def _no_voice(name: str) -> str:
    return f"espeak-ng has no voice {name!r} (see `espeak-ng --voices`)"


class _Server:
    """The client of one `espeak_server` process: one utterance per request."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-S", server.__file__], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, bufsize=0)
        except OSError as err:
            raise TTSError(f"cannot start the espeak-ng server process: {err}") from None
        self.requests, self.replies = self.process.stdin.fileno(), self.process.stdout.fileno()
        try:
            (rate,) = server.RATE_HEADER.unpack(server.read_exact(self.replies, server.RATE_HEADER.size))
        except EOFError:
            rate = 0
        if rate <= 0:
            self.close()
            raise TTSError(f"the espeak-ng server process could not load and initialise {_LIBRARY}; "
                           f"{_INSTALL_HINT}, with espeak-ng-data")
        self.native_rate = rate

    @property
    def usable(self) -> bool:
        return self.pid == os.getpid() and self.process.poll() is None

    def speak(self, name: str, rate: int, text: str,
              flags: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """Samples (int16, native rate) and events of one utterance; any failure of the
        pipe or the server is a TTSError, and the server is not used again."""
        voice, data = name.encode(), text.encode("utf-8")
        try:
            server.write_all(self.requests, server.REQUEST.pack(flags, rate, len(voice), len(data)) + voice + data)
            status, pcm_size, n_events, message_size = server.REPLY.unpack(
                server.read_exact(self.replies, server.REPLY.size))
            pcm = server.read_exact(self.replies, pcm_size)
            events = list(server.EVENT.iter_unpack(server.read_exact(self.replies, n_events * server.EVENT.size)))
            message = server.read_exact(self.replies, message_size).decode("utf-8", "replace")
        except (OSError, EOFError) as err:
            self.close()
            raise TTSError(f"the espeak-ng server process stopped answering ({err}); the next "
                           "utterance starts a new one") from None
        except BaseException:
            self.close()  # e.g. Ctrl-C mid-reply: the pipe is out of step, start afresh next time
            raise
        if status == server.NO_VOICE:
            raise TTSError(_no_voice(name))
        if status != server.OK:
            raise TTSError(message)
        return np.frombuffer(pcm, dtype="<i2"), events

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=5)  # it exits when its request pipe closes
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()
_SERVER: _Server | None = None
_SERVER_LOCK = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


def _speak_fresh(name: str, rate: int, text: str,
                 flags: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]], int]:
    """One utterance from this process's server (started, or restarted after a failure or
    in a forked child, here): int16 samples, events, native sample rate."""
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is None or not _SERVER.usable:
            _SERVER = _Server()
        pcm, events = _SERVER.speak(name, rate, text, flags)
        return pcm, events, _SERVER.native_rate


@atexit.register
def _stop_server() -> None:
    with _SERVER_LOCK:
        if _SERVER is not None and _SERVER.pid == os.getpid():
            _SERVER.close()


class EspeakBackend:
    """espeak-ng voices and variants, e.g. "en-us", "en-us+m3@160" (rate in words per minute)."""

    name = "espeak"
    word_timings = True
    # Male voices only: a female variant yields MFCC units nearly disjoint from the male
    # ones (docs/DESIGN.md §5.2), splitting the unit inventory; rate variation is harmless.
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
            spec = server.Voice()
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
        pcm, events, native = _speak_fresh(name, wpm, text, flags)
        if pcm.size == 0:
            raise TTSError(f"espeak-ng produced no audio for {text[:60]!r}")
        samples = resample(np.multiply(pcm, 1 / 32768, dtype=np.float32), native, self.sample_rate)
        words = _word_spans(events, text, label, len(pcm) / native)
        return Speech(samples, self.sample_rate, words)


def _word_spans(events: list[tuple[int, int, int, int]], text: str, label: str | None,
                total_s: float) -> tuple[tuple[str, float, float], ...]:
    """(word, start_s, end_s) from WORD events; a word ends at the next word or clause end.

    `text_position` is 1-based and counts characters (not bytes) of the UTF-8 input.
    espeak may fold a short function word into its neighbour's event ("there was") and
    may emit an empty WORD event (position 0, length 0), which is dropped.
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
