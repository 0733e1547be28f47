"""What every corpus importer shares: problem reports and the output directory.

An importer validates its whole input before it writes: it collects every
problem (a file and what is wrong with it), then either fails with one report
naming them all or, with `--skip-bad`, leaves those items out and lists them in
`import.json`. Its output directory ends with `config.yaml` (the resolved
options), `import.json` (what was imported and what was found) and the
`.completed` marker, written last.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slmscale.audio.manifest import MANIFEST
from slmscale.config import to_dict
from slmscale.files import (MARKER, StageError, check_output_dir, content_hash, mark_completed, read_json,
                            read_json_object, write_json, write_text)
from slmscale.log import get_logger

SUMMARY = "import.json"
CONFIG = "config.yaml"
IN_PROGRESS = ".importing"
"""Names an unfinished import's importer and source, so a rerun may resume into the directory."""

EXAMPLES = 5
"""How many example files `import.json` lists for each kind of conversion."""

log = get_logger(__name__)


@dataclass(frozen=True)
class Problem:
    path: str
    """The file (or `file:line`) at fault."""
    problem: str
    """What is wrong with it, in words."""


def problem_report(source: str | Path, problems: list[Problem], items: str,
                   outcome: str = "nothing was imported") -> str:
    """One message naming every bad file, for a StageError."""
    lines = [f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {source}; {outcome}:"]
    lines += [f"  {p.path}: {p.problem}" for p in sorted_problems(problems)]
    lines.append(f"fix them, or pass --skip-bad to leave these {items} out (they are then listed in {SUMMARY})")
    return "\n".join(lines)


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    """By file, so that the problems of one folder (one LibriSpeech chapter) stand together."""
    def order(p: Problem) -> tuple[str, str, int]:
        file, _, line = p.path.rpartition(":")
        if not line.isdigit():
            file, line = p.path, "0"
        return os.path.dirname(file), file, int(line)
    return sorted(problems, key=order)


def log_skipped(problems: list[Problem]) -> None:
    for p in sorted_problems(problems):
        log.warning("skipped %s: %s", p.path, p.problem)


def import_fingerprint(importer: str, source: Path, cfg: Any) -> str:
    """The config fingerprint, extended with what is imported from where."""
    record = {"importer": importer, "source": str(source), "config": to_dict(cfg)}
    return content_hash(json.dumps(record, sort_keys=True))


def absolute(path: str | Path) -> Path:
    """Absolute without resolving symlinks: the path the user sees is the one recorded."""
    return Path(os.path.abspath(os.fspath(path)))


def _owner(directory: Path) -> dict[str, Any] | None:
    """The importer and source recorded by an earlier (finished or not) import into `directory`."""
    for name in (IN_PROGRESS, SUMMARY):
        record = read_json_object(directory / name)
        if "importer" in record and "source" in record:
            return record
    return None


def claim_output_dir(out: Path, importer: str, source: Path, fingerprint: str) -> bool:
    """Decide what an importer may do with `out`; True means it is already complete.

    A directory is usable when it does not exist, is empty, or holds an earlier
    import of the same source by the same importer (which a rerun resumes or
    replaces). Anything else is refused rather than mixed with or overwritten.
    """
    if out.exists() and not out.is_dir():
        raise StageError(f"--out {out} exists and is not a directory")
    if check_output_dir(out, fingerprint):
        return True
    if not out.exists() or not any(out.iterdir()):
        return False
    owner = _owner(out)
    if owner is None or owner["importer"] != importer or owner["source"] != str(source):
        found = f"an import of {owner['source']} by {owner['importer']}" if owner else "files of something else"
        raise StageError(f"--out {out} is not empty: it holds {found}; choose another --out or delete it")
    return False


def begin_import(out: Path, importer: str, source: Path) -> None:
    """Mark `out` as an unfinished import and drop the results of an earlier, unfinished one."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / IN_PROGRESS, {"importer": importer, "source": str(source)})
    for name in (MARKER, SUMMARY, CONFIG, MANIFEST):
        (out / name).unlink(missing_ok=True)


def finish_import(out: Path, cfg: Any, fingerprint: str, summary: dict[str, Any]) -> None:
    """Write the resolved config and the summary, then the marker, last of all."""
    write_text(out / CONFIG, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    write_json(out / SUMMARY, summary)
    mark_completed(out, fingerprint, importer=summary["importer"], source=summary["source"])
    (out / IN_PROGRESS).unlink(missing_ok=True)


def completed_summary(out: Path) -> dict[str, Any]:
    log.info("%s is already complete with these options; skipping (delete it to import again)", out)
    return read_json(out / SUMMARY)


@contextlib.contextmanager
def removed_if_failed_empty(out: Path) -> Iterator[None]:
    """A failed import that created `out` and wrote nothing there leaves no trace of it."""
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed and out.is_dir():
            leftovers = [p for p in out.iterdir() if p.name != IN_PROGRESS]
            if not leftovers:
                shutil.rmtree(out, ignore_errors=True)
        raise
