"""The demo path end to end through the CLI: a tiny world, spoken, read back like real benchmarks."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf

from slmscale.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.integration
def test_tiny_world_is_spoken_into_real_benchmark_layouts(tmp_path):
    world, speech = tmp_path / "world", tmp_path / "speech"
    assert main(["world", "--out", str(world), "--config", str(ROOT / "configs/world/tiny.yaml")]) == 0
    assert main(["synth", str(world), "--out", str(speech), "workers=2"]) == 0

    items = {name: [json.loads(line) for line in (world / "benchmarks" / f"{name}.jsonl").open()]
             for name in ("syntax", "lexical", "story_cloze", "topic_cloze")}
    texts = [json.loads(line) for line in (world / "text.jsonl").open()]

    manifest = [json.loads(line) for line in (speech / "corpus" / "manifest.jsonl").open()]
    assert [u["id"] for u in manifest] == [t["id"] for t in texts]
    assert Counter(u["split"] for u in manifest) == Counter(t["split"] for t in texts)
    first = sf.info(speech / "corpus" / manifest[0]["path"])
    assert (first.samplerate, first.channels) == (16000, 1)
    assert abs(first.duration - manifest[0]["duration_s"]) < 1e-3

    # sLM21 trees: every pair in every voice, the official gold.csv columns, a wav per row.
    zr = speech / "benchmarks" / "zr2021"
    for task, name in (("syntactic", "syntax"), ("lexical", "lexical")):
        gold = _rows(zr / task / "dev" / "gold.csv")
        voices = {row["voice"] for row in gold}
        assert len(voices) >= 2
        assert len(gold) == 2 * len(voices) * len(items[name])
        assert {row["filename"] + ".wav" for row in gold} == {p.name for p in (zr / task / "dev").glob("*.wav")}
        assert Counter(row["correct"] for row in gold) == {"1": len(gold) // 2, "0": len(gold) // 2}
    # Spoken StoryCloze: one correct and one incorrect file per item, paired by name.
    for folder, name in (("sSC", "story_cloze"), ("tSC", "topic_cloze")):
        names = sorted(p.stem for p in (speech / "benchmarks" / "storycloze" / folder).glob("*.wav"))
        assert sum(n.endswith("_correct") for n in names) == len(items[name])
        assert sum(n.endswith("_incorrect") for n in names) == len(items[name])

    # A rerun finds the completed outputs and does nothing.
    stamp = (speech / "synth.json").stat().st_mtime_ns
    assert main(["synth", str(world), "--out", str(speech)]) == 0
    assert (speech / "synth.json").stat().st_mtime_ns == stamp
