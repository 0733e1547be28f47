"""Small fake datasets in the real formats, so importers are tested without downloads.

Like lhotse's test recipes: a LibriSpeech tree of FLAC files with `.trans.txt`
transcripts, a TinyStories text file, and a folder of audio in mixed formats,
rates and channel counts, each optionally salted with the defects importers must
report (empty, garbage and zero-length files, NaN samples, missing or empty
transcripts). Each builder returns what an importer should find, for checking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from slmscale.audio.tinystories import SEPARATOR

_WORDS = ("THE", "A", "BOY", "GIRL", "DOG", "SAW", "RAN", "HOME", "TO", "BIG", "RED", "BALL", "AND", "SMILED",
          "OLD", "MAN", "WALKED", "SLOWLY", "ACROSS", "FIELD")


@dataclass(frozen=True)
class FakeAudio:
    path: Path
    duration_s: float
    """frames / rate of the file as written."""
    rate: int
    channels: int
    speaker: str
    text: str


@dataclass
class FakeDataset:
    root: Path
    good: dict[str, FakeAudio] = field(default_factory=dict)
    """Usable items by key: the utterance id (LibriSpeech) or relative path (folder)."""
    defects: dict[str, tuple[Path, str]] = field(default_factory=dict)
    """Defect kind → (the file at fault, the utterance id or file name a report must name)."""


def speech_like(rng: np.random.Generator, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A voiced, syllable-modulated tone with a little noise: cheap, and not silence."""
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = rng.uniform(100, 220)
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * rng.uniform(3, 5) * t))
    mono = 0.2 * voice * envelope + 0.01 * rng.standard_normal(t.size)
    frames = np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1)
    return frames.astype(np.float32)


def _write(path: Path, samples: np.ndarray, rate: int, subtype: str | None = None) -> FakeAudio:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype=subtype)
    info = sf.info(str(path))
    return FakeAudio(path, info.frames / info.samplerate, rate, info.channels, "", "")


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(_WORDS, size=int(rng.integers(3, 9))))


def make_librispeech_tree(root: str | Path, speakers: int = 2, chapters: int = 2, utterances: int = 3,
                          sample_rate: int = 16000, channels: int = 1, with_defects: bool = False,
                          seed: int = 0, seconds: tuple[float, float] = (0.3, 0.9)) -> FakeDataset:
    """A LibriSpeech subset folder: `root/<spk>/<chap>/<spk>-<chap>-<utt>.flac` + `<spk>-<chap>.trans.txt`.

    With defects, the first chapter also holds: a 0-byte file, a file of random
    bytes, a zero-frame file (a wav: FLAC cannot hold zero frames), audio with no
    transcript line, a transcript line with no audio, and an empty transcript.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    data = FakeDataset(root)
    for s in range(speakers):
        speaker = str(19 + 44 * s)
        for c in range(chapters):
            chapter = str(198 + 1000 * s + 7 * c)
            folder = root / speaker / chapter
            prefix = f"{speaker}-{chapter}"
            lines = []
            for u in range(utterances):
                uid = f"{prefix}-{u:04d}"
                text = _sentence(rng)
                samples = speech_like(rng, rng.uniform(*seconds), sample_rate, channels)
                written = _write(folder / f"{uid}.flac", samples, sample_rate)
                data.good[uid] = FakeAudio(written.path, written.duration_s, sample_rate, channels, speaker, text)
                lines.append(f"{uid} {text}")
            if with_defects and s == 0 and c == 0:
                lines += _librispeech_defects(folder, prefix, utterances, rng, data)
            (folder / f"{prefix}.trans.txt").write_text("\n".join(lines) + "\n")
    return data


def _librispeech_defects(folder: Path, prefix: str, first: int, rng: np.random.Generator,
                         data: FakeDataset) -> list[str]:
    """Write the bad utterances of one chapter; returns the transcript lines they need."""
    uid = [f"{prefix}-{first + k:04d}" for k in range(6)]
    trans = folder / f"{prefix}.trans.txt"
    (folder / f"{uid[0]}.flac").write_bytes(b"")
    (folder / f"{uid[1]}.flac").write_bytes(os.urandom(2048))
    sf.write(str(folder / f"{uid[2]}.wav"), np.zeros(0, dtype=np.float32), 16000)
    _write(folder / f"{uid[3]}.flac", speech_like(rng, 0.4, 16000), 16000)
    _write(folder / f"{uid[5]}.flac", speech_like(rng, 0.4, 16000), 16000)
    data.defects.update({
        "empty_file": (folder / f"{uid[0]}.flac", uid[0]),
        "garbage": (folder / f"{uid[1]}.flac", uid[1]),
        "zero_length": (folder / f"{uid[2]}.wav", uid[2]),
        "missing_transcript": (folder / f"{uid[3]}.flac", uid[3]),
        "orphan_transcript": (trans, uid[4]),
        "empty_transcript": (trans, uid[5]),
    })
    return [f"{uid[0]} SOME WORDS", f"{uid[1]} MORE WORDS", f"{uid[2]} EVEN MORE",
            f"{uid[4]} A LINE WITHOUT AUDIO", uid[5]]


_FOLDER_FILES = (
    # relative path, rate, channels, subtype, transcript file, its text
    ("alice/one.wav", 16000, 1, "PCM_16", "alice/one.txt", "hello there"),
    ("alice/two.flac", 22050, 1, None, "alice/two.lab", "a second\nfile"),
    ("bob/three.ogg", 44100, 2, None, None, ""),
    ("bob/three.flac", 16000, 2, None, None, ""),
    ("bob/session 2/four.wav", 44100, 2, "FLOAT", "bob/session 2/four.txt", "line one\n\nline two  "),
    ("five.aiff", 8000, 1, None, None, ""),
)


def make_audio_folder(root: str | Path, with_defects: bool = False, seed: int = 0) -> FakeDataset:
    """A folder of audio in mixed formats (wav, FLAC, Ogg Vorbis, AIFF), rates and channel counts.

    Two files share a stem (`bob/three.*`), one has a space in its folder, one
    sits at the top, transcripts come as sibling .txt/.lab files, and a
    non-audio file is there to be ignored. With defects, `carol/` also holds a
    0-byte file, random bytes, a zero-frame wav and a wav of NaN samples.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    data = FakeDataset(root)
    for rel, rate, channels, subtype, text_rel, text in _FOLDER_FILES:
        written = _write(root / rel, speech_like(rng, rng.uniform(0.3, 0.8), rate, channels), rate, subtype)
        if text_rel is not None:
            (root / text_rel).write_text(text)
        speaker = Path(rel).parent.name or root.name
        data.good[rel] = FakeAudio(written.path, written.duration_s, rate, channels, speaker, " ".join(text.split()))
    (root / "alice" / "notes.md").write_text("not audio\n")
    if with_defects:
        carol = root / "carol"
        carol.mkdir()
        (carol / "empty.wav").write_bytes(b"")
        (carol / "garbage.flac").write_bytes(os.urandom(2048))
        sf.write(str(carol / "zero.wav"), np.zeros(0, dtype=np.float32), 16000)
        nan = speech_like(rng, 0.3, 16000)[:, 0]
        nan[100:200] = np.nan
        sf.write(str(carol / "nan.wav"), nan, 16000, subtype="FLOAT")
        data.defects.update({kind: (carol / name, name) for kind, name in (
            ("empty_file", "empty.wav"), ("garbage", "garbage.flac"), ("zero_length", "zero.wav"),
            ("nan_samples", "nan.wav"))})
    return data


def make_tinystories_file(path: str | Path, n: int, seed: int = 0, blank_every: int = 0,
                          trailing_separator: bool = True, odd_characters: bool = False) -> list[str]:
    """Write `n` stories in the TinyStories release format; returns each one as an importer should read it.

    Stories have one to three paragraphs (single or blank lines between them);
    every `blank_every`-th one is blank (returned as ""). With odd characters,
    the second story holds curly quotes, an accent and a zero-width space.
    """
    rng = np.random.default_rng(seed)
    names = ("Lily", "Tom", "Sue", "Ben", "Max")
    expected, chunks = [], []
    for i in range(n):
        if blank_every and i % blank_every == blank_every - 1:
            chunks.append(" \n" if i % 2 else "")
            expected.append("")
            continue
        paragraphs = []
        for _ in range(int(rng.integers(1, 4))):
            who = names[int(rng.integers(len(names)))]
            paragraphs.append(f"{who} had a {rng.choice(['red', 'big', 'small'])} ball. "
                              f"{who} played with it all day.")
        if odd_characters and i == 1:
            paragraphs.append("She said, \u201cI love the caf\u00e9!\u201d\u200b")
        gaps = [str(rng.choice(["\n", "\n\n"])) for _ in paragraphs[1:]]
        story = paragraphs[0] + "".join(g + p for g, p in zip(gaps, paragraphs[1:]))
        chunks.append(story + "\n")
        expected.append(" ".join(story.split()))
    text = f"{SEPARATOR}\n".join(chunks)
    if trailing_separator:
        text += f"{SEPARATOR}\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")
    return expected


def make_speech_corpus(root: str | Path, utterances: int = 36, seconds: float = 1.0, held_out: int = 3,
                       seed: int = 0) -> Path:
    """A corpus dir (16 kHz wavs + manifest) of speech-like utterances: `held_out` each for valid
    and test, the rest train. Enough to train a small tokenizer and LM in tests and benchmarks."""
    from slmscale.audio.io import SAMPLE_RATE, write_wav
    from slmscale.audio.manifest import Utterance, write_manifest
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(utterances):
        split = "train" if n < utterances - 2 * held_out else "valid" if n < utterances - held_out else "test"
        write_wav(root / f"u{n}.wav", speech_like(rng, seconds, SAMPLE_RATE)[:, 0])
        rows.append(Utterance(f"u{n}", f"u{n}.wav", seconds, SAMPLE_RATE, "s", split, ""))
    write_manifest(root, rows)
    return root
