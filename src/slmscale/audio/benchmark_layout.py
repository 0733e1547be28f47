"""The on-disk layouts of the spoken benchmarks (docs/PAPER.md §6.2, §6.3), planned and indexed.

`plan_benchmarks` turns a world's benchmark items into wav jobs and index rows; once
every wav exists, `write_benchmark_indexes` writes the index files. Under OUT/benchmarks/:

zr2021/ (ZeroSpeech 2021 sLM21)
    lexical/<set>/<random 11-12 letters>.wav + gold.csv
        filename,voice,frequency,word,phones,length,correct,id
    syntactic/<set>/<random>.wav + gold.csv
        filename,voice,type,subtype,transcription,correct,id
    ids.csv (task,type,subtype,id,source_id), README.md, meta.json
storycloze/ (spoken StoryCloze, TWIST)
    sSC/ and tSC/: flat, each wav a whole story:
        <2k>_<storyId>_correct.wav, <2k+1>_<storyId>_incorrect.wav
    items.csv (set,k,correct_file,incorrect_file,source_id,voice,type,subtype),
    README.md, meta.json

As in the real gold.csv, `filename` is the stem without ".wav", `correct` is 1/0, `id` is
an integer shared by the two files of a pair, and every pair exists once per voice. Rows
go pair by pair, correct first, so the official scorer's file-order pairing of sBLIMP
also lines up. Lexical `id`s are unique; syntactic ones are unique within (type,
subtype), as in sBLIMP. `word` is the spelling, also for the nonword. ids.csv maps
them back to the world's item ids.

StoryCloze has one speaker per file, so each (item, voice) is its own pair, numbered k
item-major, and its storyId is the item id made file-safe ("_" and other characters
outside [A-Za-z0-9.-] become "-") plus "-v<voice index>": slamkit pairs consecutive
files, ZeroSyl pairs on storyId, and both then see one pair per voice.
"""

from __future__ import annotations

import csv
import io
import random
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmscale.audio.io import SAMPLE_RATE
from slmscale.audio.synth_jobs import Job
from slmscale.files import StageError, write_json, write_text

BENCHMARK_ROOT = "benchmarks"
LEXICAL_COLUMNS = ("filename", "voice", "frequency", "word", "phones", "length", "correct", "id")
SYNTACTIC_COLUMNS = ("filename", "voice", "type", "subtype", "transcription", "correct", "id")
ZR_MAPPING_COLUMNS = ("task", "type", "subtype", "id", "source_id")
CLOZE_MAPPING_COLUMNS = ("set", "k", "correct_file", "incorrect_file", "source_id", "voice", "type", "subtype")
CLOZE_SETS = (("sSC", "story_cloze.jsonl"), ("tSC", "topic_cloze.jsonl"))


@dataclass
class Folder:
    """One folder of wavs and (for ZeroSpeech) its gold.csv."""
    path: str
    """Relative to OUT, e.g. "benchmarks/zr2021/lexical/dev"."""
    items: int = 0
    """World items in it; each is spoken once per voice."""
    jobs: list[Job] = field(default_factory=list)
    gold_columns: tuple[str, ...] = ()
    gold_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Root:
    """One benchmark root (zr2021 or storycloze) with its folders and mapping file."""
    name: str
    folders: dict[str, Folder]
    mapping_file: str
    mapping_columns: tuple[str, ...]
    mapping_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        return [job for folder in self.folders.values() for job in folder.jobs]


def _random_stems(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """`count` new names of 11-12 ASCII letters, unique even on a case-insensitive disk."""
    stems = []
    while len(stems) < count:
        stem = "".join(rng.choice(string.ascii_letters) for _ in range(rng.choice((11, 12))))
        if stem.lower() not in taken:
            taken.add(stem.lower())
            stems.append(stem)
    return stems


def story_id(item_id: str) -> str:
    """An item id usable as the storyId field of a StoryCloze file name (no "_")."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", item_id).strip("-")
    if not safe:
        raise StageError(f"story cloze item id {item_id!r} has no file-safe characters")
    return safe


def _plan_zr2021(benchmarks: dict[str, list[dict]], speakers: list[tuple[str, str]], seed: int,
                 set_name: str) -> Root | None:
    lexical, syntax = benchmarks.get("lexical.jsonl"), benchmarks.get("syntax.jsonl")
    if not lexical and not syntax:
        return None
    root = Root("zr2021", {}, "ids.csv", ZR_MAPPING_COLUMNS)
    if lexical:
        folder = Folder(f"{BENCHMARK_ROOT}/zr2021/lexical/{set_name}", len(lexical),
                        gold_columns=LEXICAL_COLUMNS)
        stems = iter(_random_stems(random.Random(f"{seed}:zr2021:lexical"),
                                   2 * len(lexical) * len(speakers), set()))
        for pair_id, item in enumerate(lexical):
            root.mapping_rows.append({"task": "lexical", "type": item["type"], "subtype": item["subtype"],
                                      "id": pair_id, "source_id": item["id"]})
            for voice, speaker in speakers:
                for correct, side in ((1, "positive"), (0, "negative")):
                    stem = next(stems)
                    # Word and nonword both go through the phone route, so the pair
                    # differs in its phones only, never in how it was synthesized.
                    folder.jobs.append(Job(f"{folder.path}/{stem}.wav", f"lexical {item['id']} {side}",
                                           voice, phones=item[f"{side}_phones"]))
                    folder.gold_rows.append({
                        "filename": stem, "voice": speaker, "frequency": item["frequency"],
                        "word": item[side], "phones": item[f"{side}_phones"], "length": item["length"],
                        "correct": correct, "id": pair_id})
        root.folders["lexical"] = folder
    if syntax:
        folder = Folder(f"{BENCHMARK_ROOT}/zr2021/syntactic/{set_name}", len(syntax),
                        gold_columns=SYNTACTIC_COLUMNS)
        stems = iter(_random_stems(random.Random(f"{seed}:zr2021:syntactic"),
                                   2 * len(syntax) * len(speakers), set()))
        next_id: dict[tuple[str, str], int] = {}
        for item in syntax:
            group = (item["type"], item["subtype"])
            pair_id = next_id.get(group, 0)
            next_id[group] = pair_id + 1
            root.mapping_rows.append({"task": "syntactic", "type": item["type"], "subtype": item["subtype"],
                                      "id": pair_id, "source_id": item["id"]})
            for voice, speaker in speakers:
                for correct, side in ((1, "positive"), (0, "negative")):
                    stem = next(stems)
                    folder.jobs.append(Job(f"{folder.path}/{stem}.wav", f"syntax {item['id']} {side}",
                                           voice, text=item[side]))
                    folder.gold_rows.append({
                        "filename": stem, "voice": speaker, "type": item["type"],
                        "subtype": item["subtype"], "transcription": item[side],
                        "correct": correct, "id": pair_id})
        root.folders["syntactic"] = folder
    return root


def _cloze_texts(item: dict[str, Any]) -> tuple[tuple[str, str], tuple[str, str]]:
    """(prompt, rest) for the positive and negative story.

    When each story is its prompt plus its ending, the prompt is spoken once per voice
    and both files start with that same recording, as with the deterministic TTS of the
    original sSC/tSC: the pair then differs in its ending only. It also saves about 40%
    of the synthesis. Otherwise each story is spoken whole.
    """
    prompt = str(item.get("prompt") or "").strip()
    endings = [str(item.get(f"{side}_ending") or "").strip() for side in ("positive", "negative")]
    if prompt and all(endings) and all(
            " ".join(item[side].split()) == " ".join(f"{prompt} {ending}".split())
            for side, ending in zip(("positive", "negative"), endings)):
        return (prompt, endings[0]), (prompt, endings[1])
    return ("", item["positive"]), ("", item["negative"])


def _plan_storycloze(benchmarks: dict[str, list[dict]], speakers: list[tuple[str, str]]) -> Root | None:
    if not any(benchmarks.get(file) for _, file in CLOZE_SETS):
        return None
    root = Root("storycloze", {}, "items.csv", CLOZE_MAPPING_COLUMNS)
    for set_name, file in CLOZE_SETS:
        items = benchmarks.get(file)
        if not items:
            continue
        folder = Folder(f"{BENCHMARK_ROOT}/storycloze/{set_name}", len(items))
        safe_ids: dict[str, str] = {}
        k = 0
        for item in items:
            safe = story_id(item["id"])
            if safe in safe_ids:
                raise StageError(f"{file}: item ids {safe_ids[safe]!r} and {item['id']!r} both become "
                                 f"{safe!r} in StoryCloze file names; make them differ in [A-Za-z0-9.-]")
            safe_ids[safe] = item["id"]
            texts = _cloze_texts(item)
            for voice_index, (voice, speaker) in enumerate(speakers):
                sid = f"{safe}-v{voice_index}"
                correct, incorrect = f"{2 * k}_{sid}_correct", f"{2 * k + 1}_{sid}_incorrect"
                for stem, side, (prompt, text) in ((correct, "positive", texts[0]), (incorrect, "negative", texts[1])):
                    folder.jobs.append(Job(f"{folder.path}/{stem}.wav", f"{file} {item['id']} {side}",
                                           voice, text=text, prompt=prompt,
                                           prompt_id=f"{set_name}/{sid}" if prompt else ""))
                root.mapping_rows.append({"set": set_name, "k": k, "correct_file": correct,
                                          "incorrect_file": incorrect, "source_id": item["id"],
                                          "voice": speaker, "type": item["type"], "subtype": item["subtype"]})
                k += 1
        root.folders[set_name] = folder
    return root


def plan_benchmarks(benchmarks: dict[str, list[dict]], speakers: list[tuple[str, str]], seed: int,
                    zr2021_set: str = "dev", storycloze_voices: int = 0) -> list[Root]:
    """The benchmark roots a world's items make; `speakers` is [(voice spec, speaker id)].

    StoryCloze is spoken by the first `storycloze_voices` speakers (0 = all)."""
    cloze_speakers = speakers[:storycloze_voices] if storycloze_voices > 0 else speakers
    roots = [_plan_zr2021(benchmarks, speakers, seed, zr2021_set), _plan_storycloze(benchmarks, cloze_speakers)]
    return [root for root in roots if root is not None]


def _csv_text(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def remove_strays(out_dir: Path, root: Root) -> int:
    """Delete files in the root's audio folders that are not planned wavs (temporary
    files of an interrupted run, wavs of an edited input); returns how many."""
    removed = 0
    for folder in root.folders.values():
        expected = {Path(job.key).name for job in folder.jobs}
        directory = out_dir / folder.path
        for path in directory.iterdir() if directory.is_dir() else ():
            if path.is_file() and path.name not in expected and path.name != "gold.csv":
                path.unlink()
                removed += 1
    return removed


def write_benchmark_indexes(out_dir: Path, root: Root, meta: dict[str, Any]) -> dict[str, Any]:
    """Write gold.csv files, the mapping file, README.md and meta.json; returns the counts."""
    counts = {}
    for name, folder in root.folders.items():
        if folder.gold_columns:
            write_text(out_dir / folder.path / "gold.csv", _csv_text(folder.gold_columns, folder.gold_rows))
        counts[name] = {"items": folder.items, "files": len(folder.jobs), "folder": folder.path}
    base = out_dir / BENCHMARK_ROOT / root.name
    write_text(base / root.mapping_file, _csv_text(root.mapping_columns, root.mapping_rows))
    write_json(base / "meta.json", {"benchmark": root.name, **meta, "sample_rate": SAMPLE_RATE,
                                    "counts": counts})
    write_text(base / "README.md", _readme(root, meta, counts))
    return counts


def _readme(root: Root, meta: dict[str, Any], counts: dict[str, Any]) -> str:
    voices = ", ".join(meta.get("voices", []))
    lines = [f"# {root.name}: spoken benchmark made by `slmscale synth`", "",
             f"Source: `{meta.get('source')}`, spoken by {meta.get('backend')} in the voices {voices} "
             "(every item once per voice), 16 kHz mono PCM16 wav.", ""]
    if root.name == "zr2021":
        lines += ["Layout of ZeroSpeech 2021 sLM21: `lexical/<set>/` (sWUGGY-like word/nonword pairs, "
                  "both spoken from their ARPAbet phones) and `syntactic/<set>/` (sBLIMP-like sentence "
                  "pairs), each with random 11-12-letter file names and a `gold.csv`:",
                  f"- lexical: `{','.join(LEXICAL_COLUMNS)}`",
                  f"- syntactic: `{','.join(SYNTACTIC_COLUMNS)}`", "",
                  "`correct` is 1 for the positive file, `id` is shared by the two files of a pair "
                  "(unique within type and subtype for syntactic). "
                  f"`{root.mapping_file}` maps each (task, type, subtype, id) to the world's item id."]
    else:
        lines += ["Layout of spoken StoryCloze (TWIST): `sSC/` (the story's own wrong ending) and `tSC/` "
                  "(an ending from another story), flat folders of whole stories named "
                  "`<2k>_<storyId>_correct.wav` and `<2k+1>_<storyId>_incorrect.wav`. Each (item, voice) "
                  "is one pair; storyId is the item id made file-safe plus `-v<voice index>`. "
                  f"`{root.mapping_file}` maps each pair to the world's item id and voice."]
    lines += ["", "| part | items | files |", "|---|---|---|"]
    lines += [f"| {name} | {c['items']} | {c['files']} |" for name, c in counts.items()]
    return "\n".join(lines) + "\n"
