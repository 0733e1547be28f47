"""`slmscale units import-packed`: the paper pipeline's packed units (shard-*/audio.bin, audio.len,
samples.jsonl, meta.json with sha256 checksums) as a units dir."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from slmscale.cli import main
from slmscale.config import ConfigError
from slmscale.files import StageError
from slmscale.lm.config import TrainConfig
from slmscale.lm.trainer import train
from slmscale.units.config import PackedImportConfig
from slmscale.units.packed_fixtures import make_packed_dir, random_utterances, write_packed_shard
from slmscale.units.packed_import import hashed_split, import_packed
from slmscale.units.shards import check_units_dir, open_split

SPLIT = PackedImportConfig(valid_fraction=0.15, test_fraction=0.15)


def packed_utterances(root) -> dict[str, np.ndarray]:
    """id -> the unit stream (EOS included) as the shards hold it, read here from the raw files."""
    out = {}
    for shard in sorted(root.glob("shard-*")):
        codes = np.fromfile(shard / "audio.bin", dtype=np.int16)
        offsets = np.concatenate(([0], np.cumsum(np.fromfile(shard / "audio.len", dtype=np.int64))))
        ids = [json.loads(line)["id"] for line in (shard / "samples.jsonl").read_text().splitlines()]
        out.update({i: codes[offsets[n]:offsets[n + 1]] for n, i in enumerate(ids)})
    return out


def test_units_lengths_and_eos_positions_come_through_unchanged(tmp_path):
    src = make_packed_dir(tmp_path / "packed", shards=3, per_shard=40)
    meta = import_packed(src, tmp_path / "units", SPLIT)
    assert (meta["vocab_size"], meta["eos_id"], meta["pad_id"]) == (502, 500, 501)
    check_units_dir(tmp_path / "units")  # EOS after every utterance, counts, ranges
    expected = packed_utterances(src)
    seen = {}
    for split in meta["splits"]:
        data = open_split(tmp_path / "units", split)
        for index, utt_id in enumerate(data.ids):
            seen[utt_id] = split
            stream = data.utterance(index, with_eos=True)
            assert np.array_equal(stream, expected[utt_id].astype(np.uint16)), utt_id
            assert stream[-1] == 500 and (stream[:-1] != 500).all()  # EOS where it was, only there
        order = [i for i in expected if i in set(data.ids)]
        assert data.ids == order  # a split keeps the shards' order
    assert seen.keys() == expected.keys()
    assert sum(meta["splits"][s]["tokens"] for s in meta["splits"]) == sum(len(v) for v in expected.values())
    assert {split: sum(1 for s in seen.values() if s == split) for split in meta["splits"]} == \
        {split: meta["splits"][split]["utterances"] for split in meta["splits"]}
    # Audio seconds from samples.jsonl source_duration (0.05 s per unit in the fixture).
    units = meta["splits"]["test"]["tokens"] - meta["splits"]["test"]["utterances"]
    assert meta["splits"]["test"]["audio_seconds"] == pytest.approx(units * 0.05)


def test_the_split_of_an_id_does_not_depend_on_the_shards(tmp_path):
    src = make_packed_dir(tmp_path / "packed", shards=2, per_shard=60)
    import_packed(src, tmp_path / "a", SPLIT)
    merged = tmp_path / "merged"  # the same utterances in one shard, in reverse order
    utterances = {i: u[:-1] for i, u in reversed(list(packed_utterances(src).items()))}
    write_packed_shard(merged / "shard-00000", utterances)
    import_packed(merged, tmp_path / "b", SPLIT)
    for split in ("train", "valid", "test"):
        a, b = (set(open_split(tmp_path / d, split).ids) for d in ("a", "b"))
        assert a == b and a and all(hashed_split(i, SPLIT) == split for i in a)
    fractions = {s: len(open_split(tmp_path / "a", s).ids) / 120 for s in ("valid", "test")}
    assert all(0.05 < f < 0.3 for f in fractions.values()), fractions


def test_splits_by_lists_of_ids(tmp_path, capsys):
    src = make_packed_dir(tmp_path / "packed", shards=2, per_shard=10)
    ids = list(packed_utterances(src))
    (tmp_path / "valid.txt").write_text("\n".join(ids[:3]) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(ids[3:7]) + "\n\n")
    assert main(["units", "import-packed", str(src), "--out", str(tmp_path / "units"), "--valid-ids",
                 str(tmp_path / "valid.txt"), "--test-ids", str(tmp_path / "test.txt")]) == 0
    assert open_split(tmp_path / "units", "valid").ids == ids[:3]
    assert open_split(tmp_path / "units", "test").ids == ids[3:7]
    assert open_split(tmp_path / "units", "train").ids == ids[7:]
    (tmp_path / "test.txt").write_text("fake:s9:00001\n")
    assert main(["units", "import-packed", str(src), "--out", str(tmp_path / "u2"), "--test-ids",
                 str(tmp_path / "test.txt")]) == 2
    assert "1 id(s) not in" in capsys.readouterr().err


def test_a_rerun_skips_and_the_units_train(tmp_path):
    src = make_packed_dir(tmp_path / "packed", shards=2, per_shard=40, k=30)
    first = import_packed(src, tmp_path / "units", SPLIT)
    stamp = (tmp_path / "units" / ".completed").read_bytes()
    assert import_packed(src, tmp_path / "units", SPLIT) == first
    assert (tmp_path / "units" / ".completed").read_bytes() == stamp
    record = train(tmp_path / "units", tmp_path / "run", TrainConfig(size="tiny-L1", tokens=1024, context=32,
                                                                      tokens_per_update=256, eval_every=0))
    assert record["status"] == "completed" and record["units"]["vocab_size"] == 32
    assert record["test_bits_per_second"] > 0  # from the shards' source durations


def _rechecksum(shard) -> None:
    """Make meta.json's checksums (and counts) agree with the files again, as a shard written wrong would."""
    meta = json.loads((shard / "meta.json").read_text())
    meta["checksums"] = {n: hashlib.sha256((shard / n).read_bytes()).hexdigest() for n in meta["checksums"]}
    (shard / "meta.json").write_text(json.dumps(meta))


def _overwrite_unit(shard, position: int, value: int) -> None:
    codes = np.fromfile(shard / "audio.bin", dtype=np.int16)
    codes[position] = value
    codes.tofile(shard / "audio.bin")


@pytest.mark.parametrize("damage, needle", [
    (lambda s: _overwrite_unit(s, 3, 7), r"shard-00001/audio.bin: checksum mismatch \(sha256"),
    (lambda s: (s / "samples.jsonl").write_text((s / "samples.jsonl").read_text() + "\n{}\n"),
     r"shard-00001/samples.jsonl: checksum mismatch"),
    (lambda s: (s / "audio.len").unlink(), r"lists a checksum of audio.len, which is not a file"),
    (lambda s: (_overwrite_unit(s, 0, 500), _rechecksum(s)), r"audio.bin: utterance 'fake:s1:00000' does not end "
                                                             "with its one EOS 500"),
    (lambda s: (_overwrite_unit(s, 0, 501), _rechecksum(s)), r"unit 501 outside 0..500"),
    (lambda s: ((s / "samples.jsonl").write_text((s / "samples.jsonl").read_text().replace(
        '"audio_steps": ', '"audio_steps": 1', 1)), _rechecksum(s)), r"samples.jsonl:1: audio_steps"),
    (lambda s: (s / "meta.json").write_text((s / "meta.json").read_text().replace(
        '"schema_version": 2', '"schema_version": 3')), r"meta.json: schema_version 3; only version 2"),
])
def test_a_damaged_shard_is_a_one_line_error_naming_the_file(tmp_path, capsys, damage, needle):
    src = make_packed_dir(tmp_path / "packed", shards=2, per_shard=10)
    damage(src / "shard-00001")
    assert main(["units", "import-packed", str(src), "--out", str(tmp_path / "units")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(needle, err), err
    assert not (tmp_path / "units").exists()  # the first shard was written, then discarded


def test_shards_of_other_units_or_repeated_ids_are_refused(tmp_path):
    src = make_packed_dir(tmp_path / "packed", shards=1, per_shard=10)
    write_packed_shard(src / "shard-00001", random_utterances(10, 30, np.random.default_rng(1)), k=30)
    with pytest.raises(StageError, match="shard-00001/meta.json: preprocessing eos_token is 30, but shard-00000 "
                                         "has 500: the shards hold different units"):
        import_packed(src, tmp_path / "units", SPLIT)
    shutil.rmtree(src / "shard-00001")
    shutil.copytree(src / "shard-00000", src / "shard-00001")
    with pytest.raises(StageError, match="id 'fake:s0:00000' is not unique"):
        import_packed(src, tmp_path / "units", SPLIT)
    with pytest.raises(StageError, match="no shard-\\* folders"):
        import_packed(tmp_path, tmp_path / "units", SPLIT)
    with pytest.raises(StageError, match="the test split got none of the 20 utterances"):
        import_packed(make_packed_dir(tmp_path / "p2", shards=1, per_shard=20), tmp_path / "units",
                      PackedImportConfig(test_fraction=0.0))
    with pytest.raises(ConfigError, match="leave no train split"):
        PackedImportConfig(valid_fraction=0.5, test_fraction=0.5)
    assert not (tmp_path / "units").exists()  # nothing half-written
