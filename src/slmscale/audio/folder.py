"""Import any folder of audio files as a corpus dir (every file converted to 16 kHz mono wav).

Every file under the source whose suffix is in `AUDIO_SUFFIXES` is an utterance
(hidden files and folders are ignored). Its id is its path relative to the
source without the suffix, folders joined by `-` and characters other than
letters, digits, `.`, `_`, `-` replaced by `_` (a clash gets `-2`, `-3`, … in
path order). Its speaker is the name of the folder holding it (the source's own
name for files directly inside it). Its text comes from the transcripts file, or
else a sibling `.txt` or `.lab` file with the same stem, or else is "" (allowed:
such a corpus can still be tokenized and trained on).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from slmscale.audio.config import FolderImportConfig
from slmscale.audio.import_audio import AudioImport, SourceItem, import_audio_items
from slmscale.audio.import_common import (
    EXAMPLES, Problem, absolute, claim_output_dir, completed_summary, import_fingerprint,
)
from slmscale.audio.io import AUDIO_SUFFIXES
from slmscale.files import StageError

IMPORTER = "folder"
TRANSCRIPT_SUFFIXES = (".txt", ".lab")


def list_files(src: Path) -> list[Path]:
    """Every non-hidden file under `src`, following folder links once each, in path order."""
    found, visited = [], set()
    for folder, dirs, files in os.walk(src, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link back up the tree
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in files if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(src).as_posix())


def utterance_ids(relative: list[Path]) -> list[str]:
    """Readable ids from relative paths, unique (clashes numbered in path order)."""
    bases = ["-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in rel.with_suffix("").parts)
             for rel in relative]
    taken = set(bases)
    count: dict[str, int] = {}
    ids = []
    for base in bases:
        count[base] = count.get(base, 0) + 1
        if count[base] == 1:
            ids.append(base)
            continue
        n = count[base]
        while f"{base}-{n}" in taken:
            n += 1
        taken.add(f"{base}-{n}")
        ids.append(f"{base}-{n}")
    return ids


def read_transcripts(path: Path) -> tuple[dict[str, tuple[str, str]], list[Problem]]:
    """`{key: (text, "file:line")}` from a transcripts file, and the problems in it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise StageError(f"cannot read transcripts file {path}: {err}") from err
    entries: dict[str, tuple[str, str]] = {}
    problems = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, *rest = line.strip().split(maxsplit=1)
        key = key.removeprefix("./")
        if key in entries:
            problems.append(Problem(f"{path}:{number}", f"a second transcript for {key} "
                                                        f"(first at {entries[key][1]})"))
            continue
        entries[key] = (" ".join(rest[0].split()) if rest else "", f"{path}:{number}")
    return entries, problems


def _sibling_text(audio: Path) -> tuple[str, Problem | None]:
    for suffix in TRANSCRIPT_SUFFIXES:
        candidate = audio.with_suffix(suffix)
        if candidate.is_file():
            try:
                return " ".join(candidate.read_text(encoding="utf-8").split()), None
            except (OSError, UnicodeDecodeError) as err:
                return "", Problem(str(candidate), f"transcript not readable as UTF-8 text ({err})")
    return "", None


def scan_folder(src: Path, cfg: FolderImportConfig) -> tuple[list[SourceItem], list[Problem], dict[str, Any]]:
    """Every audio file under `src` as an utterance, the problems found, and what was ignored."""
    if not src.is_dir():
        raise StageError(f"{src}: no such directory")
    files = list_files(src)
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    relative = [p.relative_to(src) for p in audio]
    entries, problems = read_transcripts(cfg.transcripts) if cfg.transcripts else ({}, [])
    used: set[str] = set()
    items = []
    for path, rel, uid in zip(audio, relative, utterance_ids(relative)):
        key = next((k for k in (rel.as_posix(), rel.with_suffix("").as_posix()) if k in entries), None)
        if key is not None:
            used.add(key)
            text = entries[key][0]
        else:
            text, problem = _sibling_text(path)
            if problem is not None:
                problems.append(problem)
                continue
        speaker = rel.parent.name or src.name
        items.append(SourceItem(uid, absolute(path), speaker, cfg.split, text))
    problems += [Problem(where, f"transcript for {key}, which matches no audio file under {src}")
                 for key, (_, where) in entries.items() if key not in used]
    transcript_files = {p.with_suffix(s) for p in audio for s in TRANSCRIPT_SUFFIXES}
    ignored = [p for p in files if p.suffix.lower() not in AUDIO_SUFFIXES and p not in transcript_files]
    extra = {"split": cfg.split,
             "ignored_files": {"count": len(ignored), "examples": [str(p) for p in ignored[:EXAMPLES]]}}
    return items, problems, extra


def import_folder(src: str | Path, out: str | Path, cfg: FolderImportConfig) -> dict[str, Any]:
    """Import every audio file under `src` into the corpus dir `out`; returns import.json's content."""
    src, out = absolute(src), absolute(out)
    if cfg.transcripts is not None and not cfg.transcripts.is_file():
        raise StageError(f"transcripts file {cfg.transcripts} does not exist")
    if out == src or src in out.parents:
        raise StageError(f"--out {out} is inside the source {src}; its wavs would be imported next time")
    fingerprint = import_fingerprint(IMPORTER, src, cfg)
    if claim_output_dir(out, IMPORTER, src, fingerprint):
        return completed_summary(out)
    items, problems, extra = scan_folder(src, cfg)
    if not items and not problems:
        raise StageError(f"{src}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    job = AudioImport(IMPORTER, src, out, cfg, fingerprint, in_place=False, verify_in_place=False,
                      skip_bad=cfg.skip_bad, workers=cfg.workers, extra=extra)
    return import_audio_items(job, items, problems)
