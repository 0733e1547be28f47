"""Import LibriSpeech (one subset folder, or the folder of several) as a corpus dir.

Layout: `<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`, with the
chapter's transcripts in `<speaker>-<chapter>.trans.txt`, one line per utterance:
the utterance id, a space, the transcript in capitals. Utterance ids and speaker
ids are LibriSpeech's own; transcripts are kept exactly as released (capitals,
no punctuation) so that they match every published LibriSpeech result.
Subsets map to splits by name: `train-*` → train, `dev-*` → valid,
`test-*` → test. Files already 16 kHz mono (all of a real LibriSpeech) are
referenced in place by absolute path — the full corpus is hundreds of GB — unless
`copy` asks for wavs inside the corpus dir; any other file is converted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from slmscale.audio.config import LibriSpeechImportConfig
from slmscale.audio.import_audio import AudioImport, SourceItem, import_audio_items
from slmscale.audio.import_common import (
    Problem, absolute, claim_output_dir, completed_summary, import_fingerprint,
)
from slmscale.audio.io import AUDIO_SUFFIXES
from slmscale.files import StageError

IMPORTER = "librispeech"
SUBSET_SPLITS = (("train-", "train"), ("dev-", "valid"), ("test-", "test"))
"""Subset name prefix → split; the official subsets are train-clean-100/360, train-other-500,
dev-clean/other and test-clean/other."""


def split_of_subset(name: str) -> str | None:
    return next((split for prefix, split in SUBSET_SPLITS if name.startswith(prefix)), None)


def _digit_dirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))


def find_subsets(root: Path, forced_split: str | None) -> list[tuple[Path, str]]:
    """The subset folders under `root` (or `root` itself) with the split each goes to."""
    if not root.is_dir():
        raise StageError(f"{root}: no such directory")
    if _digit_dirs(root):
        split = forced_split or split_of_subset(root.name)
        if split is None:
            raise StageError(f"{root}: cannot tell the split of subset {root.name!r} from its name "
                             "(train-*, dev-*, test-*); pass --split train|valid|test")
        return [(root, split)]
    subsets = sorted(d for d in root.iterdir() if d.is_dir() and split_of_subset(d.name))
    if not subsets:
        raise StageError(f"{root}: neither a LibriSpeech subset (speaker folders such as 19/198/19-198-0001.flac) "
                         "nor a LibriSpeech folder holding train-*, dev-* or test-* subsets")
    if forced_split:
        raise StageError(f"--split forces the split of a single subset, but {root} holds {len(subsets)} "
                         f"({', '.join(d.name for d in subsets)}); import that subset's folder instead")
    return [(d, split_of_subset(d.name) or "") for d in subsets]


def scan_chapter(chapter: Path, speaker: str, split: str) -> tuple[list[SourceItem], list[Problem]]:
    """The utterances of one chapter folder that have both audio and a transcript."""
    prefix = f"{speaker}-{chapter.name}"
    utt_id = re.compile(rf"{re.escape(prefix)}-\d+")
    problems: list[Problem] = []
    audio: dict[str, Path] = {}
    for path in sorted(chapter.iterdir()):
        if not path.is_file() or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if not utt_id.fullmatch(path.stem):
            problems.append(Problem(str(path), f"not named as an utterance of chapter {prefix} "
                                               f"({prefix}-NNNN{path.suffix})"))
        elif path.stem in audio:
            problems.append(Problem(str(path), f"a second audio file for {path.stem} "
                                               f"(besides {audio[path.stem].name})"))
        else:
            audio[path.stem] = path

    trans = chapter / f"{prefix}.trans.txt"
    if not trans.is_file():
        if audio:
            problems += [Problem(str(p), f"no transcript: {trans.name} is missing") for p in audio.values()]
        return [], problems
    try:
        lines = trans.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        problems.append(Problem(str(trans), f"cannot read transcripts ({err})"))
        return [], problems + [Problem(str(p), f"no transcript: {trans.name} is unreadable") for p in audio.values()]

    texts: dict[str, str] = {}
    unusable: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        uid, *rest = line.strip().split(maxsplit=1)
        text = rest[0].strip() if rest else ""
        where = f"{trans}:{number}"
        if not utt_id.fullmatch(uid):
            problems.append(Problem(where, f"{uid!r} is not an utterance id of chapter {prefix}"))
        elif uid in texts or uid in unusable:
            problems.append(Problem(where, f"a second transcript line for {uid}"))
        elif uid not in audio:
            problems.append(Problem(where, f"transcript for {uid}, which has no audio file"))
        elif not text:
            problems.append(Problem(where, f"empty transcript for {uid} ({audio[uid]})"))
            unusable.add(uid)
        else:
            texts[uid] = text
    items = []
    for uid, path in audio.items():
        if uid in texts:
            items.append(SourceItem(uid, absolute(path), speaker, split, texts[uid]))
        elif uid not in unusable:
            problems.append(Problem(str(path), f"no transcript line for {uid} in {trans.name}"))
    return items, problems


def scan_librispeech(root: Path, forced_split: str | None) -> tuple[list[SourceItem], list[Problem], dict[str, str]]:
    """Every utterance under `root`, the problems found, and the subsets with their splits."""
    subsets = find_subsets(root, forced_split)
    items: list[SourceItem] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for subset, split in subsets:
        for speaker in _digit_dirs(subset):
            for chapter in _digit_dirs(speaker):
                found, bad = scan_chapter(chapter, speaker.name, split)
                problems += bad
                for item in found:
                    if item.id in seen:
                        problems.append(Problem(str(item.source), f"utterance id {item.id} also in {seen[item.id]}"))
                    else:
                        seen[item.id] = item.source
                        items.append(item)
    return items, problems, {subset.name: split for subset, split in subsets}


def import_librispeech(root: str | Path, out: str | Path, cfg: LibriSpeechImportConfig) -> dict[str, Any]:
    """Import the LibriSpeech subset(s) under `root` into the corpus dir `out`; returns import.json's content."""
    root, out = absolute(root), absolute(out)
    if out == root or root in out.parents:
        raise StageError(f"--out {out} is inside the source {root}; choose a folder outside it")
    fingerprint = import_fingerprint(IMPORTER, root, cfg)
    if claim_output_dir(out, IMPORTER, root, fingerprint):
        return completed_summary(out)
    items, problems, subsets = scan_librispeech(root, cfg.split)
    if not items and not problems:
        raise StageError(f"{root}: no LibriSpeech utterances found (expected "
                         "<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac with a .trans.txt beside)")
    job = AudioImport(IMPORTER, root, out, cfg, fingerprint, in_place=not cfg.copy,
                      verify_in_place=cfg.verify_in_place, skip_bad=cfg.skip_bad, workers=cfg.workers,
                      extra={"subsets": subsets})
    return import_audio_items(job, items, problems)
