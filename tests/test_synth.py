"""The synth stage: corpus + ZeroSpeech/StoryCloze folders, resume, skip, bad input, CLI."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from slmscale.audio import espeak as espeak_module
from slmscale.audio.benchmark_layout import LEXICAL_COLUMNS, SYNTACTIC_COLUMNS
from slmscale.audio.config import SynthConfig
from slmscale.audio.manifest import read_manifest
from slmscale.audio.synth import pick_voice, synth
from slmscale.cli import main
from slmscale.config import ConfigError, load_config
from slmscale.files import StageError

ROOT = Path(__file__).resolve().parents[1]
FAST = SynthConfig(workers=1, storycloze_voices=0)  # StoryCloze in both voices, to test that too

STORIES = [
    ("s1", "Once there was a small dog. The dog ran to the park. The end.", "train"),
    ("s2", "Tom found a red ball. He was very happy.", "valid"),
    ("s3", "A frog sat by the river. It sang all day.", "test"),
]
SENTENCES = [("g_1", "The cat sleeps.", "train"), ("g_2", "Two birds were singing. A dog barked.", "train")]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def make_world(root: Path, cloze_ids: tuple[str, ...] = ("sc_1", "sc/2")) -> Path:
    """A tiny world in the format of `slmscale world`."""
    _write_jsonl(root / "text.jsonl",
                 [{"id": i, "text": t, "kind": "story", "split": s} for i, t, s in STORIES]
                 + [{"id": i, "text": t, "kind": "sentence", "split": s} for i, t, s in SENTENCES])
    _write_jsonl(root / "benchmarks" / "syntax.jsonl", [
        {"id": "x1", "positive": "The dog runs.", "negative": "The dog run.", "type": "agreement", "subtype": "sg"},
        {"id": "x2", "positive": "The dogs run.", "negative": "The dogs runs.", "type": "agreement", "subtype": "pl"},
        {"id": "x3", "positive": "The cats run.", "negative": "The cats runs.", "type": "agreement", "subtype": "pl"},
    ])
    _write_jsonl(root / "benchmarks" / "lexical.jsonl", [
        {"id": "w1", "positive": "cat", "negative": "cag", "positive_phones": "K AE1 T",
         "negative_phones": "K AE1 G", "type": "lexical", "subtype": "high", "frequency": 120, "length": 3},
        {"id": "w2", "positive": "garden", "negative": "gorben", "positive_phones": "G AA1 R D AH0 N",
         "negative_phones": "G AO1 R B AH0 N", "type": "lexical", "subtype": "oov", "frequency": 0, "length": 6},
    ])
    for name in ("story_cloze.jsonl", "topic_cloze.jsonl"):
        _write_jsonl(root / "benchmarks" / name, [
            {"id": cid, "positive": "Tom lost his hat. He found it under the bed.",
             "negative": "Tom lost his hat. The moon was made of cheese.", "prompt": "Tom lost his hat.",
             "positive_ending": "He found it under the bed.", "negative_ending": "The moon was made of cheese.",
             "type": "cloze", "subtype": "ending"} for cid in cloze_ids])
    return root


def _csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _wavs(directory: Path) -> set[str]:
    return {p.stem for p in directory.iterdir() if p.suffix == ".wav"}


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("spoken")
    return synth(make_world(base / "world"), base / "out", FAST)


def test_corpus_manifest_and_audio(spoken):
    utterances = read_manifest(spoken / "corpus")
    assert [u.id for u in utterances] == [i for i, _, _ in STORIES + SENTENCES]
    for u in utterances:
        audio, rate = sf.read(spoken / "corpus" / u.path)
        info = sf.info(spoken / "corpus" / u.path)
        assert rate == u.sample_rate == 16_000 and info.channels == 1 and info.subtype == "PCM_16"
        assert u.duration_s == pytest.approx(len(audio) / rate, abs=1e-3) and u.duration_s > 0.5
        assert u.path == f"audio/{u.split}/{u.id}.wav" and u.speaker.startswith("espeak:en-us")
        assert u.text and (audio ** 2).mean() > 1e-4
    assert {u.split for u in utterances} == {"train", "valid", "test"}
    alignments = [json.loads(line) for line in (spoken / "corpus" / "alignments.jsonl").read_text().splitlines()]
    assert [a["id"] for a in alignments] == [u.id for u in utterances]
    assert alignments[0]["words"][0][:2] == ["Once", 0.0]


def test_zerospeech_layout(spoken):
    zr = spoken / "benchmarks" / "zr2021"
    for task, columns, n_items in (("lexical", LEXICAL_COLUMNS, 2), ("syntactic", SYNTACTIC_COLUMNS, 3)):
        folder = zr / task / "dev"
        header, rows = _csv(folder / "gold.csv")
        assert tuple(header) == columns
        assert {r["filename"] for r in rows} == _wavs(folder)  # every gold file exists, and vice versa
        assert len(rows) == n_items * 2 * 2  # pair x 2 voices
        for row in rows:
            assert re.fullmatch(r"[A-Za-z]{11,12}", row["filename"])
            assert sf.info(folder / f"{row['filename']}.wav").samplerate == 16_000
        pairs: dict[tuple, list[dict]] = {}
        for row in rows:
            key = (row["id"],) if task == "lexical" else (row["type"], row["subtype"], row["id"])
            pairs.setdefault(key, []).append(row)
        assert len(pairs) == n_items
        for group in pairs.values():
            voices = {r["voice"] for r in group}
            assert len(voices) >= 2
            for voice in voices:
                assert sorted(r["correct"] for r in group if r["voice"] == voice) == ["0", "1"]
    _, lexical = _csv(zr / "lexical" / "dev" / "gold.csv")
    assert lexical[0]["word"] == "cat" and lexical[0]["phones"] == "K AE1 T" and lexical[0]["correct"] == "1"
    assert lexical[1]["word"] == "cag" and lexical[1]["phones"] == "K AE1 G" and lexical[1]["correct"] == "0"
    assert (lexical[0]["frequency"], lexical[0]["length"]) == ("120", "3")
    _, syntactic = _csv(zr / "syntactic" / "dev" / "gold.csv")
    assert [r["id"] for r in syntactic if r["correct"] == "1"] == ["0", "0", "0", "0", "1", "1"]
    _, ids = _csv(zr / "ids.csv")
    assert {(r["task"], r["source_id"]) for r in ids} == {("lexical", "w1"), ("lexical", "w2"),
                                                           ("syntactic", "x1"), ("syntactic", "x2"),
                                                           ("syntactic", "x3")}
    meta = json.loads((zr / "meta.json").read_text())
    assert meta["voices"] == ["espeak:en-us@160", "espeak:en-us+m3@160"]
    assert "gold.csv" in (zr / "README.md").read_text()


def test_storycloze_layout(spoken):
    for name in ("sSC", "tSC"):
        folder = spoken / "benchmarks" / "storycloze" / name
        stems = sorted(_wavs(folder), key=lambda s: int(s.split("_")[0]))
        assert {p.suffix for p in folder.iterdir()} == {".wav"}
        assert len(stems) == 2 * 2 * 2  # items x voices x (correct, incorrect)
        for k in range(len(stems) // 2):
            correct, incorrect = stems[2 * k].split("_"), stems[2 * k + 1].split("_")
            assert correct[0] == str(2 * k) and correct[2] == "correct" and len(correct) == 3
            assert incorrect[0] == str(2 * k + 1) and incorrect[2] == "incorrect" and len(incorrect) == 3
            assert correct[1] == incorrect[1]
        assert {s.split("_")[1] for s in stems} == {"sc-1-v0", "sc-1-v1", "sc-2-v0", "sc-2-v1"}
    # Both files of a pair start with one recording of the prompt and differ in the ending.
    pair = [sf.read(spoken / "benchmarks" / "storycloze" / "sSC" / f"{s}.wav")[0]
            for s in sorted(_wavs(spoken / "benchmarks" / "storycloze" / "sSC"), key=lambda s: int(s.split("_")[0]))[:2]]
    assert (pair[0][:8000] == pair[1][:8000]).all() and pair[0].shape != pair[1].shape
    _, items = _csv(spoken / "benchmarks" / "storycloze" / "items.csv")
    assert {(r["set"], r["source_id"]) for r in items} == {(s, i) for s in ("sSC", "tSC") for i in ("sc_1", "sc/2")}
    for row in items:
        folder = spoken / "benchmarks" / "storycloze" / row["set"]
        assert (folder / f"{row['correct_file']}.wav").is_file() and (folder / f"{row['incorrect_file']}.wav").is_file()


def test_lexical_pair_is_spoken_from_phones(tmp_path, monkeypatch):
    calls = []
    original = espeak_module.EspeakBackend.synthesize_phones

    def spy(self, arpabet, voice):
        calls.append(arpabet)
        return original(self, arpabet, voice)

    monkeypatch.setattr(espeak_module.EspeakBackend, "synthesize_phones", spy)
    synth(make_world(tmp_path / "w"), tmp_path / "out", FAST)
    assert sorted(set(calls)) == ["G AA1 R D AH0 N", "G AO1 R B AH0 N", "K AE1 G", "K AE1 T"]
    assert len(calls) == 2 * 2 * 2


def test_summary_config_and_marker(spoken):
    summary = json.loads((spoken / "synth.json").read_text())
    assert summary["corpus"]["utterances"] == 5
    assert set(summary["corpus"]["hours"]["train"]) == {"story", "sentence"}
    assert set(summary["benchmarks"]) == {"zr2021/lexical", "zr2021/syntactic", "storycloze/sSC", "storycloze/tSC"}
    assert summary["benchmarks"]["zr2021/syntactic"]["files"] == 12
    assert summary["synthesized_files"] == 5 + 8 + 12 + 8 + 8 and summary["audio_s_per_wall_s"] > 0
    assert yaml.safe_load((spoken / "config.yaml").read_text())["backend"] == "espeak"
    assert (spoken / ".completed").is_file() and not (spoken / ".synth-progress.jsonl").exists()


def test_speaker_draw_is_seeded_and_stable():
    voices = ("a", "b", "c", "d")
    assert pick_voice(0, "story-1", voices) == pick_voice(0, "story-1", voices)
    drawn = [pick_voice(0, f"story-{i}", voices) for i in range(200)]
    assert set(drawn) == set(voices)
    assert drawn != [pick_voice(1, f"story-{i}", voices) for i in range(200)]
    # Fixed values: the draw must not change across processes, machines or versions
    # (Python's hash() of a str is salted per process).
    assert [pick_voice(0, f"story-{i}", voices) for i in range(8)] == list("ddbdcaba")


def test_completed_output_is_skipped_and_another_config_refused(tmp_path):
    world = make_world(tmp_path / "w")
    out = synth(world, tmp_path / "out", FAST)
    stamp = (out / "synth.json").stat().st_mtime_ns
    synth(world, out, SynthConfig(workers=2, storycloze_voices=0))  # workers do not change the output
    written = load_config(SynthConfig, out / "config.yaml")  # the resolved config, voices spelt out
    assert written.corpus_voices == espeak_module.EspeakBackend.default_corpus_voices
    synth(world, out, written)
    assert (out / "synth.json").stat().st_mtime_ns == stamp
    with pytest.raises(StageError, match="different config"):
        synth(world, out, SynthConfig(workers=1, storycloze_voices=0, seed=5))


def test_resume_synthesizes_only_what_is_missing(tmp_path):
    world = make_world(tmp_path / "w")
    out = synth(world, tmp_path / "out", FAST)
    wavs = sorted(out.rglob("*.wav"))
    cloze = out / "benchmarks" / "storycloze" / "sSC"
    deleted = [p for p in wavs if "storycloze" not in p.parts][::7] + [next(cloze.glob("0_*_correct.wav"))]
    for path in deleted:
        path.unlink()
    # The incorrect file shares the deleted file's prompt recording: it is redone with it.
    deleted.append(next(cloze.glob("1_*_incorrect.wav")))
    (out / ".completed").unlink()
    (out / "corpus" / "manifest.jsonl").unlink()
    (wavs[1].parent / f".{wavs[1].stem}.partial.tmp.wav").write_bytes(b"RIFF")  # a killed worker's leftover
    before = {p: p.stat().st_mtime_ns for p in wavs if p not in deleted}
    synth(world, out, FAST)
    summary = json.loads((out / "synth.json").read_text())
    assert summary["synthesized_files"] == len(deleted) and summary["reused_files"] == len(wavs) - len(deleted)
    assert all(p.is_file() for p in deleted)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert sorted(out.rglob("*.wav")) == wavs  # the leftover is gone
    assert len(read_manifest(out / "corpus")) == 5 and (out / ".completed").is_file()


def test_parallel_workers_match_the_layout(tmp_path):
    out = synth(make_world(tmp_path / "w"), tmp_path / "out", SynthConfig(workers=2))
    summary = json.loads((out / "synth.json").read_text())
    # By default StoryCloze is single-speaker like the real sSC/tSC: 2 sets x 2 items x 2 files.
    assert summary["workers"] == 2 and summary["synthesized_files"] == 41 - 8
    assert {s.split("_")[1].rsplit("-", 1)[1] for s in _wavs(out / "benchmarks" / "storycloze" / "sSC")} == {"v0"}
    header, rows = _csv(out / "benchmarks" / "zr2021" / "lexical" / "dev" / "gold.csv")
    assert {r["filename"] for r in rows} == _wavs(out / "benchmarks" / "zr2021" / "lexical" / "dev")


def _thread_settings(_: int) -> tuple:
    return tuple(os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"))


def test_workers_pin_blas_threads_and_the_parent_keeps_its_own(monkeypatch):
    import multiprocessing

    from slmscale.parallel import one_thread_workers

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    with one_thread_workers():
        pool = multiprocessing.get_context("spawn").Pool(1)
    with pool:
        assert pool.map(_thread_settings, [0]) == [("1", "1", "1")]
    assert (os.environ["OMP_NUM_THREADS"], os.environ.get("OPENBLAS_NUM_THREADS")) == ("7", None)


def test_bare_text_jsonl_makes_only_a_corpus(tmp_path):
    world = make_world(tmp_path / "w")
    out = synth(world / "text.jsonl", tmp_path / "out", FAST)
    assert len(read_manifest(out / "corpus")) == 5 and not (out / "benchmarks").exists()
    assert json.loads((out / "synth.json").read_text())["benchmarks"] == {}


def test_text_only_records_are_not_spoken(tmp_path):
    """Records marked "spoken": false (a world's text-only records, for the text arm) are skipped."""
    world = make_world(tmp_path / "w")
    path = world / "text.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    rows[1]["spoken"], rows[3]["spoken"] = False, True
    _write_jsonl(path, rows)
    out = synth(path, tmp_path / "out", FAST)
    assert [u.id for u in read_manifest(out / "corpus")] == [r["id"] for i, r in enumerate(rows) if i != 1]
    rows[2]["spoken"] = "no"
    _write_jsonl(path, rows)
    with pytest.raises(StageError, match=re.escape("text.jsonl:3: key 'spoken' must be true or false")):
        synth(path, tmp_path / "out2", FAST)


@pytest.mark.parametrize("file, line, change, needle", [
    ("text.jsonl", 2, {"text": "  "}, "text.jsonl:2: key 'text' is empty"),
    ("text.jsonl", 0, None, "text.jsonl: no records"),
    ("text.jsonl", 1, {"split": "dev"}, "text.jsonl:1: key 'split' is 'dev'"),
    ("text.jsonl", 3, {"id": "s1"}, "text.jsonl:3: duplicate id 's1' (first on line 1)"),
    ("text.jsonl", 4, {"kind": None}, "text.jsonl:4: missing key 'kind'"),
    ("text.jsonl", 5, {"text": 7}, "text.jsonl:5: key 'text' must be a string"),
    ("benchmarks/lexical.jsonl", 2, {"negative_phones": None}, "lexical.jsonl:2: missing key 'negative_phones'"),
    ("benchmarks/lexical.jsonl", 1, {"positive_phones": "K AE1 TT"}, "lexical.jsonl:1: key 'positive_phones'"),
    ("benchmarks/lexical.jsonl", 1, {"frequency": "often"}, "lexical.jsonl:1: key 'frequency'"),
    ("benchmarks/syntax.jsonl", 3, {"id": "x1"}, "syntax.jsonl:3: duplicate id 'x1'"),
    ("benchmarks/story_cloze.jsonl", 1, {"negative": ""}, "story_cloze.jsonl:1: key 'negative' is empty"),
])
def test_bad_input_is_named_and_nothing_is_written(tmp_path, file, line, change, needle):
    world = make_world(tmp_path / "w")
    path = world / file
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    if change is None:
        rows = []
    else:
        rows[line - 1].update(change)
        rows[line - 1] = {k: v for k, v in rows[line - 1].items() if v is not None}
    _write_jsonl(path, rows)
    with pytest.raises(StageError, match=re.escape(needle)):
        synth(world, tmp_path / "out", FAST)
    assert not (tmp_path / "out").exists()


def test_bad_voices_and_colliding_ids(tmp_path):
    world = make_world(tmp_path / "w")
    with pytest.raises(StageError, match="no variant 'f9'"):
        synth(world, tmp_path / "out", SynthConfig(workers=1, corpus_voices=("en-us+f9@160",)))
    with pytest.raises(StageError, match="lists voice 'en-us@160' 2 times"):
        synth(world, tmp_path / "out", SynthConfig(workers=1, benchmark_voices=("en-us@160", "en-us@160")))
    with pytest.raises(ConfigError, match="workers is -1"):  # refused when the config is made
        synth(world, tmp_path / "out", SynthConfig(workers=-1))
    clash = make_world(tmp_path / "w2", cloze_ids=("a_b", "a-b"))
    with pytest.raises(StageError, match="'a_b' and 'a-b' both become 'a-b'"):
        synth(clash, tmp_path / "out", FAST)
    assert not (tmp_path / "out").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(StageError, match="not empty"):
        synth(world, tmp_path / "busy", FAST)


def test_tts_failure_names_the_utterance(tmp_path, monkeypatch):
    original = espeak_module.EspeakBackend.synthesize

    def flaky(self, text, voice):
        if "frog" in text:
            raise RuntimeError("engine exploded")
        return original(self, text, voice)

    monkeypatch.setattr(espeak_module.EspeakBackend, "synthesize", flaky)
    with pytest.raises(StageError, match=r"utterance s3 .*engine exploded"):
        synth(make_world(tmp_path / "w"), tmp_path / "out", FAST)
    assert not (tmp_path / "out" / ".completed").exists()


def test_committed_configs_load():
    paths = sorted((ROOT / "configs" / "synth").glob("*.yaml"))
    assert {p.name for p in paths} >= {"default.yaml", "piper.yaml"}
    for path in paths:
        load_config(SynthConfig, path)
    default = load_config(SynthConfig, ROOT / "configs" / "synth" / "default.yaml")
    backend = espeak_module.EspeakBackend()
    assert default.corpus_voices == backend.default_corpus_voices
    assert default.benchmark_voices == backend.default_benchmark_voices
    assert load_config(SynthConfig, ROOT / "configs" / "synth" / "piper.yaml").backend == "piper"


def test_cli(tmp_path, capsys):
    world = make_world(tmp_path / "w")
    assert main(["synth", str(world), "--out", str(tmp_path / "out"), "--workers", "1", "seed=3"]) == 0
    out = capsys.readouterr().out
    assert "corpus: 5 utterances" in out and "benchmark zr2021/lexical: 2 items, 8 files" in out
    assert yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["seed"] == 3
    (world / "text.jsonl").write_text('{"id": "a", "text": "Hi.", "kind": "story", "split": "holdout"}\n')
    assert main(["synth", str(world), "--out", str(tmp_path / "out2")]) == 2
    assert "text.jsonl:1: key 'split'" in capsys.readouterr().err
    assert main(["synth", "--show-config"]) == 0
    assert "corpus_voices" in capsys.readouterr().out


@pytest.mark.integration
def test_resume_after_the_parent_is_killed(tmp_path):
    from slmscale.world.config import WorldConfig
    from slmscale.world.generate import build_world

    world = build_world(tmp_path / "w", WorldConfig(stories=60, syntax_pairs_per_subtype=4, cloze_per_subtype=4,
                                                    lexical_nonwords_per_word=1, lexical_oov_words=10))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "slmscale", "synth", str(world), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.rglob("*.wav"))) < 150:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the parent and its workers, mid-run
    process.wait()
    assert not (out / ".completed").exists()
    done_before = len(list(out.rglob("*.wav")))
    assert subprocess.run(command, capture_output=True).returncode == 0
    summary = json.loads((out / "synth.json").read_text())
    assert summary["reused_files"] > 0 and summary["reused_files"] <= done_before
    assert summary["synthesized_files"] + summary["reused_files"] == len(list(out.rglob("*.wav")))
    for path in out.rglob("*.wav"):
        assert sf.info(path).frames > 0


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("piper") is None, reason="the optional piper extra is not installed")
def test_piper_backend_through_the_stage(tmp_path):
    config = load_config(SynthConfig, ROOT / "configs" / "synth" / "piper.yaml", ["workers=2"])
    out = synth(make_world(tmp_path / "w"), tmp_path / "out", config)
    utterances = read_manifest(out / "corpus")
    assert {u.speaker.split("@")[0] for u in utterances} == {"piper:joe"}
    assert not (out / "corpus" / "alignments.jsonl").exists()  # piper reports no word timings
    header, rows = _csv(out / "benchmarks" / "zr2021" / "lexical" / "dev" / "gold.csv")
    assert {r["voice"] for r in rows} == {"piper:joe@1.0", "piper:joe@1.15"}
    assert {r["filename"] for r in rows} == _wavs(out / "benchmarks" / "zr2021" / "lexical" / "dev")


def test_missing_input_and_an_empty_benchmark(tmp_path):
    with pytest.raises(StageError, match="no such file or directory"):
        synth(tmp_path / "nowhere", tmp_path / "out", FAST)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="no text.jsonl"):
        synth(tmp_path / "empty", tmp_path / "out", FAST)
    world = make_world(tmp_path / "w")
    (world / "benchmarks" / "lexical.jsonl").write_text("")
    out = synth(world, tmp_path / "out", FAST)
    assert not (out / "benchmarks" / "zr2021" / "lexical").exists()
    assert (out / "benchmarks" / "zr2021" / "syntactic" / "dev" / "gold.csv").is_file()


def test_every_config_field_is_documented():
    import dataclasses

    from slmscale.config import field_docs

    assert set(field_docs(SynthConfig)) == {f.name for f in dataclasses.fields(SynthConfig)}
