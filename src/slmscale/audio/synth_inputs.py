"""Reading what `slmscale synth` speaks: a text.jsonl, or a world dir with its benchmarks.

The formats and their checks are the world's (world/records.py): every problem is found
before anything is written, and reported with the file, the line and the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmscale.files import StageError
from slmscale.world.records import (BENCHMARK_DIR, BENCHMARK_FILES, TEXT_FILE, TextRecord, read_benchmark,
                                    read_text_records)


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
