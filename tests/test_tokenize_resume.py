"""An interrupted `tokenize` resumes after its last finished block and gives byte-identical units;
what a killed run left is cleaned up by the next one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import slmscale.units.extraction as extraction
from slmscale.audio.fixtures import make_speech_corpus
from slmscale.files import atomic_dir, check_output_dir, mark_completed
from slmscale.units.blocks import BLOCK_ITEMS
from slmscale.units.config import TokenizerConfig
from slmscale.units.tokenize import tokenize_corpus
from slmscale.units.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def corpus_and_tokenizer(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    corpus = make_speech_corpus(root / "corpus", utterances=2 * BLOCK_ITEMS + 20, seconds=0.4)
    train_tokenizer(corpus, root / "tok", TokenizerConfig(k=16, frames_sample=5000, kmeans_iterations=10, workers=1))
    return corpus, root / "tok"


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != ".completed"}


def test_an_interrupted_run_resumes_and_gives_the_same_units(corpus_and_tokenizer, tmp_path, monkeypatch):
    corpus, tok = corpus_and_tokenizer
    tokenize_corpus(corpus, tok, tmp_path / "reference", workers=1)
    real = extraction._process
    calls = {"n": 0}

    def interrupted(item):
        calls["n"] += 1
        if calls["n"] > BLOCK_ITEMS + 10:  # inside the second block
            raise KeyboardInterrupt
        return real(item)

    monkeypatch.setattr(extraction, "_process", interrupted)
    out = tmp_path / "units"
    with pytest.raises(KeyboardInterrupt):
        tokenize_corpus(corpus, tok, out, workers=1)
    assert not out.exists() and not list(tmp_path.glob(".units.*.tmp"))  # nothing half-written
    partial = list(tmp_path.glob(".units.partial-*"))
    assert len(partial) == 1 and [p.name for p in partial[0].iterdir()] == ["block-000000.npz"]

    def counted(item):
        calls["n"] += 1
        return real(item)

    calls["n"] = 0
    monkeypatch.setattr(extraction, "_process", counted)
    tokenize_corpus(corpus, tok, out, workers=1)
    # Only the files after the first block are extracted again.
    assert calls["n"] == len(extraction.corpus_items(corpus, 16000)) - BLOCK_ITEMS
    assert _files(out) == _files(tmp_path / "reference")
    assert not list(tmp_path.glob(".units.partial-*"))  # removed with the run's success


def test_blocks_of_other_inputs_are_stale_and_removed(corpus_and_tokenizer, tmp_path):
    corpus, tok = corpus_and_tokenizer
    stale = tmp_path / ".units.partial-0123456789abcdef"
    stale.mkdir()
    (stale / "block-000000.npz").write_bytes(b"not a block of this run")
    tokenize_corpus(corpus, tok, tmp_path / "units", workers=1)
    assert not stale.exists()


def test_a_killed_runs_temporary_dir_is_removed_and_live_ones_are_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = socket.gethostname()
    left = tmp_path / f".out.{host}-{dead}.k1ll3d.tmp"
    live = tmp_path / f".out.{host}-{os.getpid()}.l1v3.tmp"
    other_host = tmp_path / f".out.elsewhere-{dead}.0th3r.tmp"
    for folder in (left, live, other_host):
        (folder / "shard").mkdir(parents=True)
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("ok")
    assert not left.exists() and live.exists() and other_host.exists()
    assert (tmp_path / "out" / "done").read_text() == "ok"
    # A run killed after another finished the output: the rerun that skips the stage cleans up too.
    (left / "shard").mkdir(parents=True)
    mark_completed(tmp_path / "out", "fp")
    assert check_output_dir(tmp_path / "out", "fp")
    assert not left.exists() and live.exists() and other_host.exists()


def test_a_saved_block_whose_files_changed_is_extracted_again(corpus_and_tokenizer, tmp_path, monkeypatch):
    corpus, tok = corpus_and_tokenizer
    copy = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(corpus), str(copy)], check=True)
    real = extraction._process
    calls = {"n": 0}

    def interrupted(item):
        calls["n"] += 1
        if calls["n"] > BLOCK_ITEMS:
            raise KeyboardInterrupt
        return real(item)

    monkeypatch.setattr(extraction, "_process", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tokenize_corpus(copy, tok, tmp_path / "units", workers=1)
    first = extraction.corpus_items(copy, 16000)[0]
    stat = os.stat(first.path)
    os.utime(first.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was rewritten
    calls["n"] = -10**6
    tokenize_corpus(copy, tok, tmp_path / "units", workers=1)
    assert calls["n"] == -10**6 + len(extraction.corpus_items(copy, 16000))  # every file again
