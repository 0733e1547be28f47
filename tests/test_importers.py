"""Corpus importers: LibriSpeech, a folder of audio, TinyStories (fixtures built in tmp_path)."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from slmscale.audio import import_audio, tinystories
from slmscale.audio.config import FolderImportConfig, LibriSpeechImportConfig, TinyStoriesImportConfig
from slmscale.audio.fixtures import make_audio_folder, make_librispeech_tree, make_tinystories_file
from slmscale.audio.folder import import_folder, utterance_ids
from slmscale.audio.librispeech import import_librispeech
from slmscale.audio.manifest import MANIFEST, read_manifest
from slmscale.audio.tinystories import import_tinystories, split_of
from slmscale.cli import main
from slmscale.config import ConfigError, field_docs, load_config
from slmscale.files import MARKER, StageError, read_jsonl

MS = 1e-3


def audio_path(corpus: Path, utt) -> Path:
    path = Path(utt.path)
    return path if path.is_absolute() else corpus / path


def summary(corpus: Path) -> dict:
    return json.loads((corpus / "import.json").read_text())


def assert_nothing_written(out: Path) -> None:
    assert not (out / MANIFEST).exists() and not (out / MARKER).exists() and not (out / "import.json").exists()


# --- LibriSpeech --------------------------------------------------------------------------------

def test_librispeech_subset_referenced_in_place(tmp_path):
    fake = make_librispeech_tree(tmp_path / "LibriSpeech" / "train-clean-100")
    out = tmp_path / "corpus"
    info = import_librispeech(fake.root, out, LibriSpeechImportConfig())
    utts = {u.id: u for u in read_manifest(out)}
    assert set(utts) == set(fake.good) and len(utts) == 12
    for uid, expected in fake.good.items():
        utt = utts[uid]
        assert Path(utt.path).is_absolute() and Path(utt.path) == expected.path.absolute()
        assert sf.info(utt.path).samplerate == utt.sample_rate == 16000
        assert abs(utt.duration_s - expected.duration_s) < MS
        assert (utt.speaker, utt.split, utt.text) == (expected.speaker, "train", expected.text)
    assert not (out / "audio").exists()
    assert info == summary(out)
    assert info["referenced_in_place"] == 12 and info["converted"] == 0 and info["skipped"] == []
    assert info["subsets"] == {"train-clean-100": "train"}
    assert info["splits"]["train"]["speakers"] == 2
    assert abs(info["hours"] * 3600 - sum(a.duration_s for a in fake.good.values())) < 0.01
    assert yaml.safe_load((out / "config.yaml").read_text())["copy"] is False
    assert (out / MARKER).is_file() and not (out / ".importing").exists()


def test_librispeech_copy_writes_wavs_inside(tmp_path):
    fake = make_librispeech_tree(tmp_path / "dev-clean", speakers=1, chapters=1, utterances=3)
    out = tmp_path / "corpus"
    info = import_librispeech(fake.root, out, LibriSpeechImportConfig(copy=True))
    for utt in read_manifest(out):
        assert utt.path == f"audio/valid/{utt.id}.wav" and utt.split == "valid"
        data, rate = sf.read(out / utt.path)
        assert rate == 16000 and data.ndim == 1
        assert abs(len(data) / rate - fake.good[utt.id].duration_s) < MS
    assert info["converted"] == 3 and info["referenced_in_place"] == 0
    assert info["conversions"]["FLAC PCM_16 -> WAV PCM_16"]["count"] == 3


def test_librispeech_stereo_44k_is_converted_and_recorded(tmp_path):
    fake = make_librispeech_tree(tmp_path / "test-other", speakers=1, chapters=2, utterances=2,
                                 sample_rate=44100, channels=2)
    out = tmp_path / "corpus"
    info = import_librispeech(fake.root, out, LibriSpeechImportConfig(workers=1))
    for utt in read_manifest(out):
        assert not Path(utt.path).is_absolute() and utt.split == "test"
        file = sf.info(str(out / utt.path))
        assert (file.samplerate, file.channels) == (16000, 1)
        assert abs(utt.duration_s - fake.good[utt.id].duration_s) < MS
        assert abs(file.frames / 16000 - utt.duration_s) < 1e-6
    for note in ("resampled 44100 -> 16000 Hz", "down-mixed 2 channels to mono"):
        assert info["conversions"][note]["count"] == 4
        assert 0 < len(info["conversions"][note]["examples"]) <= 5
        assert all(Path(p).is_file() for p in info["conversions"][note]["examples"])


def test_librispeech_folder_of_subsets_maps_splits(tmp_path):
    top = tmp_path / "LibriSpeech"
    make_librispeech_tree(top / "train-clean-100", speakers=1, chapters=1, utterances=2, seed=1)
    dev = make_librispeech_tree(top / "dev-clean", speakers=1, chapters=1, utterances=2, seed=2)
    make_librispeech_tree(top / "test-clean", speakers=1, chapters=1, utterances=2, seed=3)
    (top / "SPEAKERS.TXT").write_text("; not used\n")
    # Real LibriSpeech ids are unique across subsets; give dev and test their own speakers.
    for name, speaker in (("dev-clean", "2"), ("test-clean", "3")):
        (top / name / "19").rename(top / name / speaker)
        for path in sorted((top / name / speaker).rglob("19-*")):
            path.rename(path.with_name(path.name.replace("19-", f"{speaker}-", 1)))
        trans = next((top / name / speaker).rglob("*.trans.txt"))
        trans.write_text(trans.read_text().replace("19-", f"{speaker}-"))
    out = tmp_path / "corpus"
    info = import_librispeech(top, out, LibriSpeechImportConfig())
    splits = {u.id: u.split for u in read_manifest(out)}
    assert sorted(splits.values()) == ["test", "test", "train", "train", "valid", "valid"]
    assert all(split == "valid" for uid, split in splits.items() if uid.startswith("2-"))
    assert info["subsets"] == {"dev-clean": "valid", "test-clean": "test", "train-clean-100": "train"}
    assert len(dev.good) == 2
    with pytest.raises(StageError, match="single subset"):
        import_librispeech(top, tmp_path / "other", LibriSpeechImportConfig(split="train"))


def test_librispeech_split_forced_or_required(tmp_path):
    fake = make_librispeech_tree(tmp_path / "my-subset", speakers=1, chapters=1, utterances=2)
    with pytest.raises(StageError, match="--split"):
        import_librispeech(fake.root, tmp_path / "a", LibriSpeechImportConfig())
    assert not (tmp_path / "a").exists()
    import_librispeech(fake.root, tmp_path / "b", LibriSpeechImportConfig(split="valid"))
    assert {u.split for u in read_manifest(tmp_path / "b")} == {"valid"}
    with pytest.raises(StageError, match="neither a LibriSpeech subset"):
        import_librispeech(tmp_path / "b", tmp_path / "c", LibriSpeechImportConfig())


def test_librispeech_defects_are_all_reported_and_nothing_written(tmp_path):
    fake = make_librispeech_tree(tmp_path / "train-clean-100", with_defects=True)
    out = tmp_path / "corpus"
    with pytest.raises(StageError) as caught:
        import_librispeech(fake.root, out, LibriSpeechImportConfig())
    message = str(caught.value)
    assert "6 problems" in message and "--skip-bad" in message
    for kind, (path, uid) in fake.defects.items():
        line = next((line for line in message.splitlines() if uid in line), "")
        assert str(path.absolute()) in line, kind
    expected_words = {"empty_file": "empty file", "garbage": "not readable", "zero_length": "zero-length",
                      "missing_transcript": "no transcript line", "orphan_transcript": "no audio file",
                      "empty_transcript": "empty transcript"}
    for kind, words in expected_words.items():
        assert any(words in line and fake.defects[kind][1] in line for line in message.splitlines()), kind
    assert not out.exists()


def test_librispeech_skip_bad_lists_the_skipped(tmp_path):
    fake = make_librispeech_tree(tmp_path / "train-clean-100", with_defects=True)
    out = tmp_path / "corpus"
    info = import_librispeech(fake.root, out, LibriSpeechImportConfig(skip_bad=True))
    assert {u.id for u in read_manifest(out)} == set(fake.good)
    skipped = info["skipped"]
    assert len(skipped) == 6
    for kind, (path, uid) in fake.defects.items():
        assert any(str(path.absolute()) in s["path"] and uid in s["path"] + s["problem"] for s in skipped), kind


def test_librispeech_rerun_skips_and_refuses_other_options(tmp_path):
    fake = make_librispeech_tree(tmp_path / "train-clean-100", speakers=1, chapters=1)
    out = tmp_path / "corpus"
    first = import_librispeech(fake.root, out, LibriSpeechImportConfig())
    stamp = (out / MANIFEST).stat().st_mtime_ns
    assert import_librispeech(fake.root, out, LibriSpeechImportConfig()) == first
    assert (out / MANIFEST).stat().st_mtime_ns == stamp
    with pytest.raises(StageError, match="different config"):
        import_librispeech(fake.root, out, LibriSpeechImportConfig(copy=True))


def test_librispeech_resume_reconverts_only_the_missing_wav(tmp_path):
    fake = make_librispeech_tree(tmp_path / "train-clean-100", speakers=1, chapters=2, utterances=2,
                                 sample_rate=22050)
    out = tmp_path / "corpus"
    import_librispeech(fake.root, out, LibriSpeechImportConfig())
    wavs = sorted((out / "audio" / "train").glob("*.wav"))
    assert len(wavs) == 4
    stamps = {w: w.stat().st_mtime_ns for w in wavs}
    wavs[1].unlink()
    (out / MARKER).unlink()
    info = import_librispeech(fake.root, out, LibriSpeechImportConfig())
    assert info["converted"] == 4 and info["reused_from_earlier_run"] == 3
    assert wavs[1].is_file() and (out / MARKER).is_file()
    assert all(w.stat().st_mtime_ns == stamps[w] for w in wavs if w != wavs[1])
    assert len(read_manifest(out)) == 4


def test_librispeech_verify_in_place_decodes_referenced_files(tmp_path):
    fake = make_librispeech_tree(tmp_path / "train-clean-100", speakers=1, chapters=1, utterances=3)
    cut = fake.good["19-198-0001"].path
    whole = cut.read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])  # the header still reads; the data does not
    info = import_librispeech(fake.root, tmp_path / "trusting", LibriSpeechImportConfig())
    assert info["utterances"] == 3  # only the header of a file referenced in place is read by default
    out = tmp_path / "verified"
    with pytest.raises(StageError, match="19-198-0001.flac: not readable"):
        import_librispeech(fake.root, out, LibriSpeechImportConfig(verify_in_place=True))
    assert not out.exists()
    info = import_librispeech(fake.root, out, LibriSpeechImportConfig(verify_in_place=True, skip_bad=True))
    assert info["utterances"] == 2 and info["skipped"][0]["path"] == str(cut.absolute())


def test_output_dir_of_something_else_is_refused(tmp_path):
    fake = make_librispeech_tree(tmp_path / "train-clean-100", speakers=1, chapters=1, utterances=1)
    out = tmp_path / "busy"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(StageError, match="not empty"):
        import_librispeech(fake.root, out, LibriSpeechImportConfig())
    assert (out / "mine.txt").read_text() == "keep me"
    with pytest.raises(StageError, match="inside the source"):
        import_librispeech(fake.root, fake.root / "corpus", LibriSpeechImportConfig())


# --- folder --------------------------------------------------------------------------------------

def test_folder_mixed_formats(tmp_path):
    fake = make_audio_folder(tmp_path / "recordings")
    out = tmp_path / "corpus"
    info = import_folder(fake.root, out, FolderImportConfig(split="valid"))
    utts = read_manifest(out)
    by_id = {u.id: u for u in utts}
    expected_ids = {"alice/one.wav": "alice-one", "alice/two.flac": "alice-two", "bob/three.flac": "bob-three",
                    "bob/three.ogg": "bob-three-2", "bob/session 2/four.wav": "bob-session_2-four",
                    "five.aiff": "five"}
    assert set(by_id) == set(expected_ids.values())
    for rel, uid in expected_ids.items():
        utt, expected = by_id[uid], fake.good[rel]
        assert utt.path == f"audio/valid/{uid}.wav" and utt.split == "valid"
        data, rate = sf.read(out / utt.path)
        assert rate == 16000 and data.ndim == 1 and np.abs(data).max() > 0.01
        assert abs(utt.duration_s - expected.duration_s) < MS
        assert (utt.speaker, utt.text) == (expected.speaker, expected.text)
    assert by_id["five"].speaker == "recordings"
    assert by_id["bob-session_2-four"].text == "line one line two"
    assert by_id["alice-two"].text == "a second file"
    conversions = info["conversions"]
    assert conversions["down-mixed 2 channels to mono"]["count"] == 3
    assert conversions["resampled 44100 -> 16000 Hz"]["count"] == 2
    assert conversions["resampled 8000 -> 16000 Hz"]["examples"] == [str(fake.good["five.aiff"].path.absolute())]
    assert conversions["OGG VORBIS -> WAV PCM_16"]["count"] == 1
    assert "alice/one.wav" not in json.dumps(conversions)  # already 16 kHz mono PCM16: nothing changed
    assert info["empty_text"] == 3 and info["ignored_files"]["count"] == 1


def test_folder_defects_reported_then_skipped(tmp_path):
    fake = make_audio_folder(tmp_path / "src", with_defects=True)
    out = tmp_path / "corpus"
    code = main(["corpus", "import-folder", str(fake.root), "--out", str(out)])
    assert code == 2 and not out.exists()
    with pytest.raises(StageError) as caught:
        import_folder(fake.root, out, FolderImportConfig())
    for kind, (path, _) in fake.defects.items():
        assert str(path.absolute()) in str(caught.value), kind
    assert "NaN" in str(caught.value)
    info = import_folder(fake.root, out, FolderImportConfig(skip_bad=True))
    assert len(read_manifest(out)) == len(fake.good)
    assert sorted(s["path"] for s in info["skipped"]) == sorted(str(p.absolute()) for p, _ in fake.defects.values())


def test_folder_damage_found_while_converting_leaves_no_manifest(tmp_path):
    fake = make_audio_folder(tmp_path / "src")
    whole = (fake.root / "alice" / "two.flac").read_bytes()
    (fake.root / "alice" / "two.flac").write_bytes(whole[: len(whole) // 2])  # header intact, data cut
    out = tmp_path / "corpus"
    with pytest.raises(StageError, match="two.flac") as caught:
        import_folder(fake.root, out, FolderImportConfig(workers=1))
    assert "rerun resumes" in str(caught.value)
    assert_nothing_written(out)
    converted = sorted((out / "audio" / "train").glob("*.wav"))
    assert len(converted) == len(fake.good) - 1
    info = import_folder(fake.root, out, FolderImportConfig(workers=1, skip_bad=True))
    assert info["reused_from_earlier_run"] == len(fake.good) - 1
    assert [s["path"] for s in info["skipped"]] == [str((fake.root / "alice" / "two.flac").absolute())]
    assert len(read_manifest(out)) == len(fake.good) - 1


def test_folder_transcripts_file(tmp_path):
    fake = make_audio_folder(tmp_path / "src")
    listing = tmp_path / "text.txt"
    listing.write_text("bob/three.ogg  an ogg file\n./five A TOP FILE\n\nghost/none SOMETHING\n")
    with pytest.raises(StageError, match="ghost/none, which matches no audio"):
        import_folder(fake.root, tmp_path / "a", FolderImportConfig(transcripts=listing))
    assert not (tmp_path / "a").exists()
    listing.write_text("bob/three.ogg  an ogg file\n./five A TOP FILE\nalice/one replaces the txt\n")
    import_folder(fake.root, tmp_path / "b", FolderImportConfig(transcripts=listing))
    texts = {u.id: u.text for u in read_manifest(tmp_path / "b")}
    assert texts["bob-three-2"] == "an ogg file" and texts["five"] == "A TOP FILE"
    assert texts["alice-one"] == "replaces the txt" and texts["alice-two"] == "a second file"
    assert texts["bob-three"] == ""


def test_folder_ids_are_unique_and_readable():
    rels = [Path("a b/x.wav"), Path("a b/x.flac"), Path("a_b/x.wav"), Path("a_b/x-2.wav"), Path("é/y.wav")]
    ids = utterance_ids(rels)
    assert ids == ["a_b-x", "a_b-x-3", "a_b-x-4", "a_b-x-2", "_-y"]
    assert len(set(ids)) == len(ids)


def test_parallel_conversion_matches_serial(tmp_path, monkeypatch):
    fake = make_audio_folder(tmp_path / "src")
    import_folder(fake.root, tmp_path / "serial", FolderImportConfig(workers=1))
    pools = []

    class CountedPool(ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(import_audio, "MIN_JOBS_FOR_POOL", 1)
    monkeypatch.setattr(import_audio, "ProcessPoolExecutor", CountedPool)
    import_folder(fake.root, tmp_path / "pool", FolderImportConfig(workers=2))
    assert len(pools) == 1  # one pool, shared by the header and conversion passes
    serial, pooled = read_manifest(tmp_path / "serial"), read_manifest(tmp_path / "pool")
    assert serial == pooled
    for utt in serial:
        assert (tmp_path / "serial" / utt.path).read_bytes() == (tmp_path / "pool" / utt.path).read_bytes()


# --- TinyStories ---------------------------------------------------------------------------------

def test_tinystories_format_blank_and_paragraphs(tmp_path):
    source = tmp_path / "TinyStories-valid.txt"
    expected = make_tinystories_file(source, 12, blank_every=4, odd_characters=True)
    assert "\n\n" in source.read_text() and source.read_text().endswith("<|endoftext|>\n")
    out = tmp_path / "text"
    info = import_tinystories(source, out, TinyStoriesImportConfig(split="valid"))
    rows = read_jsonl(out / "text.jsonl")
    kept = [(i, text) for i, text in enumerate(expected) if text]
    assert [r["text"] for r in rows] == [text for _, text in kept]
    assert [r["id"] for r in rows] == [f"TinyStories-valid-{i:07d}" for i, _ in kept]
    assert all(list(r) == ["id", "text", "kind", "split"] and r["kind"] == "story" and r["split"] == "valid"
               for r in rows)
    assert all("\n" not in r["text"] and "  " not in r["text"] for r in rows)
    assert info["stories"] == 9 and info["empty_stories_skipped"] == 3
    assert info["non_ascii"]["stories"] == 1 and info["non_ascii"]["example_ids"] == [rows[1]["id"]]
    assert "café" in rows[1]["text"]
    assert info["control_characters"]["most_common"][0]["codepoint"] == "U+200B"
    assert yaml.safe_load((out / "config.yaml").read_text())["split"] == "valid"


def test_tinystories_without_trailing_separator_and_glued_separator(tmp_path):
    source = tmp_path / "stories.txt"
    source.write_text("First story.\n<|endoftext|>\nSecond\nstory.<|endoftext|>Third story.")
    import_tinystories(source, tmp_path / "out", TinyStoriesImportConfig(split="train"))
    rows = read_jsonl(tmp_path / "out" / "text.jsonl")
    assert [r["text"] for r in rows] == ["First story.", "Second story.", "Third story."]


def test_tinystories_streaming_limit_and_deterministic_splits(tmp_path, monkeypatch):
    monkeypatch.setattr(tinystories, "BLOCK_BYTES", 4096)
    source = tmp_path / "TinyStoriesV2-GPT4-train.txt"
    expected = make_tinystories_file(source, 3000, blank_every=50)
    fractions = (0.8, 0.1, 0.1)
    full = import_tinystories(source, tmp_path / "full", TinyStoriesImportConfig(split_fractions=fractions, seed=3))
    rows = read_jsonl(tmp_path / "full" / "text.jsonl")
    assert len(rows) == full["stories"] == sum(1 for t in expected if t) == 2940
    shares = [full["splits"][s]["stories"] / len(rows) for s in ("train", "valid", "test")]
    assert np.allclose(shares, fractions, atol=0.03)
    assert full["bytes_read"] == source.stat().st_size and not full["limit_reached"]

    cfg = TinyStoriesImportConfig(split_fractions=fractions, seed=3, limit=100)
    limited = import_tinystories(source, tmp_path / "limited", cfg)
    first = read_jsonl(tmp_path / "limited" / "text.jsonl")
    assert first == rows[:100] and limited["limit_reached"]
    assert limited["bytes_read"] < source.stat().st_size / 10  # stopped reading early
    again = import_tinystories(source, tmp_path / "again", cfg)
    assert read_jsonl(tmp_path / "again" / "text.jsonl") == first and again["stories"] == 100
    other_seed = import_tinystories(source, tmp_path / "seed4", TinyStoriesImportConfig(split_fractions=fractions,
                                                                                         seed=4, limit=100))
    assert other_seed["stories"] == 100
    assert [r["split"] for r in read_jsonl(tmp_path / "seed4" / "text.jsonl")] != [r["split"] for r in first]
    assert [split_of(i, 3, fractions) for i in range(5)] == [split_of(i, 3, fractions) for i in range(5)]


def test_tinystories_blocks_cut_anywhere_and_invalid_bytes(tmp_path, monkeypatch):
    source = tmp_path / "stories.txt"
    make_tinystories_file(source, 40, blank_every=7, odd_characters=True)
    source.write_bytes(source.read_bytes() + b"A story with a bad byte \xff here.\n<|endoftext|>\n")
    whole = import_tinystories(source, tmp_path / "whole", TinyStoriesImportConfig())
    monkeypatch.setattr(tinystories, "BLOCK_BYTES", 5)  # cuts separators and multi-byte characters
    import_tinystories(source, tmp_path / "cut", TinyStoriesImportConfig())
    rows = read_jsonl(tmp_path / "whole" / "text.jsonl")
    assert read_jsonl(tmp_path / "cut" / "text.jsonl") == rows
    assert rows[-1]["text"] == "A story with a bad byte \ufffd here."
    assert whole["invalid_utf8_bytes"] == 1 and whole["stories"] == 41 - 5


def test_tinystories_bad_input(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="split_fractions"):
        import_tinystories(tmp_path / "x.txt", tmp_path / "o", TinyStoriesImportConfig(split_fractions=(0.5, 0.4)))
    with pytest.raises(ConfigError, match="limit"):
        import_tinystories(tmp_path / "x.txt", tmp_path / "o", TinyStoriesImportConfig(limit=0))
    with pytest.raises(StageError, match="no such file"):
        import_tinystories(tmp_path / "x.txt", tmp_path / "o", TinyStoriesImportConfig())
    blank = tmp_path / "blank.txt"
    blank.write_text("<|endoftext|>\n \n<|endoftext|>\n")
    with pytest.raises(StageError, match="no stories"):
        import_tinystories(blank, tmp_path / "o", TinyStoriesImportConfig())
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr(tinystories, "MAX_STORY_CHARS", 1000)
    wrong = tmp_path / "book.txt"
    wrong.write_text("a line of a book with no separators\n" * 100)
    with pytest.raises(StageError, match="not a TinyStories"):
        import_tinystories(wrong, tmp_path / "o", TinyStoriesImportConfig())
    assert not (tmp_path / "o").exists()


# --- CLI and configs -----------------------------------------------------------------------------

def test_cli_import_librispeech(tmp_path, capsys):
    fake = make_librispeech_tree(tmp_path / "LibriSpeech" / "train-clean-100", speakers=1, chapters=1)
    out = tmp_path / "corpus"
    argv = ["corpus", "import-librispeech", str(fake.root), "--out", str(out), "--copy", "workers=1"]
    assert main(argv) == 0
    assert {u.id for u in read_manifest(out)} == set(fake.good)
    assert yaml.safe_load((out / "config.yaml").read_text()) == {
        "split": None, "copy": True, "skip_bad": False, "verify_in_place": False, "workers": 1}
    assert "3 utterances" in capsys.readouterr().out
    assert main(argv) == 0  # completed: skipped
    assert main(["corpus", "import-librispeech", str(fake.root)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["corpus", "import-librispeech", "--show-config"]) == 0
    assert "verify_in_place" in capsys.readouterr().out


def test_cli_import_tinystories_and_folder(tmp_path):
    source = tmp_path / "TinyStories-train.txt"
    make_tinystories_file(source, 30)
    assert main(["corpus", "import-tinystories", str(source), "--out", str(tmp_path / "ts"), "--limit", "7",
                 "--split-fractions", "0.5,0.25,0.25", "--seed", "2"]) == 0
    rows = read_jsonl(tmp_path / "ts" / "text.jsonl")
    assert len(rows) == 7 and [r["split"] for r in rows] == [split_of(i, 2, (0.5, 0.25, 0.25)) for i in range(7)]
    with pytest.raises(SystemExit):  # argparse: --split and --split-fractions exclude each other
        main(["corpus", "import-tinystories", str(source), "--out", str(tmp_path / "x"),
              "--split", "valid", "--split-fractions", "1,0,0"])
    fake = make_audio_folder(tmp_path / "src")
    assert main(["corpus", "import-folder", str(fake.root), "--out", str(tmp_path / "f"), "--split", "test"]) == 0
    assert {u.split for u in read_manifest(tmp_path / "f")} == {"test"}


@pytest.mark.parametrize("cls", [LibriSpeechImportConfig, FolderImportConfig, TinyStoriesImportConfig])
def test_configs_documented_and_loadable(cls, tmp_path):
    from dataclasses import fields
    assert set(field_docs(cls)) == {f.name for f in fields(cls)}
    path = tmp_path / "cfg.yaml"
    from slmscale.config import to_dict
    path.write_text(yaml.safe_dump(to_dict(cls())))
    assert load_config(cls, path) == cls()
