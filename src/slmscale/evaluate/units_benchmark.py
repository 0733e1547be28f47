"""A units dir that `slmscale tokenize` made of a benchmark folder, scored as that folder.

`slmscale tokenize FOLDER --out UB` on an sLM21 task folder (`lexical|syntactic/<set>/`) or a
StoryCloze folder writes one split named after the folder, ids = file stems, and meta.json
records `source` (the folder), `tokenizer` and `tokenizer_fingerprint`. Units alone hold no
pairs: which file is whose positive, and the pairs' types, frequencies and voices, are in the
folder (gold.csv, the StoryCloze file names). So `eval RUN --benchmark UB` reads the task from
`source` exactly as eval reads that folder, and takes each file's units from UB instead of
tokenizing the audio again (the cache under CACHE/units/ is not touched). UB must come from the
run's tokenizer with the run's dedup, hold every file the task scores, and be newer than them.
"""

from __future__ import annotations

from pathlib import Path

from slmscale.audio.manifest import MANIFEST
from slmscale.evaluate.inputs import RunVocabulary
from slmscale.evaluate.layouts import (SLM21_TASKS, ZR_SETS, Benchmark, Modality, Task, _fingerprint,
                                       _is_cloze_folder, read_benchmark, read_cloze_folder, read_zr_task)
from slmscale.files import MARKER, StageError, content_hash, read_json_object, read_marker
from slmscale.units.shards import META, open_split, read_meta


def is_units_dir(path: Path) -> bool:
    """A finished units dir: its meta.json names a tokenizer (a benchmark root's meta.json,
    written by `slmscale synth`, does not)."""
    meta = path / META
    if not (path.is_dir() and meta.is_file() and (path / MARKER).is_file()):
        return False
    return "tokenizer_fingerprint" in read_json_object(meta)


def read_eval_benchmarks(path: str | Path, vocab: RunVocabulary) -> list[Benchmark]:
    """The benchmark(s) at `path` (layouts.read_benchmark), or the one a units dir was made of."""
    path = Path(path)
    if is_units_dir(path):
        return [read_units_benchmark(path, vocab)]
    modality: Modality = vocab.modality
    return read_benchmark(path, modality)


def _check_tokenizer(path: Path, meta: dict, vocab: RunVocabulary) -> None:
    from slmscale.units.tokenizer import load_tokenizer
    if vocab.modality == "text":
        raise StageError(f"{path}: a units dir of speech units; a text-arm run scores text pairs "
                         "(give eval the world's benchmarks/ folder)")
    run_fp = load_tokenizer(vocab.tokenizer_dir).fingerprint
    found = meta.get("tokenizer_fingerprint")
    if found != run_fp:
        raise StageError(f"{path}: made by tokenizer {found} ({meta.get('tokenizer')}), but the run's units come "
                         f"from tokenizer {run_fp} ({vocab.tokenizer_dir}); tokenize the benchmark with the run's "
                         "tokenizer, or give eval the benchmark folder itself")
    if bool(meta.get("dedup", True)) != vocab.dedup:
        def word(dedup: bool) -> str:
            return "deduplicated" if dedup else "frame-level (--no-dedup)"
        raise StageError(f"{path}: its units are {word(bool(meta.get('dedup', True)))}, the run's "
                         f"({vocab.units_dir}) {word(vocab.dedup)}; tokenize the benchmark as the run's corpus was")


def _source_task(path: Path, meta: dict) -> tuple[Task, str, list[Path]]:
    """The task of the folder the units dir was made of, its layout and index files."""
    source = Path(str(meta.get("source") or ""))
    why = "units hold no pairs, so eval reads them from the folder the units dir was made of"
    if not meta.get("source") or not source.is_dir():
        raise StageError(f"{path}: its source {meta.get('source')!r} (meta.json `source`) does not exist; {why}: "
                         "restore the folder, or give eval the benchmark folder itself")
    if (source / MANIFEST).is_file():
        raise StageError(f"{path}: units of the corpus {source}, not of a benchmark folder")
    if (source / "gold.csv").is_file() and source.parent.name in SLM21_TASKS and source.name in ZR_SETS:
        kind = "lexical" if source.parent.name == "lexical" else "syntactic"
        return read_zr_task(source, kind, source.name), "sLM21", [source / "gold.csv"]
    if _is_cloze_folder(source):
        return read_cloze_folder(source), "storycloze", []
    raise StageError(f"{path}: its source {source} is not a benchmark folder (an sLM21 lexical|syntactic/<set>/ "
                     f"with gold.csv, or a StoryCloze folder of <k>_<storyId>_(in)correct.wav); {why}")


def _check_files(path: Path, meta: dict, split: str, task: Task) -> None:
    """Every scored file is in the units dir and unchanged since it was made."""
    ids = set(open_split(path, split).ids)
    missing = sorted(set(task.inputs) - ids)
    if missing:
        skipped = {row.get("id"): row.get("problem") for row in meta.get("skipped", [])}
        why = f" (left out by --skip-bad: {skipped[missing[0]]})" if missing[0] in skipped else ""
        raise StageError(f"{path}: no units for {len(missing)} file(s) that {task.source} scores, e.g. "
                         f"{missing[0]}{why}; eval scores every pair, so re-tokenize the folder with them")
    made = (path / MARKER).stat().st_mtime_ns
    newer = sorted(p for p in task.inputs.values() if Path(p).stat().st_mtime_ns > made)
    if newer:
        raise StageError(f"{path}: {len(newer)} audio file(s) changed after the units were made, e.g. {newer[0]}; "
                         f"re-tokenize {task.source}")


def read_units_benchmark(path: Path, vocab: RunVocabulary) -> Benchmark:
    """The benchmark named after units dir `path`, of the one task its source folder holds."""
    meta = read_meta(path)
    _check_tokenizer(path, meta, vocab)
    task, layout, index = _source_task(path, meta)
    splits = list(meta.get("splits", {}))
    if len(splits) != 1:
        raise StageError(f"{path}: has splits {', '.join(splits)}; a units dir of one benchmark folder has one")
    _check_files(path, meta, splits[0], task)
    task.units_dir = str(path.resolve())
    bench = Benchmark(path.name, task.source, layout, [task])  # hashed as the folder is, relative to it
    _fingerprint(bench, index)
    # A units dir made again (other files, another run of tokenize) is another benchmark for eval's stamp.
    bench.content_hash = content_hash(bench.content_hash, str((read_marker(path) or {}).get("fingerprint")))
    bench.path = str(path.resolve())
    return bench
