"""Import the TinyStories text release as a `text.jsonl` that `slmscale synth` speaks.

The release files (`TinyStories-train.txt`, `TinyStories-valid.txt`, the V2
GPT-4 files) hold stories separated by `<|endoftext|>` lines, paragraphs
separated by newlines. Each story becomes one row `{id, text, kind: "story",
split}` — the format of the built-in world's text.jsonl — with its whitespace
collapsed to single spaces (a spoken story has no paragraphs). Empty stories are
skipped and counted; non-ASCII and control characters are kept and reported.
The file is streamed (the train file is 1.9 GB): memory stays at a few MB.

Spoken TinyStories is synthetic speech, and the test loss of the study is measured on natural
speech only, so by default no story goes to the test split (split_fractions with a test share,
or split=test, keeps one).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from slmscale.audio.config import TinyStoriesImportConfig
from slmscale.audio.import_common import (
    EXAMPLES, absolute, begin_import, claim_output_dir, completed_summary, finish_import, import_fingerprint,
    removed_if_failed_empty,
)
from slmscale.audio.manifest import SPLITS
from slmscale.files import StageError, atomic_file
from slmscale.log import get_logger
from slmscale.world.records import TextRecord

IMPORTER = "tinystories"
TEXT = "text.jsonl"
SEPARATOR = "<|endoftext|>"
MAX_STORY_CHARS = 1_000_000
"""TinyStories stories are a few thousand characters; far longer means the file has no separators."""
BLOCK_BYTES = 1 << 22
"""Bytes read (and split into stories) at a time: memory stays at a block plus one story."""
_UNDECODED = re.compile("[\udc80-\udcff]")

log = get_logger(__name__)


def split_of(index: int, seed: int, fractions: tuple[float, ...]) -> str:
    """A story's split from a hash of (seed, position): deterministic, and independent of the others."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2.0 ** 64
    total = 0.0
    for split, fraction in zip(SPLITS, fractions):
        total += fraction
        if draw < total:
            return split
    return next(s for s, f in zip(reversed(SPLITS), reversed(fractions)) if f > 0)


@dataclass
class ReadStats:
    bytes_read: int = 0
    invalid_utf8_bytes: int = 0


def _clean(text: str, stats: ReadStats) -> str:
    """Undecodable bytes (kept as surrogates while splitting) become U+FFFD, counted."""
    found = _UNDECODED.findall(text)
    if found:
        stats.invalid_utf8_bytes += len(found)
        text = _UNDECODED.sub("\ufffd", text)
    return text


def iter_story_chunks(path: Path, stats: ReadStats) -> Iterator[str]:
    """The raw text between separators, in order, empty ones included, read block by block."""
    # Splitting whole blocks is several times faster than a Python loop over lines. Bytes that are
    # not UTF-8 are carried as surrogates (not dropped), and a character cut by a block boundary is
    # completed by the incremental decoder.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    size = path.stat().st_size
    with open(path, "rb") as handle, tqdm(total=size, desc=f"reading {path.name}", unit="B", unit_scale=True,
                                           dynamic_ncols=True, mininterval=1.0, disable=None, file=sys.stderr) as bar:
        pending = ""
        first = True
        while True:
            block = handle.read(BLOCK_BYTES)
            stats.bytes_read += len(block)
            bar.update(len(block))
            text = decoder.decode(block, final=not block)
            if first:
                text, first = text.removeprefix("\ufeff"), False
            *finished, pending = (pending + text).split(SEPARATOR)
            for chunk in finished:
                yield _clean(chunk, stats)
            if len(pending) > MAX_STORY_CHARS:
                raise StageError(f"{path}: over {MAX_STORY_CHARS:,} characters without a {SEPARATOR} separator "
                                 f"(by byte {stats.bytes_read:,}); not a TinyStories text release file")
            if not block:
                break
        if pending.strip():  # text after the last separator is a story; blank space after it is not
            yield _clean(pending, stats)


@dataclass
class CharReport:
    """Stories holding some kind of character: how many, which characters, a few story ids."""
    stories: int = 0
    chars: Counter[str] = field(default_factory=Counter)
    example_ids: list[str] = field(default_factory=list)

    def add(self, story_id: str, chars: list[str]) -> None:
        self.stories += 1
        self.chars.update(chars)
        if len(self.example_ids) < EXAMPLES:
            self.example_ids.append(story_id)

    def summary(self) -> dict[str, Any]:
        return {"stories": self.stories, "characters": sum(self.chars.values()), "example_ids": self.example_ids,
                "most_common": [{"char": c, "codepoint": f"U+{ord(c):04X}", "count": n}
                                for c, n in self.chars.most_common(20)]}


@dataclass
class TextStats:
    """What the import found, for import.json."""
    kept: int = 0
    empty: int = 0
    per_split: dict[str, dict[str, int]] = field(default_factory=dict)
    non_ascii: CharReport = field(default_factory=CharReport)
    control: CharReport = field(default_factory=CharReport)

    def add(self, story_id: str, text: str, split: str) -> None:
        self.kept += 1
        row = self.per_split.setdefault(split, {"stories": 0, "characters": 0, "words": 0})
        row["stories"] += 1
        row["characters"] += len(text)
        row["words"] += text.count(" ") + 1
        if not text.isascii():  # both checks run in C; the slow scans only for the few stories they flag
            self.non_ascii.add(story_id, [c for c in text if ord(c) > 127])
        if not text.isprintable():
            odd = [c for c in text if unicodedata.category(c) in ("Cc", "Cf")]
            if odd:
                self.control.add(story_id, odd)


def _id_prefix(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.name.removesuffix(".txt"))


def import_tinystories(path: str | Path, out: str | Path, cfg: TinyStoriesImportConfig) -> dict[str, Any]:
    """Stream a TinyStories text file into `out/text.jsonl`; returns import.json's content."""
    path, out = absolute(path), absolute(out)
    if not path.is_file():
        raise StageError(f"{path}: no such file")
    fingerprint = import_fingerprint(IMPORTER, path, cfg)
    if claim_output_dir(out, IMPORTER, path, fingerprint):
        return completed_summary(out)

    read, found = ReadStats(), TextStats()
    prefix = _id_prefix(path)

    def rows() -> Iterator[dict[str, Any]]:
        with contextlib.closing(iter_story_chunks(path, read)) as chunks:
            for index, chunk in enumerate(chunks):
                text = " ".join(chunk.split())
                if not text:
                    found.empty += 1
                    continue
                story_id = f"{prefix}-{index:07d}"
                split = cfg.split or split_of(index, cfg.seed, cfg.split_fractions)
                found.add(story_id, text, split)
                yield TextRecord(story_id, text, "story", split).to_row()  # text.jsonl's schema: world/records.py
                if cfg.limit is not None and found.kept >= cfg.limit:
                    return
        if found.kept == 0:  # raised inside the writer, so no text.jsonl is left behind
            raise StageError(f"{path}: no stories found (empty file, or only {SEPARATOR} lines)")

    encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for millions of rows
    with removed_if_failed_empty(out):
        begin_import(out, IMPORTER, path)
        with atomic_file(out / TEXT, "wb") as handle:  # bytes: UTF-8 whatever the locale
            for row in rows():
                handle.write(encode(row).encode("utf-8") + b"\n")
    summary = {
        "importer": IMPORTER,
        "source": str(path),
        "stories": found.kept,
        "splits": {s: found.per_split[s] for s in SPLITS if s in found.per_split},
        "empty_stories_skipped": found.empty,
        "limit_reached": cfg.limit is not None and found.kept >= cfg.limit,
        "bytes_read": read.bytes_read,
        "invalid_utf8_bytes": read.invalid_utf8_bytes,
        "non_ascii": found.non_ascii.summary(),
        "control_characters": found.control.summary(),
    }
    finish_import(out, cfg, fingerprint, summary)
    if found.non_ascii.stories or found.control.stories:
        log.warning("non-ASCII characters in %d stories, control characters in %d; kept as they are (see %s)",
                    found.non_ascii.stories, found.control.stories, out / "import.json")
    log.info("imported %d stories (%d empty skipped) from %s into %s", found.kept, found.empty, path, out / TEXT)
    return summary
