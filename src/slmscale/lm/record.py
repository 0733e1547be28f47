"""`RunRecord`: the one type of a run dir's `run.json`, which only the trainer writes (and, for a
checkpoint trained elsewhere, `slmscale import-checkpoint`: lm/import_checkpoint.py).

run.json says what a run is and how its training went: status, the plan's resolved numbers,
the test/validation losses, the units dir and config it was trained on, and the fingerprint that
decides whether a rerun skips, resumes or refuses it (docs/DESIGN.md §4.8). Zero-shot scores are
not in it: evaluation writes them to RUN/eval.json alone, and results.csv joins the two
(sweep/results.py).

Every field may be None on reading: a record of a run that failed before its first update, an
old record from before a field existed, or a hand-made one in a test all lack some. Keys this
version does not know are kept in `extra`, so reading and writing back loses nothing; a record
from before `version` existed reads as version 0 (and may hold the metrics evaluation then copied
into it under `downstream`, see `copied_metrics`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmscale.files import StageError, read_json, read_json_object, write_json

RECORD = "run.json"
RECORD_VERSION = 1
"""Bumped when a field changes meaning. 0: written before RunRecord (no `version` key; evaluation
copied its headline metrics in under `downstream`); 1: written by RunRecord, the trainer's alone.
`origin`, which only an imported run has, came within version 1: it changes no other field's meaning."""

_LATE = ("test_tokens", "tokens_per_second", "finished", "error")
"""Fields only the end of a run sets: left out of run.json while None, as before RunRecord, so
that a running record does not claim an `error` or a `finished` time."""
_IMPORTED = ("origin",)
"""Fields only an imported run has: left out of a trained run's run.json, which reads as before."""


@dataclass
class RunRecord:
    version: int = RECORD_VERSION
    """What this record's fields mean (RECORD_VERSION); 0 for a run.json written before it existed."""
    status: str | None = None
    """`running` while training, then `completed`, `failed` (an error; rerunning repeats it unless
    fixed) or `interrupted` (a signal; rerunning resumes from the last checkpoint)."""
    run_id: str | None = None
    """The run dir's name."""
    size: str | None = None
    """The model size preset (e.g. tiny-L4)."""
    shape: dict[str, Any] | None = None
    """The model's resolved shape (plan.ModelShape as a dict: widths, layers, context, vocab)."""
    params: dict[str, int] | None = None
    """Parameter counts by group (`non_embedding`, `embedding`, `total`, ...)."""
    tokens: int | None = None
    """D: the training tokens, exactly."""
    unique_tokens: int | None = None
    """U: the distinct tokens the windows are drawn from (the whole train split when not limited)."""
    epochs: float | None = None
    """D / U, rounded to 6 digits."""
    flops: float | None = None
    """Training FLOPs, 6·N·D without attention."""
    flops_with_attention: float | None = None
    """Training FLOPs with attention, at the context trained."""
    updates: int | None = None
    """Optimizer updates of the run."""
    warmup_updates: int | None = None
    """Updates of linear learning-rate warmup."""
    tokens_per_update: int | None = None
    """Tokens per optimizer update (over all processes)."""
    micro_batch_size: int | None = None
    """Sequences per forward/backward pass on one process."""
    world_size: int | None = None
    """Processes that trained the run."""
    lr: float | None = None
    """Peak learning rate."""
    final_lr: float | None = None
    """Learning rate at the last update."""
    memory_gb_estimate: float | None = None
    """The plan's estimate of training memory per process, GB."""
    test_loss: float | None = None
    """Loss on the test split, nats/token; None until the run completed."""
    test_bits_per_second: float | None = None
    """The test loss as bits per second of audio; None for text units or an unfinished run."""
    valid_loss: float | None = None
    """The latest validation loss, nats/token (None without a validation split)."""
    wall_seconds: float | None = None
    """Wall time of training (setup excluded), summed over resumptions."""
    test_corpora: list[dict[str, Any]] | None = None
    """The corpora the test split's speech comes from (trainer.split_corpora)."""
    valid_corpora: list[dict[str, Any]] | None = None
    """The corpora the validation split's speech comes from."""
    precision: str | None = None
    """The precision trained in (`fp32` or `bf16`), resolved from the config's."""
    device: str | None = None
    """The torch device trained on."""
    units: dict[str, Any] | None = None
    """The units dir: its path and what the run depends on in it (trainer.units_identity)."""
    fingerprint: str | None = None
    """The run's identity (config without execution keys, and units): a rerun with another refuses."""
    git_revision: str | None = None
    """The code's git revision when the run started."""
    versions: dict[str, Any] | None = None
    """Versions of python, torch and the other libraries that matter."""
    config: dict[str, Any] | None = None
    """The resolved TrainConfig as a dict (also in train.yaml)."""
    started: str | None = None
    """UTC time this (possibly resumed) training began."""
    test_tokens: int | None = None
    """Tokens the test loss was measured on (completed runs)."""
    tokens_per_second: float | None = None
    """D / wall_seconds (completed runs)."""
    finished: str | None = None
    """UTC time the run completed, failed or was interrupted."""
    error: str | None = None
    """Why a failed or interrupted run stopped."""
    origin: dict[str, Any] | None = None
    """Where an imported run's weights come from (`slmscale import-checkpoint`): the source dir, its
    format and config (model_args), the released model's name, where `tokens` and `unique_tokens`
    came from, and the weights' content hash. None for a run trained here."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of the file this version does not know (a version-0 `downstream`), kept as read."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The record of a run.json's content, of any version; unknown keys go to `extra`."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "version"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names and k != "version"}
        version = data.get("version", 0)
        return cls(version=version if isinstance(version, int) else 0, **known, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """run.json's content: the fields in order (late ones only once set), then `extra`."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in (*_LATE, *_IMPORTED) and value is None):
                continue
            out[f.name] = value
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    @classmethod
    def read(cls, path: str | Path, hint: str = "") -> RunRecord:
        """The record at `path`; a malformed file is a StageError naming it (and `hint`)."""
        data = read_json(path, hint)
        if not isinstance(data, dict):
            raise StageError(f"{path}: not a run record (a JSON object){hint}")
        return cls.from_json(data)

    @classmethod
    def peek(cls, path: str | Path) -> RunRecord:
        """The record at `path` read best-effort: an empty one (status None) when the file is absent,
        unreadable or malformed, for readers that only ask whether a run got somewhere."""
        return cls.from_json(read_json_object(path))

    def write(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @property
    def copied_metrics(self) -> dict[str, Any]:
        """The headline metrics a version-0 evaluation copied in (`downstream`), {} otherwise:
        results.csv falls back to them for a run whose eval.json does not give them."""
        copied = self.extra.get("downstream")
        return copied if isinstance(copied, dict) else {}
