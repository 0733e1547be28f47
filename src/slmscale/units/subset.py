"""A units dir of some utterances of another, chosen by id prefix (e.g. a world's stories).

The study compares the story corpus with the sentence corpus at equal tokens (the paper's
Figure 3: sTinyStories against audiobooks); both come out of one tokenization of the whole
corpus instead of featurizing the audio twice. Audio seconds are recomputed per utterance
from the deduplicated units' frame counts (.dur) and the frame rate, so bits per second stay
exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from slmscale.files import StageError, atomic_dir, check_output_dir, mark_completed
from slmscale.units.shards import ShardWriter, open_split, read_meta, unit_diagnostics, write_units_meta
from slmscale.units.unigram import units_fingerprint


def subset_units(units_dir: str | Path, out_dir: str | Path, prefixes: tuple[str, ...]) -> dict[str, Any]:
    """Keep the utterances whose id starts with one of `prefixes`, in every split; returns the meta."""
    units_dir, out_dir = Path(units_dir), Path(out_dir)
    meta = read_meta(units_dir)
    stamp = f"{units_fingerprint(units_dir)}:{','.join(prefixes)}"
    if check_output_dir(out_dir, stamp):
        return read_meta(out_dir)
    frame_rate = float(meta.get("frame_rate") or 0)
    eos = int(meta["eos_id"])
    splits: dict[str, Any] = {}
    counts = np.zeros(eos, dtype=np.int64)
    with atomic_dir(out_dir) as tmp:
        for split in meta["splits"]:
            data = open_split(units_dir, split)
            dur_path = units_dir / f"{split}.dur"
            durations = np.fromfile(dur_path, dtype=np.uint16) if dur_path.is_file() else None
            writer = ShardWriter(tmp, split, eos, with_durations=durations is not None)
            frames = 0
            try:
                for i, utt_id in enumerate(data.ids):
                    if not utt_id.startswith(prefixes):
                        continue
                    units = data.utterance(i)
                    start = int(data.offsets[i])
                    dur = None if durations is None else durations[start:start + len(units)]
                    writer.add(utt_id, units, dur)
                    counts += np.bincount(units, minlength=eos)
                    frames += int(dur.sum()) if dur is not None else len(units)
                written = writer.close()
            except BaseException:
                writer.abort()
                raise
            if not written["utterances"]:
                raise StageError(f"{units_dir}/{split}: no utterance id starts with {' or '.join(prefixes)}")
            seconds = frames / frame_rate if frame_rate else 0.0
            units_total = written["tokens"] - written["utterances"]
            splits[split] = {**written, "audio_seconds": round(seconds, 3),
                             "tokens_per_second": round(units_total / seconds, 3) if seconds else 0.0}
        out_meta = {**{k: v for k, v in meta.items() if k not in ("splits", "diagnostics", "skipped")},
                    "splits": splits, "diagnostics": unit_diagnostics(counts),
                    "subset": {"of": str(units_dir.resolve()), "prefixes": list(prefixes)}}
        write_units_meta(tmp, out_meta)
        (tmp / "config.yaml").write_text(json.dumps({"of": str(units_dir), "prefixes": list(prefixes)}) + "\n")
        mark_completed(tmp, stamp)
    return out_meta
