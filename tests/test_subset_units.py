"""Splitting a units dir by corpus: the kept utterances, their durations and audio seconds."""

from __future__ import annotations

import numpy as np
import pytest

from slmscale.files import StageError
from slmscale.units.shards import ShardWriter, open_split, read_meta, write_units_meta
from slmscale.units.subset import subset_units


def _units(path, frame_rate=100.0):
    rng = np.random.default_rng(0)
    meta = {"vocab_size": 12, "eos_id": 10, "pad_id": 11, "k": 10, "dedup": True, "frame_rate": frame_rate,
            "tokenizer_fingerprint": "t", "splits": {}}
    for split in ("train", "test"):
        writer = ShardWriter(path, split, eos_id=10, with_durations=True)
        for i in range(6):
            kind = "story" if i % 2 == 0 else "sentences"
            units = rng.integers(0, 10, size=5 + i)
            writer.add(f"{kind}-{split}-{i}", units, np.full(units.size, 3))
        meta["splits"][split] = {**writer.close(), "audio_seconds": 1.0}
    write_units_meta(path, meta)
    return path


def test_subset_keeps_the_prefix_with_durations_and_exact_seconds(tmp_path):
    source = _units(tmp_path / "all")
    meta = subset_units(source, tmp_path / "stories", ("story-",))
    data = open_split(tmp_path / "stories", "train")
    assert data.ids == ["story-train-0", "story-train-2", "story-train-4"]
    original = open_split(source, "train")
    assert np.array_equal(data.utterance(1), original.utterance(2))
    units = 5 + 7 + 9
    assert meta["splits"]["train"]["tokens"] == units + 3
    assert meta["splits"]["train"]["audio_seconds"] == pytest.approx(units * 3 / 100)
    assert np.fromfile(tmp_path / "stories" / "train.dur", dtype=np.uint16).sum() == units * 3
    assert read_meta(tmp_path / "stories")["subset"]["prefixes"] == ["story-"]
    assert subset_units(source, tmp_path / "stories", ("story-",)) == meta  # a rerun skips
    with pytest.raises(StageError, match="no utterance id starts with poem-"):
        subset_units(source, tmp_path / "poems", ("poem-",))
    assert not (tmp_path / "poems").exists()


def test_meta_records_the_shard_dtypes_and_a_truncated_shard_is_named(tmp_path):
    from slmscale.units.fixtures import make_units_dir
    units = make_units_dir(tmp_path / "units")
    meta = read_meta(units)
    assert meta["shard_dtypes"] == {"tokens": "uint16", "offsets": "int64", "durations": "uint16"}
    shard = units / "train.bin"
    shard.write_bytes(shard.read_bytes()[:-1])  # an odd byte count: half a token
    with pytest.raises(StageError, match=r"train\.bin: .* not a whole number of uint16 tokens"):
        open_split(units, "train")
    (units / "meta.json").write_text((units / "meta.json").read_text().replace('"tokens": "uint16"', '"tokens": "int32"'))
    with pytest.raises(StageError, match="shard_dtypes"):
        read_meta(units)
