"""The world's file formats (docs/DESIGN.md §4.1): `text.jsonl` and `benchmarks/*.jsonl`.

The world builder writes them with `write_text_records` and `write_benchmark`; synth, the
text arm (tokenize-text) and the evaluator of text-arm runs read them with `read_text_records`
and `read_benchmark`. Writer and reader apply the same checks, so a generator bug cannot write
a file that the next stage refuses, and every problem with a hand-made or edited file is one
line naming the file, the line and the key.

`strict` (the default) is the world's own format, what synth speaks: every key of the format
is required. The text arm also reads text.jsonl files made by hand or by another tool, and
benchmark files of any name, so with `strict=False` only the keys it uses are required (`id`,
`text`, `split`; `id`, `positive`, `negative`); any other key of the format that is present
must still be valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmscale.audio.manifest import SPLITS  # a record's split becomes its utterance's
from slmscale.audio.phonemes import PhonemeError, parse_arpabet
from slmscale.files import StageError, read_jsonl_numbered, write_jsonl

TEXT_FILE = "text.jsonl"
BENCHMARK_DIR = "benchmarks"
KINDS = ("story", "sentence")

# benchmark file -> (required string keys, required integer keys)
_PAIR = ("id", "positive", "negative", "type", "subtype")
BENCHMARK_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "syntax.jsonl": (_PAIR, ()),
    "lexical.jsonl": (_PAIR + ("positive_phones", "negative_phones"), ("frequency", "length")),
    "story_cloze.jsonl": (_PAIR, ()),
    "topic_cloze.jsonl": (_PAIR, ()),
}
"""The benchmark files of a world, in the order the builder writes them, and the keys each line
must have (further keys, e.g. syntax's `form` or cloze's `prompt`, are kept as they are)."""
PAIR_KEYS = ("id", "positive", "negative")
"""What any text pairs file needs to be scored (strict=False)."""
_PHONES = ("positive_phones", "negative_phones")
_ALL_STRINGS = tuple(dict.fromkeys(k for strings, _ in BENCHMARK_FILES.values() for k in strings))
_ALL_INTEGERS = tuple(dict.fromkeys(k for _, integers in BENCHMARK_FILES.values() for k in integers))


@dataclass(frozen=True)
class TextRecord:
    """One line of text.jsonl."""
    id: str
    """Unique within the file: story-NNNNN, sentences-NNNNN (text-story-..., text-sentences-... text only)."""
    text: str
    kind: str
    """story or sentence ("" when a strict=False reader found none)."""
    split: str
    """train, valid or test."""
    spoken: bool = True
    """False for a world's text-only records (the text arm's extra text): synth skips them."""
    where: str = field(default="", compare=False, repr=False)
    """"file:line (id ...)" the record was read from, for later errors; not part of the format."""

    def to_row(self) -> dict[str, Any]:
        """The line's object; `spoken` is written only when false, so a world without text-only
        records has exactly the four keys its readers have always seen."""
        row: dict[str, Any] = {"id": self.id, "text": self.text, "kind": self.kind, "split": self.split}
        if not self.spoken:
            row["spoken"] = False
        return row


def _string(where: str, row: dict[str, Any], key: str) -> str:
    if key not in row:
        raise StageError(f"{where}: missing key {key!r}")
    value = row[key]
    if not isinstance(value, str):
        raise StageError(f"{where}: key {key!r} must be a string, got {value!r}")
    if not value.strip():
        raise StageError(f"{where}: key {key!r} is empty")
    return value


def _integer(where: str, row: dict[str, Any], key: str) -> int:
    if key not in row:
        raise StageError(f"{where}: missing key {key!r}")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StageError(f"{where}: key {key!r} must be a non-negative integer, got {value!r}")
    return value


def _one_of(where: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise StageError(f"{where}: key {key!r} is {value!r}, not one of {', '.join(allowed)}")


def _check_unique(where: str, seen: dict[str, int], number: int, item_id: str) -> None:
    if item_id in seen:
        raise StageError(f"{where}: duplicate id {item_id!r} (first on line {seen[item_id]})")
    seen[item_id] = number


def _text_record(where: str, row: dict[str, Any], strict: bool) -> TextRecord:
    spoken = row.get("spoken", True)
    if not isinstance(spoken, bool):
        raise StageError(f"{where}: key 'spoken' must be true or false, got {spoken!r}")
    kind = _string(where, row, "kind") if strict or "kind" in row else ""
    record = TextRecord(_string(where, row, "id"), _string(where, row, "text"), kind,
                        _string(where, row, "split"), spoken)
    _one_of(where, "split", record.split, SPLITS)
    if kind:
        _one_of(where, "kind", kind, KINDS)
    return record


def _text_records(path: Path, rows: list[tuple[int, dict[str, Any]]], strict: bool) -> list[TextRecord]:
    records, seen = [], {}
    for number, row in rows:
        where = f"{path}:{number}"
        record = _text_record(where, row, strict)
        _check_unique(where, seen, number, record.id)
        records.append(TextRecord(record.id, record.text, record.kind, record.split, record.spoken,
                                  f"{where} (id {record.id!r})"))
    return records


def read_text_records(path: str | Path, strict: bool = True) -> list[TextRecord]:
    """text.jsonl's records in file order; an empty file or a bad line is a StageError."""
    path = Path(path)
    rows = read_jsonl_numbered(path)
    if not rows:
        raise StageError(f"{path}: no records (the file is empty)")
    return _text_records(path, rows, strict)


def write_text_records(path: str | Path, records: list[TextRecord]) -> Path:
    """Check the records as the reader would (line numbers are the lines they get) and write them atomically."""
    path = Path(path)
    if not records:
        raise StageError(f"{path}: no records to write")
    _text_records(path, [(n, r.to_row()) for n, r in enumerate(records, 1)], strict=True)
    write_jsonl(path, (r.to_row() for r in records))
    return path


def _item(where: str, name: str, row: dict[str, Any], strict: bool) -> dict[str, Any]:
    """The validated item: the line's object with its checked keys."""
    strings, integers = BENCHMARK_FILES[name] if strict else (PAIR_KEYS, ())
    item = dict(row)
    for key in strings + tuple(k for k in _ALL_STRINGS if k not in strings and k in row):
        item[key] = _string(where, row, key)
    for key in integers + tuple(k for k in _ALL_INTEGERS if k not in integers and k in row):
        item[key] = _integer(where, row, key)
    for key in _PHONES:
        if key in item:
            try:
                parse_arpabet(item[key])
            except PhonemeError as err:
                raise StageError(f"{where}: key {key!r}: {err}") from None
    return item


def _benchmark_items(path: Path, rows: list[tuple[int, dict[str, Any]]],
                     strict: bool) -> list[tuple[int, dict[str, Any]]]:
    if strict and path.name not in BENCHMARK_FILES:
        raise StageError(f"{path}: not a world benchmark file (one of {', '.join(BENCHMARK_FILES)})")
    items, seen = [], {}
    for number, row in rows:
        where = f"{path}:{number}"
        item = _item(where, path.name, row, strict)
        _check_unique(where, seen, number, item["id"])
        items.append((number, item))
    return items


def read_benchmark_lines(path: str | Path, strict: bool = True) -> list[tuple[int, dict[str, Any]]]:
    """(line number, item) for each item of a benchmark file, in file order. An empty file is
    no error: a world may be made without items of a kind (e.g. lexical_nonwords_per_word 0)."""
    path = Path(path)
    return _benchmark_items(path, read_jsonl_numbered(path), strict)


def read_benchmark(path: str | Path, strict: bool = True) -> list[dict[str, Any]]:
    """A benchmark file's items in file order (see `read_benchmark_lines`)."""
    return [item for _, item in read_benchmark_lines(path, strict)]


def write_benchmark(path: str | Path, items: list[dict[str, Any]]) -> Path:
    """Check the items as the reader would and write them atomically, keys in the items' order."""
    path = Path(path)
    _benchmark_items(path, list(enumerate(items, 1)), strict=True)
    write_jsonl(path, items)
    return path
