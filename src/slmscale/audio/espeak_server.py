"""A small process that speaks every utterance from the same fresh libespeak-ng state.

libespeak-ng keeps state from one call to the next that no API call resets (1.51,
found by restoring the library's static variables between calls: with three of them
put back, the audio no longer depends on what was said before):
- the pitch flutter phase (`Flutter_ix`, a function-static in wavegen.c, advanced
  every 64 samples and never reset, not even by espeak_Initialize);
- the glottal cycle counter behind the voice's roughness (`cycle_count`, likewise);
- the phoneme list, whose entries past the end of the current clause are read as the
  "next" phonemes of the clause's last vowel: the previous clause's leftovers.
So the same text in the same voice came out some samples to 0.1 s longer or shorter
depending on what the process had spoken before, and a corpus depended on the worker
count and on where a run was resumed.

This process loads libespeak-ng, initialises it (and lists the voices, which the first
voice selection would do) and never speaks itself. For each request it forks a child
that selects the voice, speaks, writes the samples and the word events to the client
and exits; every utterance therefore starts from the same state, and its audio is a
function of (voice, rate, flags, text). A child that dies abnormally (a crash in the
library) stops the server, so the client sees its pipe end rather than a cut answer.

It runs as a script on the standard library only (`python -P -S espeak_server.py`),
so that it stays small: a fork costs well under a millisecond. `espeak.py` is the
client and shares the ctypes declarations below.

Pipes (little-endian): on start the server writes "<i" (the native sample rate, or
a value <= 0 when espeak_Initialize failed); then it reads requests "<IIII" (flags,
rate in words per minute, byte lengths of voice and text), the voice name, the UTF-8
text, and answers each with "<iIII" (status, bytes of int16 samples, number of
events, bytes of message), the samples, the events ("<iiii": type, text position,
length, audio position in ms) and a UTF-8 message (for a status other than OK).
"""

from __future__ import annotations

import ctypes
import os
import signal
import struct
import sys
import warnings

LIBRARY = "libespeak-ng.so.1"

# Constants of /usr/include/espeak-ng/speak_lib.h (API revision 12, espeak-ng 1.51).
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
PHONEMES = 0x100      # text inside [[...]] is phoneme mnemonics
ENDPAUSE = 0x1000     # add a sentence pause after the last clause
RATE = 1              # espeak_PARAMETER espeakRATE
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_END, EVENT_MSG_TERMINATED = 0, 1, 5, 6
EE_OK = 0

# Reply statuses.
OK, NO_VOICE, SYNTH_FAILED, FAILED = 0, 1, 2, 3

REQUEST = struct.Struct("<IIII")
REPLY = struct.Struct("<iIII")
EVENT = struct.Struct("<iiii")
RATE_HEADER = struct.Struct("<i")


class Event(ctypes.Structure):
    # espeak_EVENT on x86-64: 6 ints, a void*, then an 8-byte union.
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_int64)]


class Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                            ctypes.POINTER(Event))


def load_library() -> ctypes.CDLL:
    """libespeak-ng with the signatures used here; OSError when it is not installed."""
    lib = ctypes.CDLL(LIBRARY)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ListVoices.argtypes = [ctypes.POINTER(Voice)]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(Voice))
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    return lib


def initialize(lib: ctypes.CDLL) -> int:
    """espeak_Initialize for synchronous output; the native sample rate, <= 0 on failure."""
    return lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_DONT_EXIT)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, size: int) -> bytearray:
    """`size` bytes from `fd`; EOFError when it ends first."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise EOFError(f"pipe closed after {got} of {size} bytes")
        got += n
    return buffer


def reply(status: int, pcm: bytes = b"", events: list[tuple[int, int, int, int]] = (),
          message: str = "") -> bytes:
    text = message.encode("utf-8", "replace")
    return b"".join([REPLY.pack(status, len(pcm), len(events), len(text)), pcm,
                     b"".join(EVENT.pack(*event) for event in events), text])


# --- the server ------------------------------------------------------------------

_chunks: list[bytes] = []
_events: list[tuple[int, int, int, int]] = []


def _on_audio(wav, count, events) -> int:
    if count > 0:
        _chunks.append(ctypes.string_at(wav, count * 2))
    i = 0
    while events[i].type != EVENT_LIST_TERMINATED:
        event = events[i]
        if event.type in (EVENT_WORD, EVENT_END, EVENT_MSG_TERMINATED):
            _events.append((event.type, event.text_position, event.length, event.audio_position))
        i += 1
    return 0  # 0 = continue synthesis


def _speak(lib: ctypes.CDLL, flags: int, rate: int, voice: bytes, text: bytes) -> bytes:
    """In the forked child: one utterance from the fresh state, as a reply."""
    try:
        if lib.espeak_SetVoiceByName(voice) != EE_OK:
            return reply(NO_VOICE, message=voice.decode("utf-8", "replace"))
        # Setting a voice resets the speech parameters, so the rate follows it.
        lib.espeak_SetParameter(RATE, rate, 0)
        status = lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8 | flags, None, None)
        if status != EE_OK:
            return reply(SYNTH_FAILED, message=f"espeak_Synth failed with status {status}")
        return reply(OK, b"".join(_chunks), _events)
    except BaseException as err:  # noqa: BLE001 -- reported to the client instead
        return reply(FAILED, message=f"{type(err).__name__}: {err}")


def _serve_one(lib: ctypes.CDLL, replies: int, flags: int, rate: int, voice: bytes, text: bytes) -> bool:
    """Fork a child that speaks and answers on `replies` itself (no copy through this
    process); False when it died without a clean exit, when its answer may be cut short."""
    pid = os.fork()
    if pid == 0:  # the child: speak, answer, exit without running any cleanup
        code = 0
        try:
            write_all(replies, _speak(lib, flags, rate, voice, text))
        except BaseException:  # noqa: BLE001 -- the parent sees the exit status
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        how = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        print(f"espeak_server: the child speaking {text[:60]!r} died ({how}); stopping", file=sys.stderr)
        return False
    return True


def main() -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # fork() with espeak's idle thread
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the client decides; it closes the pipe to stop us
    # The pipes get private descriptors; stray output of the library goes to stderr.
    requests, replies = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    try:
        lib = load_library()
        rate = initialize(lib)
    except OSError:
        rate = -1
    write_all(replies, RATE_HEADER.pack(rate))
    if rate <= 0:
        return 1
    callback = CALLBACK(_on_audio)  # kept alive as long as the process
    lib.espeak_SetSynthCallback(callback)
    # The first voice selection after espeak_Initialize scans every voice file (2-3 ms);
    # scanning them here, once, leaves the children only the voice itself to load.
    lib.espeak_ListVoices(None)
    while True:
        try:
            header = read_exact(requests, REQUEST.size)
        except EOFError:
            return 0  # the client is gone or done
        flags, wpm, voice_size, text_size = REQUEST.unpack(header)
        voice, text = bytes(read_exact(requests, voice_size)), bytes(read_exact(requests, text_size))
        if not _serve_one(lib, replies, flags, wpm, voice, text):
            # A child that died abnormally may have written part of an answer: exit, so
            # that the client reads the end of the pipe instead, and starts another server.
            return 1


if __name__ == "__main__":
    sys.exit(main())
