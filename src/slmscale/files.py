"""Atomic outputs, `.completed` markers and content hashes, shared by every stage.

A stage never leaves a half-written output: files and directories are written
under a temporary name beside their destination and renamed when complete
(rename is atomic within a filesystem). A directory stage drops a `.completed`
marker holding its config fingerprint last, so a rerun skips finished work and
refuses to mix outputs of two different configs (lhotse-style). Fingerprints and
content stamps are `content_hash`es (16 hex digits of a sha256), spelt in one place.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MARKER = ".completed"

# mkstemp/mkdtemp create private (0600/0700) entries; outputs should get the
# permissions an ordinary open() would give them, so read the process umask once.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


class StageError(RuntimeError):
    """A stage refused its inputs or its output directory; the message says why."""


class DifferentConfig(StageError):
    """A stage's output directory holds a completed output of another config (`check_output_dir`).
    A study moves it aside and redoes the stage; a stage run alone refuses."""

    def __init__(self, message: str, directory: Path) -> None:
        super().__init__(message)
        self.directory = directory


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def temporary_path(path: str | Path) -> Path:
    """A fresh unique name beside `path`, for writers that want a file name (e.g. soundfile)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, FILE_MODE)
    return Path(tmp)


def ordinary_permissions(path: str | Path) -> Path:
    """Give a file written by a library that creates it private (safetensors writes 0600) the
    permissions of every other output (0644 under the usual umask); returns the path."""
    os.chmod(path, FILE_MODE)
    return Path(path)


def _owner() -> str:
    """Who builds a temporary directory: this host and process, so that a later run can tell the
    leftovers of a dead process (killed, so no cleanup ran) from a live one's work in progress."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary directories of `path` that a process of this host left when it died
    (`atomic_dir` names them `.<name>.<host>-<pid>.<random>.tmp`); returns what it removed.
    Another host's are left alone: its processes cannot be checked from here."""
    path = Path(path)
    prefix, host = f".{path.name}.", socket.gethostname()
    removed = []
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        owner = candidate.name[len(prefix):-len(".tmp")].rsplit(".", 1)[0]
        owner_host, _, pid = owner.rpartition("-")
        if candidate.is_dir() and owner_host == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name; it replaces `path` only on success. What a killed
    run of this host left under such a name is deleted first (`remove_dead_temporaries`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_file(path) as handle:
        handle.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line atomically; returns the number of rows."""
    count = 0
    with atomic_file(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_json(path: str | Path, hint: str = "") -> Any:
    """A JSON file's content; malformed JSON is a StageError naming the file (and `hint`)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise StageError(f"{path}: not valid JSON ({err.msg}){hint}") from err


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON object file's content, {} when it is absent, unreadable, malformed or not an object:
    for records read best-effort (a run.json being written, provenance of an input dir)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_csv_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows (column -> cell) of a CSV file with a header line."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def read_jsonl_numbered(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file.

    Line numbers count blank lines too, so an error points at the right line; a
    malformed line is a StageError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise StageError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from err
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise StageError(f"{path}:{number}: not valid JSON ({err.msg})") from err
        if not isinstance(row, dict):
            raise StageError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (see `read_jsonl_numbered`)."""
    return [row for _, row in read_jsonl_numbered(path)]


def content_hash(*parts: bytes | str) -> str:
    """The first 16 hex digits of the sha256 of `parts` concatenated (text as UTF-8, no separator
    added): the one form of every fingerprint and content stamp, so that a stage's identity reads the
    same wherever it is computed. A caller that needs boundaries between parts puts them in."""
    return content_hash_stream(parts)


def content_hash_stream(parts: Iterable[bytes | str]) -> str:
    """`content_hash` of the parts an iterable yields, hashed one at a time: for content too large to
    hold at once (a model's weight files, read block by block)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:16]


def read_marker(directory: str | Path) -> dict[str, Any] | None:
    """The `.completed` marker of `directory` (fingerprint and what the stage recorded with it), or
    None when it is absent, unreadable or not a JSON object: a marker being anything else means the
    stage did not finish, which is how every reader treats it."""
    try:
        data = json.loads((Path(directory) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_completed(directory: str | Path, fingerprint: str | None = None) -> bool:
    """True when `directory` holds a `.completed` marker (for `fingerprint`, if given)."""
    if fingerprint is None:
        return (Path(directory) / MARKER).is_file()
    marker = read_marker(directory)
    return marker is not None and marker.get("fingerprint") == fingerprint


def mark_completed(directory: str | Path, fingerprint: str, **info: Any) -> None:
    """Write the `.completed` marker last, once every output of the stage is in place."""
    write_json(Path(directory) / MARKER, {"fingerprint": fingerprint, **info})


def check_output_dir(directory: str | Path, fingerprint: str) -> bool:
    """Decide what a stage does with its output directory.

    Returns True when the stage is already complete with this config (skip it),
    False when it should run (fresh or resumable). A directory completed with a
    different config is an error rather than a silent mix of two outputs.
    """
    directory = Path(directory)
    marker = directory / MARKER
    if not marker.exists():
        return False
    if is_completed(directory, fingerprint):
        remove_dead_temporaries(directory)  # a killed rerun's leftovers go even when nothing reruns
        return True
    raise DifferentConfig(
        f"{directory} already holds a completed output made with a different config "
        f"(see {marker}); choose another --out or delete it", directory)
