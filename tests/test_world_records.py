"""The world's file formats (world/records.py): round trips, the writer's checks, and bad
input named by file, line and key, as synth, the text arm and the evaluator read it."""

from __future__ import annotations

import json
import re

import pytest

from slmscale.files import StageError, write_jsonl
from slmscale.world.config import WorldConfig
from slmscale.world.generate import build_world, make_world
from slmscale.world.records import (BENCHMARK_DIR, BENCHMARK_FILES, TEXT_FILE, TextRecord, read_benchmark,
                                    read_benchmark_lines, read_text_records, write_benchmark, write_text_records)

RECORDS = [TextRecord("story-00001", "A dog ran. It was happy.", "story", "train"),
           TextRecord("sentences-00001", "The cat sat. A bird sang.", "sentence", "valid"),
           TextRecord("text-story-00001", "Tom found a ball.", "story", "test", spoken=False)]
LEXICAL = [{"id": "l1", "positive": "cat", "negative": "gat", "type": "lexical", "subtype": "in_vocabulary",
            "positive_phones": "K AE1 T", "negative_phones": "G AE1 T", "frequency": 12, "length": 3}]
SYNTAX = [{"id": "x1", "positive": "The dog runs.", "negative": "The dog run.", "type": "agreement",
           "subtype": "subject_verb", "form": "present", "longer": "same"}]


def test_text_records_round_trip_and_bytes(tmp_path):
    path = write_text_records(tmp_path / TEXT_FILE, RECORDS)
    assert read_text_records(path) == RECORDS
    lines = path.read_text().splitlines()
    # `spoken` only where false: a world without text-only records has the four keys alone.
    assert [list(json.loads(line)) for line in lines] == [["id", "text", "kind", "split"]] * 2 + \
        [["id", "text", "kind", "split", "spoken"]]
    assert path.read_bytes() == b"".join(json.dumps(r.to_row(), ensure_ascii=False).encode() + b"\n"
                                         for r in RECORDS)
    assert read_text_records(path)[1].where == f"{path}:2 (id 'sentences-00001')"


def test_benchmark_round_trip_keeps_every_key_in_order(tmp_path):
    for name, items in (("lexical.jsonl", LEXICAL), ("syntax.jsonl", SYNTAX)):
        path = write_benchmark(tmp_path / name, items)
        assert read_benchmark(path) == items
        assert [list(item) for item in read_benchmark(path)] == [list(item) for item in items]
        assert read_benchmark_lines(path) == [(1, items[0])]
    empty = write_benchmark(tmp_path / "topic_cloze.jsonl", [])  # a world may have no items of a kind
    assert empty.read_bytes() == b"" and read_benchmark(empty) == []


def test_the_world_builder_writes_what_the_readers_read(tmp_path):
    config = WorldConfig(stories=12, text_only_stories=3, syntax_pairs_per_subtype=2, cloze_per_subtype=2,
                         lexical_nonwords_per_word=1, lexical_oov_words=2)
    out = build_world(tmp_path / "w", config)
    world = make_world(config)
    assert all(world.benchmarks.values()) and any(not r.get("spoken", True) for r in world.records)
    assert [r.to_row() for r in read_text_records(out / TEXT_FILE)] == world.records
    for name in BENCHMARK_FILES:
        assert read_benchmark(out / BENCHMARK_DIR / name) == world.benchmarks[name.removesuffix(".jsonl")]


GOOD_TEXT = {"id": "a", "text": "A dog ran.", "kind": "story", "split": "train"}
GOOD_PAIR = LEXICAL[0]


@pytest.mark.parametrize("change, strict, needle", [
    ({"split": "dev"}, True, "text.jsonl:2: key 'split' is 'dev', not one of train, valid, test"),
    ({"kind": "poem"}, True, "text.jsonl:2: key 'kind' is 'poem', not one of story, sentence"),
    ({"kind": None}, True, "text.jsonl:2: missing key 'kind'"),
    ({"text": 7}, False, "text.jsonl:2: key 'text' must be a string, got 7"),
    ({"text": " "}, False, "text.jsonl:2: key 'text' is empty"),
    ({"id": "a"}, False, "text.jsonl:2: duplicate id 'a' (first on line 1)"),
    ({"spoken": "no"}, False, "text.jsonl:2: key 'spoken' must be true or false, got 'no'"),
    ({"split": None}, False, "text.jsonl:2: missing key 'split'"),
])
def test_bad_text_records_are_named(tmp_path, change, strict, needle):
    second = {**GOOD_TEXT, "id": "b", **change}
    path = tmp_path / TEXT_FILE
    write_jsonl(path, [GOOD_TEXT, {k: v for k, v in second.items() if v is not None}])
    with pytest.raises(StageError, match=re.escape(needle)):
        read_text_records(path, strict=strict)


def test_a_text_arm_file_needs_no_kind(tmp_path):
    path = tmp_path / TEXT_FILE
    write_jsonl(path, [{"id": "a", "text": "hi", "split": "train"}])
    assert read_text_records(path, strict=False) == [TextRecord("a", "hi", "", "train")]
    with pytest.raises(StageError, match=re.escape("text.jsonl:1: missing key 'kind'")):
        read_text_records(path)
    path.write_text("\n")
    with pytest.raises(StageError, match=re.escape("text.jsonl: no records")):
        read_text_records(path, strict=False)


@pytest.mark.parametrize("change, strict, needle", [
    ({"negative_phones": None}, True, "lexical.jsonl:2: missing key 'negative_phones'"),
    ({"positive_phones": "K AE1 TT"}, False, "lexical.jsonl:2: key 'positive_phones'"),
    ({"frequency": "often"}, False, "lexical.jsonl:2: key 'frequency' must be a non-negative integer"),
    ({"length": -1}, True, "lexical.jsonl:2: key 'length' must be a non-negative integer"),
    ({"negative": ""}, False, "lexical.jsonl:2: key 'negative' is empty"),
    ({"id": "l1"}, False, "lexical.jsonl:2: duplicate id 'l1' (first on line 1)"),
])
def test_bad_benchmark_items_are_named(tmp_path, change, strict, needle):
    second = {**GOOD_PAIR, "id": "l2", **change}
    path = tmp_path / "lexical.jsonl"
    write_jsonl(path, [GOOD_PAIR, {k: v for k, v in second.items() if v is not None}])
    with pytest.raises(StageError, match=re.escape(needle)):
        read_benchmark(path, strict=strict)


def test_any_pairs_file_reads_leniently_but_only_world_files_strictly(tmp_path):
    path = tmp_path / "mine.jsonl"
    write_jsonl(path, [{"id": "p1", "positive": "A dog.", "negative": "Dog a."}])
    assert read_benchmark(path, strict=False) == [{"id": "p1", "positive": "A dog.", "negative": "Dog a."}]
    with pytest.raises(StageError, match="mine.jsonl: not a world benchmark file"):
        read_benchmark(path)
    syntax = tmp_path / "syntax.jsonl"
    write_jsonl(syntax, [{"id": "p1", "positive": "A dog.", "negative": "Dog a."}])
    with pytest.raises(StageError, match=re.escape("syntax.jsonl:1: missing key 'type'")):
        read_benchmark(syntax)


def test_the_writers_refuse_what_the_readers_would_and_write_nothing(tmp_path):
    bad = [RECORDS[0], TextRecord("story-00001", "Again.", "story", "train")]
    with pytest.raises(StageError, match=re.escape("text.jsonl:2: duplicate id 'story-00001'")):
        write_text_records(tmp_path / TEXT_FILE, bad)
    with pytest.raises(StageError, match=re.escape("text.jsonl:1: key 'split' is 'dev'")):
        write_text_records(tmp_path / TEXT_FILE, [TextRecord("a", "Hi.", "story", "dev")])
    with pytest.raises(StageError, match=re.escape("syntax.jsonl:1: missing key 'subtype'")):
        write_benchmark(tmp_path / "syntax.jsonl", [{k: v for k, v in SYNTAX[0].items() if k != "subtype"}])
    assert not list(tmp_path.iterdir())
