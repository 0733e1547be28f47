"""Atomic outputs and `.completed` markers."""

from __future__ import annotations

import pytest

from slmscale.files import (StageError, atomic_dir, atomic_file, check_output_dir, mark_completed,
                            read_csv_rows, read_json, read_jsonl, write_json, write_jsonl)


def test_atomic_file_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_file(target) as handle:
        handle.write("whole")
    assert target.read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_completed_marker_skip_and_conflict(tmp_path):
    assert check_output_dir(tmp_path / "new", "abc") is False
    mark_completed(tmp_path, "abc", items=3)
    assert check_output_dir(tmp_path, "abc") is True
    with pytest.raises(StageError, match="different config"):
        check_output_dir(tmp_path, "xyz")


def test_jsonl_round_trip_and_errors_name_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"a": "é"}]) == 2
    assert read_jsonl(path) == [{"a": 1}, {"a": "é"}]
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(StageError, match=r"x\.jsonl:2"):
        read_jsonl(path)
    with pytest.raises(StageError, match="cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")


def test_json_and_csv_readers_and_errors_name_the_file(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    write_json(good, {"a": [1, 2]})
    assert read_json(good) == {"a": [1, 2]}
    bad.write_text('{"a": ')
    with pytest.raises(StageError, match=r"bad\.json: not valid JSON .*; start over$"):
        read_json(bad, hint="; start over")
    table = tmp_path / "t.csv"
    table.write_text("run_id,loss\nr1,2.5\nr2,\n")
    assert read_csv_rows(table) == (["run_id", "loss"], [{"run_id": "r1", "loss": "2.5"},
                                                        {"run_id": "r2", "loss": ""}])


def test_outputs_get_ordinary_permissions(tmp_path):
    import os
    with atomic_file(tmp_path / "f.txt") as handle:
        handle.write("x")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "a").write_text("1")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_safetensors_outputs_get_ordinary_permissions_too(tmp_path):
    # safetensors creates its files 0600; a model dir must be as readable as the rest of a run.
    import os

    from slmscale.lm.hf import save_pretrained
    from slmscale.lm.model import Llama, ModelShape
    save_pretrained(Llama(ModelShape(vocab_size=12, context=8, layers=1, width=8, heads=1, ffn_hidden=16)),
                    tmp_path / "run")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "run" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
