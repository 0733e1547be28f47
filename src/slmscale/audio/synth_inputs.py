"""Reading and validating what `slmscale synth` speaks: a text.jsonl and a world's benchmarks.

Every problem is found before anything is written, and reported with the file, the line
and the key: a missing or empty field, an unknown split or kind, a duplicate id, a
lexical item whose phones are not ARPAbet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmscale.audio.manifest import SPLITS
from slmscale.audio.phonemes import PhonemeError, parse_arpabet
from slmscale.files import StageError, read_jsonl_numbered

KINDS = ("story", "sentence")
TEXT_FILE = "text.jsonl"
BENCHMARK_DIR = "benchmarks"

# benchmark file -> (required string fields, required integer fields)
_PAIR = ("id", "positive", "negative", "type", "subtype")
BENCHMARK_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "syntax.jsonl": (_PAIR, ()),
    "lexical.jsonl": (_PAIR + ("positive_phones", "negative_phones"), ("frequency", "length")),
    "story_cloze.jsonl": (_PAIR, ()),
    "topic_cloze.jsonl": (_PAIR, ()),
}
"""The benchmark files of a world and the keys each line must have."""


@dataclass(frozen=True)
class TextRecord:
    id: str
    text: str
    kind: str
    split: str
    spoken: bool = True
    """False for a world's text-only records (the text arm's extra text): synth skips them."""


@dataclass(frozen=True)
class SynthInput:
    source: Path
    """The INPUT as given: a world dir or a text.jsonl."""
    records: list[TextRecord]
    """The text records, in file order."""
    benchmarks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Benchmark file name (e.g. "lexical.jsonl") -> its validated items, in file order."""
    sha256: str = ""
    """Hash of the content of every file read, for the output's fingerprint."""


def _lines(path: Path, allow_empty: bool = False) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; an empty file is an error unless allowed."""
    rows = read_jsonl_numbered(path)
    if not rows and not allow_empty:
        raise StageError(f"{path}: no records (the file is empty)")
    return rows


def _string(path: Path, number: int, row: dict[str, Any], key: str) -> str:
    if key not in row:
        raise StageError(f"{path}:{number}: missing key {key!r}")
    value = row[key]
    if not isinstance(value, str):
        raise StageError(f"{path}:{number}: key {key!r} must be a string, got {value!r}")
    if not value.strip():
        raise StageError(f"{path}:{number}: key {key!r} is empty")
    return value


def _integer(path: Path, number: int, row: dict[str, Any], key: str) -> int:
    if key not in row:
        raise StageError(f"{path}:{number}: missing key {key!r}")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StageError(f"{path}:{number}: key {key!r} must be a non-negative integer, got {value!r}")
    return value


def _check_unique(path: Path, seen: dict[str, int], number: int, item_id: str) -> None:
    if item_id in seen:
        raise StageError(f"{path}:{number}: duplicate id {item_id!r} (first on line {seen[item_id]})")
    seen[item_id] = number


def read_text_records(path: Path) -> list[TextRecord]:
    records, seen = [], {}
    for number, row in _lines(path):
        spoken = row.get("spoken", True)
        if not isinstance(spoken, bool):
            raise StageError(f"{path}:{number}: key 'spoken' must be true or false, got {spoken!r}")
        record = TextRecord(*(_string(path, number, row, key) for key in ("id", "text", "kind", "split")), spoken)
        if record.split not in SPLITS:
            raise StageError(f"{path}:{number}: key 'split' is {record.split!r}, not one of {', '.join(SPLITS)}")
        if record.kind not in KINDS:
            raise StageError(f"{path}:{number}: key 'kind' is {record.kind!r}, not one of {', '.join(KINDS)}")
        _check_unique(path, seen, number, record.id)
        records.append(record)
    return records


def read_benchmark(path: Path) -> list[dict[str, Any]]:
    strings, integers = BENCHMARK_FILES[path.name]
    items, seen = [], {}
    # A benchmark may legitimately be empty (e.g. a world made without lexical items).
    for number, row in _lines(path, allow_empty=True):
        item = dict(row)
        for key in strings:
            item[key] = _string(path, number, row, key)
        for key in integers:
            item[key] = _integer(path, number, row, key)
        for key in ("positive_phones", "negative_phones"):
            if key in strings:
                try:
                    parse_arpabet(item[key])
                except PhonemeError as err:
                    raise StageError(f"{path}:{number}: key {key!r}: {err}") from None
        _check_unique(path, seen, number, item["id"])
        items.append(item)
    return items


def read_input(source: str | Path, with_benchmarks: bool = True) -> SynthInput:
    """Read INPUT (a world dir, a dir with a text.jsonl, or a .jsonl file) and validate it."""
    source = Path(source)
    if source.is_dir():
        text_path = source / TEXT_FILE
        if not text_path.is_file():
            raise StageError(f"{source}: no {TEXT_FILE} (expected a world dir or a text.jsonl file)")
    elif source.is_file():
        text_path = source
    else:
        raise StageError(f"{source}: no such file or directory")
    digest = hashlib.sha256()
    digest.update(text_path.read_bytes())
    records = read_text_records(text_path)
    benchmarks: dict[str, list[dict[str, Any]]] = {}
    bench_dir = source / BENCHMARK_DIR
    if with_benchmarks and source.is_dir() and bench_dir.is_dir():
        for name in BENCHMARK_FILES:
            path = bench_dir / name
            if path.is_file():
                digest.update(f"\0{name}\0".encode())
                digest.update(path.read_bytes())
                benchmarks[name] = read_benchmark(path)
    return SynthInput(source, records, benchmarks, digest.hexdigest())
