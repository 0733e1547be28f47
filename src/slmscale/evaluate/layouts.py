"""Benchmark layouts on disk, read into one form: tasks of (positive, negative) trials.

A benchmark is data plus pairing rules (docs/PAPER.md §6.1): every file (or text) gets one
score, and a trial is won when its positive outscores its negative. What differs between
layouts is only how files are found and paired, always by explicit ids, never by file order:

- ZeroSpeech 2021 sLM21 tree (`lexical/<set>/`, `syntactic/<set>/`, each with gold.csv):
  lexical trials join on (voice, id); syntactic ones on (voice, type, subtype, id), since
  the official scorer's file-order pairing of sBLIMP only works when rows happen to line up.
- Spoken / topic StoryCloze folder (`<2k>_<storyId>_correct.wav`, `<2k+1>_<storyId>_incorrect.wav`):
  paired on storyId, as ZeroSyl does, not on consecutive file names as slamkit does.
- Pairs manifest (`*.jsonl` of audio): `id`, `positive`, `negative` (paths relative to the
  manifest), optional `type`, `subtype`, `voice`.
- Text pairs (a world's `benchmarks/*.jsonl`, for text-arm runs): `id`, `positive`, `negative`
  texts, `type`, `subtype` (and `frequency`, `length` for lexical items); the world's format,
  read by world/records.py.
- A collection: a folder whose children are benchmarks (a synthesized world's `benchmarks/`
  holds `zr2021/` and `storycloze/{sSC,tSC}`), read as all of them.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slmscale.audio.io import AUDIO_SUFFIXES
from slmscale.files import StageError, content_hash, read_jsonl_numbered
from slmscale.world.records import read_benchmark_lines

Modality = Literal["audio", "text"]
Kind = Literal["lexical", "syntactic", "storycloze", "pairs"]

LEXICAL_COLUMNS = ("filename", "voice", "frequency", "length", "correct", "id")
SYNTACTIC_COLUMNS = ("filename", "voice", "type", "subtype", "correct", "id")
ZR_SETS = ("dev", "test")
SLM21_TASKS = ("lexical", "syntactic")
"""The tasks of every sLM21 set: a submission has `<task>/<set>.txt` for each (docs/PAPER.md §6.4)."""
CLOZE_NAME = re.compile(r"^(\d+)_(.+)_(correct|incorrect)$")
TEXT_KINDS = {"lexical": "lexical", "syntax": "syntactic", "story_cloze": "storycloze", "topic_cloze": "storycloze"}
"""A world's benchmark file stem -> the kind of task it is."""


@dataclass(frozen=True)
class Trial:
    """One comparison: the positive should score higher than the negative."""
    pair: tuple[Any, ...]
    """The pair this trial belongs to; trials of one pair (its voices) are averaged first."""
    voice: str
    positive: str
    """Key of the positive input (a file stem, a manifest path, or "<item id>/positive")."""
    negative: str


@dataclass
class Task:
    """One scored set of pairs, e.g. sLM21 lexical/dev or a StoryCloze folder."""
    name: str
    """Unique within its benchmark: "lexical/dev", "syntactic/test", "sSC", a manifest stem."""
    kind: Kind
    trials: list[Trial]
    pair_attrs: dict[tuple[Any, ...], dict[str, Any]]
    """Per pair: `type`, `subtype` and, for lexical, `frequency` (0 = out of vocabulary) and `length`."""
    inputs: dict[str, str]
    """Input key -> an absolute audio path, or (text pairs) the text itself."""
    set: str = ""
    """"dev" / "test" for sLM21 tasks."""
    source: str = ""
    """The folder (sLM21, StoryCloze) or jsonl file (pairs) the task was read from, absolute."""
    units_dir: str = ""
    """A units dir `slmscale tokenize` made of `source` (units_benchmark.py), read for the inputs'
    units instead of tokenizing the audio; "" = tokenize through the cache (inputs.py)."""


@dataclass
class Benchmark:
    name: str
    path: str
    layout: Literal["sLM21", "storycloze", "pairs", "text"]
    tasks: list[Task] = field(default_factory=list)
    files: int = 0
    content_hash: str = ""
    """sha256 (16 hex) of the index files' bytes and every audio file's relative path and size."""


def _check_columns(path: Path, header: list[str] | None, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in (header or [])]
    if missing:
        raise StageError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(header or [])})")


def _flag(value: str, where: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "1.0"):
        return True
    if text in ("0", "false", "0.0"):
        return False
    raise StageError(f"{where}: correct={value!r} is not 1 or 0")


def _number(value: str, where: str, name: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise StageError(f"{where}: {name}={value!r} is not a number") from None


def _join_sides(rows: dict[tuple[Any, ...], dict[bool, str]], where: Path) -> list[tuple[tuple[Any, ...], str, str]]:
    """(key, positive, negative) for every key that has exactly one file of each side."""
    joined = []
    for key, sides in rows.items():
        if set(sides) != {True, False}:
            missing = "negative (correct=0)" if True in sides else "positive (correct=1)"
            raise StageError(f"{where}: trial {key} has no {missing} file")
        joined.append((key, sides[True], sides[False]))
    return joined


def read_zr_task(folder: Path, task: Literal["lexical", "syntactic"], set_name: str) -> Task:
    """One sLM21 folder with its gold.csv; every listed file must exist."""
    gold = folder / "gold.csv"
    audio = {p.stem: p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES}
    required = LEXICAL_COLUMNS if task == "lexical" else SYNTACTIC_COLUMNS
    sides: dict[tuple[Any, ...], dict[bool, str]] = {}
    attrs: dict[tuple[Any, ...], dict[str, Any]] = {}
    seen: set[str] = set()
    with gold.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        _check_columns(gold, reader.fieldnames, required)
        for line, row in enumerate(reader, start=2):
            where = f"{gold}:{line}"
            stem = row["filename"].strip()
            if stem.endswith(".wav"):
                stem = stem[:-4]
            if stem in seen:
                raise StageError(f"{where}: file {stem!r} is listed twice")
            seen.add(stem)
            if stem not in audio:
                raise StageError(f"{where}: no audio file {stem}.wav in {folder}")
            correct = _flag(row["correct"], where)
            pair = ((row["id"].strip(),) if task == "lexical"
                    else (row["type"].strip(), row["subtype"].strip(), row["id"].strip()))
            trial = (row["voice"].strip(), *pair)
            if correct in sides.setdefault(trial, {}):
                raise StageError(f"{where}: trial (voice, {'id' if task == 'lexical' else 'type, subtype, id'}) "
                                 f"{trial} has two files with correct={int(correct)}")
            sides[trial][correct] = stem
            if task == "syntactic":
                attrs.setdefault(pair, {"type": pair[0], "subtype": pair[1]})
            elif correct:  # a lexical pair is described by its word, not its nonword
                attrs[pair] = {"type": "lexical", "frequency": _number(row["frequency"], where, "frequency"),
                               "length": _number(row["length"], where, "length")}
    if not sides:
        raise StageError(f"{gold}: no rows")
    trials = [Trial(key[1:], key[0], pos, neg) for key, pos, neg in _join_sides(sides, gold)]
    used = {stem for t in trials for stem in (t.positive, t.negative)}
    return Task(f"{task}/{set_name}", task, trials, attrs, {s: str(audio[s].resolve()) for s in sorted(used)},
                set=set_name, source=str(folder.resolve()))


def read_cloze_folder(folder: Path) -> Task:
    """A flat StoryCloze folder; pairs join on storyId."""
    sides: dict[tuple[Any, ...], dict[bool, str]] = {}
    inputs = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES):
        match = CLOZE_NAME.match(path.stem)
        if not match:
            raise StageError(f"{path}: not a StoryCloze file name (<k>_<storyId>_correct|incorrect.wav)")
        correct = match.group(3) == "correct"
        key = (match.group(2),)
        if correct in sides.setdefault(key, {}):
            raise StageError(f"{path}: story {key[0]!r} has a second {match.group(3)} file "
                             f"({sides[key][correct]}.wav)")
        sides[key][correct] = path.stem
        inputs[path.stem] = str(path.resolve())
    trials = [Trial(key, "", pos, neg) for key, pos, neg in _join_sides(sides, folder)]
    return Task(folder.name, "storycloze", trials, {t.pair: {} for t in trials}, inputs, source=str(folder.resolve()))


def _manifest_rows(path: Path, modality: Modality) -> list[tuple[str, dict[str, Any]]]:
    """(file:line, row) of a pairs file. Text pairs are a world's benchmark format, read and checked
    by the world's reader (any file name); an audio pairs manifest is this module's own format, whose
    ids repeat across voices."""
    if modality == "text":
        rows = [(f"{path}:{number}", item) for number, item in read_benchmark_lines(path, strict=False)]
    else:
        rows = []
        for number, row in read_jsonl_numbered(path):
            for key in ("id", "positive", "negative"):
                if not isinstance(row.get(key), str) or not row[key]:
                    raise StageError(f"{path}:{number}: missing or empty string key {key!r}")
            rows.append((f"{path}:{number}", row))
    if not rows:
        raise StageError(f"{path}: no pairs")
    return rows


def read_pairs_file(path: Path, modality: Modality) -> Task:
    """A jsonl of pairs: audio paths (a pairs manifest) or texts (a world's benchmark file)."""
    trials, attrs, inputs = [], {}, {}
    seen: dict[tuple[str, str], str] = {}
    for where, row in _manifest_rows(path, modality):
        voice = str(row.get("voice", ""))
        if (row["id"], voice) in seen:
            raise StageError(f"{where}: pair id {row['id']!r}{' voice ' + voice if voice else ''} "
                             f"already at {seen[row['id'], voice]}")
        seen[row["id"], voice] = where
        keys = []
        for side in ("positive", "negative"):
            if modality == "text":
                key = f"{row['id']}/{side}"  # the ids `units.text_units.encode_benchmark` writes
                inputs[key] = row[side]
            else:
                audio = (path.parent / row[side]).resolve()
                if not audio.is_file():
                    raise StageError(f"{where}: {side} file {row[side]!r} not found ({audio})")
                key = row[side]
                inputs[key] = str(audio)
            keys.append(key)
        pair = (row["id"],)
        trials.append(Trial(pair, voice, keys[0], keys[1]))
        info = {"type": str(row.get("type", "")), "subtype": str(row.get("subtype", ""))}
        for name in ("frequency", "length"):
            if name in row:
                info[name] = _number(str(row[name]), where, name)
        attrs[pair] = info
    kind: Kind = TEXT_KINDS.get(path.stem, "pairs") if modality == "text" else "pairs"
    if kind == "lexical" and not all("frequency" in a and "length" in a for a in attrs.values()):
        kind = "pairs"  # without frequencies there are no bands to report
    return Task(path.stem, kind, trials, attrs, inputs, source=str(path.resolve()))


def _is_zr_tree(path: Path) -> bool:
    return any((path / task / s / "gold.csv").is_file() for task in SLM21_TASKS for s in ZR_SETS)


def _is_cloze_folder(path: Path) -> bool:
    return any(p.suffix.lower() in AUDIO_SUFFIXES and CLOZE_NAME.match(p.stem) for p in path.glob("*_*correct.*"))


def _fingerprint(bench: Benchmark, index_files: list[Path]) -> None:
    """Count the inputs and hash what identifies the benchmark's content cheaply: the index
    files' bytes plus each audio file's path (relative to the benchmark) and size; reading
    the 20k+ wavs of sLM21 would take longer than scoring them."""
    root = Path(bench.path) if Path(bench.path).is_dir() else Path(bench.path).parent
    indexes = [f"{os.path.relpath(index, root)}\0".encode() + index.read_bytes() for index in sorted(set(index_files))]
    audio = sorted({Path(p) for t in bench.tasks for p in t.inputs.values()}) if bench.layout != "text" else []
    listing = [f"{os.path.relpath(path, root)}\0{path.stat().st_size}\n" for path in audio]
    bench.files = len(audio) if audio else sum(len(t.inputs) for t in bench.tasks)
    bench.content_hash = content_hash(*indexes, *listing)


def read_benchmark(path: str | Path, modality: Modality) -> list[Benchmark]:
    """The benchmark(s) at `path`: a layout above, or a collection of them."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: no such benchmark file or folder")
    if path.is_file():
        if path.suffix != ".jsonl":
            raise StageError(f"{path}: a benchmark file must be a .jsonl of pairs")
        bench = Benchmark(path.stem, str(path.resolve()), "text" if modality == "text" else "pairs",
                          [read_pairs_file(path, modality)])
        _fingerprint(bench, [path])
        return [bench]
    if modality == "text":
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise StageError(f"{path}: a text-arm run scores text pairs; this folder has no *.jsonl "
                             "(use the world's benchmarks/ folder)")
        bench = Benchmark(path.name, str(path.resolve()), "text", [read_pairs_file(f, "text") for f in files])
        _fingerprint(bench, files)
        return [bench]
    if _is_zr_tree(path):
        bench = Benchmark(path.name, str(path.resolve()), "sLM21")
        golds = []
        for task in SLM21_TASKS:
            for set_name in ZR_SETS:
                folder = path / task / set_name
                if (folder / "gold.csv").is_file():
                    bench.tasks.append(read_zr_task(folder, task, set_name))
                    golds.append(folder / "gold.csv")
        _fingerprint(bench, golds)
        return [bench]
    if _is_cloze_folder(path):
        bench = Benchmark(path.name, str(path.resolve()), "storycloze", [read_cloze_folder(path)])
        _fingerprint(bench, [])
        return [bench]
    children = [child for child in sorted(path.iterdir())
                if child.is_dir() and (_is_zr_tree(child) or _is_cloze_folder(child)
                                       or any(_is_cloze_folder(g) for g in child.iterdir() if g.is_dir()))]
    if not children:
        raise StageError(f"{path}: not a benchmark (no lexical|syntactic/<set>/gold.csv, no StoryCloze "
                         "<k>_<storyId>_(in)correct.wav files, and no such folders inside)")
    return [bench for child in children for bench in read_benchmark(child, modality)]
