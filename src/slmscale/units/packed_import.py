"""`import_packed(src, out, cfg)`: the packed units of the paper's data pipeline as a units dir.

Their pipeline (`slm-data encode`) writes one folder per shard (docs/PAPER.md §11.2):

    shard-NNNNN/audio.bin       int16 unit stream, every utterance ended by EOS (500)
    shard-NNNNN/audio.len       int64 length of each utterance, EOS included
    shard-NNNNN/samples.jsonl   one row per utterance: id, audio_steps (= its length), provenance
    shard-NNNNN/skips.jsonl     utterances the encoder rejected, with the reason
    shard-NNNNN/meta.json       schema_version 2, counts, preprocessing (vocab_size, eos_token,
                                pad_token, the quantizer), checksums: sha256 of each file above

Every checksum is verified and every count cross-checked before anything is written; a mismatch is
a StageError naming the file. The units dir (units/shards.py) holds the same token streams: each
utterance's units, then its EOS at the same place (the ShardWriter appends the EOS the shard had),
split into train/valid/test by a hash of the id or by lists of ids. A rerun on the same shards
(meta.json bytes, which hold every checksum) and config skips.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from slmscale.config import to_dict
from slmscale.files import (StageError, atomic_dir, check_output_dir, content_hash, mark_completed, read_json,
                            read_jsonl_numbered)
from slmscale.log import get_logger
from slmscale.units.config import PackedImportConfig
from slmscale.units.shards import ShardWriter, read_meta, unit_diagnostics, write_units_meta

log = get_logger(__name__)
SCHEMA_VERSION = 2
"""Their packed schema's version (src/slm_data/schema.py SCHEMA_VERSION)."""
REQUIRED = ("audio.bin", "audio.len", "samples.jsonl")
SPLITS = ("train", "valid", "test")
QUANTIZER_KEYS = ("unit_extractor", "hubert_model", "hubert_revision", "hubert_layer", "hubert_normalize",
                  "kmeans", "collapsed", "vocab_size", "eos_token", "pad_token")
"""The preprocessing keys that say what the units are; every shard must agree on them."""


@dataclass
class PackedShard:
    """One verified shard: its utterances' ids, unit streams (EOS included) and durations (seconds)."""
    path: Path
    ids: list[str]
    codes: np.ndarray
    offsets: np.ndarray
    seconds: list[float | None]
    preprocessing: dict[str, Any]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _shard_meta(shard: Path) -> dict[str, Any]:
    path = shard / "meta.json"
    if not path.is_file():
        raise StageError(f"{shard}: no meta.json; not a packed shard")
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise StageError(f"{path}: not a JSON object")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise StageError(f"{path}: schema_version {meta.get('schema_version')!r}; only version {SCHEMA_VERSION} "
                         "of the packed schema is known")
    checksums = meta.get("checksums")
    if not isinstance(checksums, dict):
        raise StageError(f"{path}: no checksums")
    for name in (*REQUIRED, *sorted(set(checksums) - set(REQUIRED))):
        if name not in checksums:
            raise StageError(f"{path}: lists no checksum of {name}")
        if Path(name).is_absolute() or ".." in Path(name).parts or not (shard / name).is_file():
            raise StageError(f"{path}: lists a checksum of {name}, which is not a file of {shard}")
        found = sha256_file(shard / name)
        if found != checksums[name]:
            raise StageError(f"{shard / name}: checksum mismatch (sha256 {found[:16]}..., meta.json says "
                             f"{str(checksums[name])[:16]}...): the file is corrupt or was changed")
    return meta


def _count(meta: dict[str, Any], key: str, where: Path) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StageError(f"{where}: {key} is {value!r}, not a count")
    return value


def read_shard(shard: Path) -> PackedShard:
    """Verify one shard completely (checksums, then every count and the EOS of every utterance)."""
    meta = _shard_meta(shard)
    where = shard / "meta.json"
    count = _count(meta, "num_samples", where)
    pre = meta.get("preprocessing") if isinstance(meta.get("preprocessing"), dict) else {}
    vocab, eos, pad = (pre.get(key) for key in ("vocab_size", "eos_token", "pad_token"))
    if not all(isinstance(v, int) for v in (vocab, eos, pad)) or (eos, pad) != (vocab - 2, vocab - 1):
        raise StageError(f"{where}: preprocessing vocab_size/eos_token/pad_token are {vocab}/{eos}/{pad}; the "
                         "units format needs units 0..k-1, EOS = k, PAD = k + 1 (502/500/501 for k = 500)")
    if (shard / "audio.len").stat().st_size % 8:
        raise StageError(f"{shard / 'audio.len'}: not a whole number of int64 lengths")
    lengths = np.fromfile(shard / "audio.len", dtype=np.int64)
    if len(lengths) != count or (lengths <= 0).any():
        raise StageError(f"{shard / 'audio.len'}: {len(lengths)} lengths (some not positive?) for num_samples {count}")
    total = int(lengths.sum())
    if _count(meta, "num_audio_steps", where) != total or (shard / "audio.bin").stat().st_size != 2 * total:
        raise StageError(f"{shard / 'audio.bin'}: {(shard / 'audio.bin').stat().st_size} bytes, but audio.len sums "
                         f"to {total} int16 units (meta.json num_audio_steps {meta.get('num_audio_steps')})")
    codes = np.memmap(shard / "audio.bin", dtype=np.int16, mode="r") if total else np.zeros(0, np.int16)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    if total and (int(codes.min()) < 0 or int(codes.max()) > eos):
        raise StageError(f"{shard / 'audio.bin'}: unit {int(codes.max()) if codes.max() > eos else int(codes.min())} "
                         f"outside 0..{eos} (units and EOS)")
    rows = read_jsonl_numbered(shard / "samples.jsonl")
    if len(rows) != count:
        raise StageError(f"{shard / 'samples.jsonl'}: {len(rows)} rows for num_samples {count}")
    ids: list[str] = []
    seconds: list[float | None] = []
    ends = codes[offsets[1:] - 1]
    eos_ok = bool((ends == eos).all()) and int((codes == eos).sum()) == count  # else the loop names the utterance
    for index, (line, row) in enumerate(rows):
        sample_id = row.get("id")
        if not isinstance(sample_id, str) or not sample_id or "\n" in sample_id:
            raise StageError(f"{shard / 'samples.jsonl'}:{line}: id {sample_id!r} is not a one-line string")
        if row.get("audio_steps") != int(lengths[index]):
            raise StageError(f"{shard / 'samples.jsonl'}:{line}: audio_steps {row.get('audio_steps')!r}, but "
                             f"audio.len gives {int(lengths[index])}")
        if not eos_ok and (ends[index] != eos or (codes[offsets[index]:offsets[index + 1] - 1] == eos).any()):
            raise StageError(f"{shard / 'audio.bin'}: utterance {sample_id!r} does not end with its one EOS {eos}")
        duration = row.get("source_duration")
        ids.append(sample_id)
        seconds.append(float(duration) if isinstance(duration, (int, float)) and duration > 0 else None)
    return PackedShard(shard, ids, codes, offsets, seconds, pre)


def _id_lists(cfg: PackedImportConfig) -> dict[str, str] | None:
    """id -> split from the id files, or None when splitting by fractions."""
    if not cfg.valid_ids and not cfg.test_ids:
        return None
    assigned: dict[str, str] = {}
    for split, name in (("valid", cfg.valid_ids), ("test", cfg.test_ids)):
        if not name:
            continue
        if not Path(name).is_file():
            raise StageError(f"{split}_ids: {name} is not a file")
        for line in Path(name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                if assigned.get(line.strip(), split) != split:
                    raise StageError(f"{name}: id {line.strip()!r} is in both the valid and the test list")
                assigned[line.strip()] = split
    return assigned


def hashed_split(sample_id: str, cfg: PackedImportConfig) -> str:
    """The split of an id by its hash: a fixed point in [0, 1) per id, so the same ids fall in each
    split whatever the shards' order or number."""
    point = int(hashlib.sha256(sample_id.encode()).hexdigest()[:15], 16) / 16 ** 15
    if point < cfg.test_fraction:
        return "test"
    return "valid" if point < cfg.test_fraction + cfg.valid_fraction else "train"


def _shards(src: Path) -> list[Path]:
    shards = sorted(p for p in src.glob("shard-*") if p.is_dir())
    if not shards:
        raise StageError(f"{src}: no shard-* folders; not a packed-units dir of the paper's pipeline")
    return shards


def _quantizer(shard: PackedShard) -> dict[str, Any]:
    """What the units are: the QUANTIZER_KEYS of a shard's preprocessing that it has."""
    return {k: shard.preprocessing[k] for k in QUANTIZER_KEYS if k in shard.preprocessing}


def _same_units(shard: PackedShard, first: PackedShard) -> None:
    ours, theirs = _quantizer(shard), _quantizer(first)
    differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    if differ:
        raise StageError(f"{shard.path / 'meta.json'}: preprocessing {differ[0]} is {ours.get(differ[0])!r}, but "
                         f"{first.path.name} has {theirs.get(differ[0])!r}: the shards hold different units")


def _tokenizer_fields(cfg: PackedImportConfig, quantizer: dict[str, Any]) -> dict[str, Any]:
    """meta.json's tokenizer keys: the given tokenizer's (checked to have the shards' k), or, without
    one, a fingerprint of the quantizer the shards name."""
    if not cfg.tokenizer:
        return {"tokenizer_fingerprint": "slm-scaling-" + content_hash(json.dumps(quantizer, sort_keys=True))}
    from slmscale.units.tokenizer import load_tokenizer
    tok = load_tokenizer(cfg.tokenizer)
    if tok.vocab_size != quantizer["vocab_size"]:
        raise StageError(f"tokenizer {cfg.tokenizer}: k = {tok.k}, but the shards hold units of k = "
                         f"{quantizer['vocab_size'] - 2}")
    return {"tokenizer_fingerprint": tok.fingerprint, "tokenizer": str(Path(cfg.tokenizer).resolve())}


def _split_meta(written: dict[str, int], seconds: list[float | None], counts: np.ndarray) -> dict[str, Any]:
    """A split's entry of meta.json; audio seconds from samples.jsonl `source_duration` when every
    utterance of the split has one (the units are collapsed, so their count does not give it), else 0."""
    audio = round(sum(s for s in seconds if s), 3) if None not in seconds else 0.0
    units = written["tokens"] - written["utterances"]
    return {**written, "audio_seconds": audio, "tokens_per_second": round(units / audio, 3) if audio else 0.0,
            "diagnostics": unit_diagnostics(counts)}


def _write_shard(shard: PackedShard, split_of, writers: dict[str, ShardWriter], counts: dict[str, np.ndarray],
                 seconds: dict[str, list[float | None]]) -> None:
    for index, sample_id in enumerate(shard.ids):
        split = split_of(sample_id)
        units = np.asarray(shard.codes[shard.offsets[index]:shard.offsets[index + 1] - 1])
        writers[split].add(sample_id, units)  # the writer appends the EOS the shard had
        counts[split] += np.bincount(units, minlength=len(counts[split]))
        seconds[split].append(shard.seconds[index])


def import_packed(src: str | Path, out_dir: str | Path, cfg: PackedImportConfig) -> dict[str, Any]:
    """Import (or skip, when done before) every shard of `src`; returns the units dir's meta.json. Shards
    are verified and written one at a time (the paper's 10.89B units do not fit in memory at once);
    the first error discards what was written (atomic_dir)."""
    src, out_dir = Path(src), Path(out_dir)
    shard_dirs = _shards(src)
    lists = _id_lists(cfg)
    stamp = content_hash(*(p.name + (p / "meta.json").read_text(encoding="utf-8") for p in shard_dirs
                           if (p / "meta.json").is_file()),
                         json.dumps(to_dict(cfg), sort_keys=True),
                         *(Path(f).read_text(encoding="utf-8") for f in (cfg.valid_ids, cfg.test_ids) if f))
    if check_output_dir(out_dir, stamp):
        log.info("%s: already imported from %s; skipping", out_dir, src)
        return read_meta(out_dir)

    def split_of(sample_id: str) -> str:
        return lists.get(sample_id, "train") if lists is not None else hashed_split(sample_id, cfg)

    first = read_shard(shard_dirs[0])
    quantizer = _quantizer(first)
    vocab = int(quantizer["vocab_size"])
    eos = vocab - 2
    tokenizer = _tokenizer_fields(cfg, quantizer)
    seen: set[str] = set()
    with atomic_dir(out_dir) as tmp:
        writers = {split: ShardWriter(tmp, split, eos) for split in SPLITS}
        counts = {split: np.zeros(eos, dtype=np.int64) for split in SPLITS}
        seconds: dict[str, list[float | None]] = {split: [] for split in SPLITS}
        try:
            for path in shard_dirs:
                shard = first if path == first.path else read_shard(path)
                _same_units(shard, first)
                repeated = next((i for i in shard.ids if i in seen), None)
                if repeated is not None or len(set(shard.ids)) != len(shard.ids):
                    raise StageError(f"{path / 'samples.jsonl'}: id {repeated or 'of two utterances'!r} is not unique "
                                     f"in {src}")
                seen.update(shard.ids)
                _write_shard(shard, split_of, writers, counts, seconds)
            closed = {split: writer.close() for split, writer in writers.items()}
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        unknown = sorted(set(lists or ()) - seen)
        if unknown:
            listed = cfg.valid_ids if lists[unknown[0]] == "valid" else cfg.test_ids
            raise StageError(f"{listed}: {len(unknown)} id(s) not in {src}, e.g. {unknown[0]!r}")
        for split in ("train", "test"):
            if not closed[split]["utterances"]:
                how = f"--{split}-ids" if lists is not None else f"{split}_fraction"
                raise StageError(f"{src}: the {split} split got none of the {len(seen)} utterances (see {how})")
        if not closed["valid"]["utterances"]:  # left out: the trainer then skips validation
            for ext in ("bin", "idx", "ids"):
                (tmp / f"valid.{ext}").unlink()
        splits = {split: _split_meta(written, seconds[split], counts[split])
                  for split, written in closed.items() if written["utterances"]}
        meta = {"vocab_size": vocab, "eos_id": eos, "pad_id": vocab - 1, "k": eos,
                "dedup": bool(quantizer.get("collapsed", True)), **tokenizer, "source": str(src.resolve()),
                "splits": splits, "diagnostics": unit_diagnostics(sum(counts.values())),
                "packed": {"shards": [p.name for p in shard_dirs], "quantizer": quantizer,
                           "split_by": "id lists" if lists is not None else "id hash"}}
        write_units_meta(tmp, meta)
        (tmp / "config.yaml").write_text(yaml.safe_dump({"source": str(src.resolve()), **to_dict(cfg)},
                                                        sort_keys=False))
        mark_completed(tmp, stamp)
    return meta
