"""The prepared device check, `benchmarks/gpu_check.sh --dry-run`: every section runs at tiny
shapes on the CPU and lands in gpu_check.json, which renders as the RESULTS.md section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slmscale.audio.fixtures import make_speech_corpus
from slmscale.evaluate.fixtures import FakeTrial as T
from slmscale.evaluate.fixtures import make_storycloze
from slmscale.units.config import TokenizerConfig
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_dry_run_runs_every_section_and_renders(tmp_path):
    corpus = make_speech_corpus(tmp_path / "corpus", utterances=60, seconds=1.5)
    train_tokenizer(corpus, tmp_path / "tok", TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10,
                                                              workers=1))
    tokenize_corpus(corpus, tmp_path / "tok", tmp_path / "units", workers=1)
    make_storycloze(tmp_path / "bench" / "sSC", [T(f"s{i}", "win") for i in range(4)], seed=2)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--study-units", str(tmp_path / "units"),
                           "--study-benchmarks", str(tmp_path / "bench")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((out / "gpu_check.json").read_text())
    sections = data["sections"]
    assert list(sections) == ["train", "hubert", "scoring", "trainer", "study"]
    assert not [name for name, entry in sections.items() if "error" in entry]
    train = sections["train"]["result"]
    assert {row["impl"] for row in train} == {"slmscale", "transformers"} and len(train) == 8
    assert all(row["tokens_per_s"] > 0 for row in train)
    assert sections["study"]["result"]["rc"] == 0 and sections["trainer"]["result"]["status"] == "completed"
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from gpu_check_results import render
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    text = render(data, "gpu_check.json")
    for heading in ("Training throughput", "HuBERT-base", "Scoring", "The trainer itself", "A miniature study"):
        assert heading in text
