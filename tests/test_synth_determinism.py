"""Reproducible synthesis (issue 16 §1): an utterance's audio depends on its text, voice and
options only, not on what the process spoke before, so neither the worker count nor a
resume changes a byte of the corpus or the benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slmscale.audio import espeak as espeak_module
from slmscale.audio.config import SynthConfig
from slmscale.audio.synth import synth
from slmscale.audio.tts import get_backend
from slmscale.files import StageError

STORY = ("Once upon a time, there was a happy boy named Ted. Ted saw a little bag in a book and "
         "wanted one too. Every morning, he walked to the market.")
OTHERS = [("A frog sat by the river, and it sang all day!", "en-us@145"),
          ("Did the dog run? Yes.", "en-us+m1@175"),
          ("Tom lost his hat.", "en-us@160")]


def _assert_same(a, b) -> None:
    assert a.samples.shape == b.samples.shape and np.array_equal(a.samples, b.samples)
    assert a.words == b.words


def test_same_text_gives_the_same_samples_whatever_came_before():
    backend = get_backend("espeak")
    first = backend.synthesize(STORY, "en-us+m3@160")
    first_phones = backend.synthesize_phones("B L IH1 K T AH0 N", "en-us+m3@160")
    first_prompt = backend.synthesize(OTHERS[2][0], "en-us@160", sentence_pause=True)
    for text, voice in OTHERS:
        backend.synthesize(text, voice)
    backend.synthesize_phones("G AA1 R D AH0 N", "en-us@160")
    _assert_same(backend.synthesize(STORY, "en-us+m3@160"), first)
    _assert_same(backend.synthesize_phones("B L IH1 K T AH0 N", "en-us+m3@160"), first_phones)
    _assert_same(backend.synthesize(OTHERS[2][0], "en-us@160", sentence_pause=True), first_prompt)
    _assert_same(get_backend("espeak").synthesize(STORY, "en-us+m3@160"), first)  # another backend object


def test_a_lost_speech_process_is_replaced():
    backend = get_backend("espeak")
    before = backend.synthesize(OTHERS[0][0], OTHERS[0][1])
    server = espeak_module._SERVER
    assert server is not None
    server.process.kill()
    server.process.wait()
    _assert_same(backend.synthesize(OTHERS[0][0], OTHERS[0][1]), before)
    assert espeak_module._SERVER is not server


# --- the synth stage on a small built world ------------------------------------------

CONFIG = SynthConfig(workers=1)


def _small_world(path: Path) -> Path:
    from slmscale.world.config import WorldConfig
    from slmscale.world.generate import build_world

    root = build_world(path, WorldConfig(stories=4, syntax_pairs_per_subtype=2, cloze_per_subtype=2,
                                         lexical_nonwords_per_word=1, lexical_oov_words=2))
    # Fewer benchmark items keep each run to about a second; every kind is still there.
    for name, keep in (("lexical", 6), ("syntax", 8), ("story_cloze", 4), ("topic_cloze", 4)):
        path = root / "benchmarks" / f"{name}.jsonl"
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:keep]))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return _small_world(tmp_path_factory.mktemp("world") / "w")


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory) -> Path:
    """One uninterrupted run with one worker."""
    return synth(world, tmp_path_factory.mktemp("reference") / "out", CONFIG)


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of the corpus and the benchmarks (synth.json and config.yaml record the
    run itself: wall time, workers)."""
    return {str(p.relative_to(out)): p.read_bytes() for folder in ("corpus", "benchmarks")
            for p in sorted((out / folder).rglob("*")) if p.is_file()}


def _assert_identical(out: Path, reference: Path) -> None:
    got, want = _outputs(out), _outputs(reference)
    assert sorted(got) == sorted(want)
    differ = [name for name in want if got[name] != want[name]]
    assert not differ, f"{len(differ)} of {len(want)} files differ, e.g. {differ[:5]}"


def test_reference_has_every_kind_of_file(reference):
    names = _outputs(reference)
    wavs = [n for n in names if n.endswith(".wav")]
    assert len(wavs) >= 60
    for part in ("corpus/audio/", "zr2021/lexical/", "zr2021/syntactic/", "storycloze/sSC/", "storycloze/tSC/"):
        assert any(part in n for n in wavs), part


def test_worker_count_does_not_change_a_byte(world, reference, tmp_path):
    out = synth(world, tmp_path / "out", SynthConfig(workers=2))
    assert json.loads((out / "synth.json").read_text())["workers"] == 2
    _assert_identical(out, reference)


def test_a_resumed_run_matches_an_uninterrupted_one(world, reference, tmp_path, monkeypatch):
    out = tmp_path / "out"
    original = espeak_module.EspeakBackend.synthesize
    calls = []

    def interrupted(self, text, voice, sentence_pause=False):
        calls.append(text)
        if len(calls) > 30:
            raise RuntimeError("interrupted")
        return original(self, text, voice, sentence_pause)

    monkeypatch.setattr(espeak_module.EspeakBackend, "synthesize", interrupted)
    with pytest.raises(StageError, match="interrupted"):
        synth(world, out, CONFIG)
    monkeypatch.undo()
    assert not (out / ".completed").exists() and any(out.rglob("*.wav"))
    synth(world, out, CONFIG)
    summary = json.loads((out / "synth.json").read_text())
    assert summary["reused_files"] > 0 and summary["synthesized_files"] > 0
    _assert_identical(out, reference)

    # Outputs lost here and there (and the marker) are redone to the same bytes, too.
    wavs = sorted(out.rglob("*.wav"))
    for path in wavs[::5]:
        path.unlink()
    (out / ".completed").unlink()
    synth(world, out, CONFIG)
    assert json.loads((out / "synth.json").read_text())["synthesized_files"] >= len(wavs[::5])
    _assert_identical(out, reference)


def test_two_runs_from_scratch_give_the_same_world_corpus_and_units(world, reference, tmp_path):
    """Two `make demo`s on one machine: world, corpus, tokenizer and units all byte-identical (two
    demo runs once gave different corpora, and the tiny study's test losses moved by 1.5%)."""
    from slmscale.units.config import TokenizerConfig
    from slmscale.units.tokenize import tokenize_corpus
    from slmscale.units.tokenizer import train_tokenizer
    again = _small_world(tmp_path / "w")
    for name in ("text.jsonl", *(f"benchmarks/{b}.jsonl" for b in ("lexical", "syntax", "story_cloze"))):
        assert (again / name).read_bytes() == (world / name).read_bytes(), name
    out = synth(again, tmp_path / "out", SynthConfig(workers=2))
    # The benchmarks' meta.json and README name the world they were spoken from, here another dir.
    got = {k: v.replace(str(again).encode(), str(world).encode()) for k, v in _outputs(out).items()}
    assert got == _outputs(reference)
    units = []
    for n, corpus in enumerate((reference / "corpus", out / "corpus")):
        tokenizer = tmp_path / f"tok{n}"
        train_tokenizer(corpus, tokenizer, TokenizerConfig(k=8, frames_sample=3000, kmeans_iterations=5, workers=1))
        tokenize_corpus(corpus, tokenizer, tmp_path / f"units{n}", workers=1 + n)
        units.append({p.name: p.read_bytes() for p in sorted((tmp_path / f"units{n}").iterdir())
                      if p.suffix in (".bin", ".idx", ".ids", ".dur")})
    assert len(units[0]) >= 4 and units[0] == units[1]
