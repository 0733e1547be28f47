"""What a run trains and is tested on: one units dir, or a mixture of several made by one tokenizer
(`slmscale train --mixture`, a sweep variant's `mixture`; lm/mixture.py samples it).

A units dir given as such trains as it always did: the same identity (so the same run fingerprint),
windows (TrainWindows) and test loss. A mixture's headline test loss is the mean loss over the test
tokens of the corpora that count (`in_test_loss`: the natural speech, as one test set; the paper
leaves its synthetic sTinyStories out, docs/PAPER.md §3); every corpus with a test split has its own
loss in run.json (`test_losses`), and `test_loss_covers` names the corpora the headline covers.
`test_tokens` caps each corpus's test tokens; `eval_tokens` is shared among the validation sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slmscale.files import StageError, read_json_object
from slmscale.lm.config import MixtureConfig, TrainConfig
from slmscale.lm.data import TrainWindows, split_loss_sum
from slmscale.lm.distributed import Processes
from slmscale.lm.mixture import MixtureWindows, Share, mixture_shares
from slmscale.lm.plan import RunPlan
from slmscale.units.shards import open_split, read_meta

TOKENIZER_KEYS = ("tokenizer_fingerprint", "vocab_size", "eos_id", "pad_id", "dedup")
"""What the units dirs of one mixture must agree on: one tokenizer, one vocabulary, one storage."""


def units_identity(units_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """What a run depends on in its units dir (not its path, which may move)."""
    return {"path": str(units_dir.resolve()), "vocab_size": meta["vocab_size"], "eos_id": meta["eos_id"],
            "pad_id": meta.get("pad_id"), "tokenizer_fingerprint": meta.get("tokenizer_fingerprint"),
            "splits": {name: {k: s.get(k) for k in ("tokens", "utterances", "audio_seconds")}
                       for name, s in meta["splits"].items()}}


def _corpus_origin(source: Path) -> tuple[str | None, bool | None, dict[str, Any]]:
    """Who made a corpus dir, whether its speech is synthetic, and its synth summary if any."""
    importer = read_json_object(source / "import.json").get("importer")
    if importer:  # LibriSpeech is read speech; an imported folder may hold anything
        return f"import-{importer}", {"librispeech": False}.get(importer), {}
    synth = read_json_object(source.parent / "synth.json") if source.name == "corpus" else {}
    if synth:  # `slmscale synth` writes OUT/corpus and OUT/synth.json
        return "synth", True, synth
    return None, None, {}


def split_corpora(meta: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """The corpora whose speech a split of a units dir holds, as its meta.json and the corpus dir
    it was tokenized from tell (`[]` for a missing split): the corpus path, who made it, whether
    it is synthetic (None: not known), and, for a synth corpus, the kinds of text in the split.
    A units subset names the id prefixes it kept; unigram-encoded units (whose `source` is the
    units dir they encode) have that dir's corpora. Recorded so that a test loss says what it covers."""
    if split not in meta.get("splits", {}):
        return []
    source = meta.get("source")
    if isinstance(source, dict):
        encoded = read_json_object(Path(str(source.get("dir", ""))) / "meta.json")
        return split_corpora(encoded, split) or [{"corpus": None, "made_by": None, "synthetic": None}]
    source = str(source) if source else None
    made_by, synthetic, synth = _corpus_origin(Path(source)) if source else (None, None, {})
    entry: dict[str, Any] = {"corpus": source, "made_by": made_by, "synthetic": synthetic}
    subset = meta.get("subset")
    if subset:
        entry["ids_starting_with"] = subset.get("prefixes", [])
    elif synth:
        entry["kinds"] = sorted(synth.get("corpus", {}).get("hours", {}).get(split, {}))
    return [entry]


def bits_per_second(loss: float, split_meta: dict[str, Any]) -> float | None:
    """nats/token -> bits per second of audio, comparable across tokenizers of the same audio."""
    seconds = split_meta.get("audio_seconds")
    if not seconds:
        return None  # a text units dir has no audio
    return loss / math.log(2) * split_meta["tokens"] / seconds


def identity_without_paths(units: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's `units` record its fingerprint covers: everything but where the dirs lie."""
    identity = {k: v for k, v in units.items() if k != "path"}
    if "corpora" in identity:
        identity["corpora"] = [{k: v for k, v in c.items() if k != "path"} for c in identity["corpora"]]
    return identity


@dataclass(frozen=True)
class Corpus:
    """One units dir of a run's data."""
    name: str
    dir: Path
    meta: dict[str, Any]
    weight: float | None = None
    in_test_loss: bool = True


@dataclass(frozen=True)
class TrainData:
    corpora: tuple[Corpus, ...]
    mixture: bool
    """False: one units dir given as such (identity, windows and record as before mixtures)."""

    @property
    def meta(self) -> dict[str, Any]:
        """The first corpus's meta.json: the vocabulary they all share."""
        return self.corpora[0].meta

    def identity(self) -> dict[str, Any]:
        """run.json `units`: the path (a mixture's first dir, whose tokenizer eval uses) and what the run
        depends on."""
        first = units_identity(self.corpora[0].dir, self.meta)
        if not self.mixture:
            return first
        return {**{k: first[k] for k in ("path", "vocab_size", "eos_id", "pad_id", "tokenizer_fingerprint")},
                "corpora": [{"name": c.name, "weight": c.weight, "in_test_loss": c.in_test_loss,
                             **units_identity(c.dir, c.meta)} for c in self.corpora]}

    def train_tokens(self, split: str) -> int:
        return sum(int(c.meta["splits"][split]["tokens"]) for c in self.corpora)

    def shares(self, cfg: TrainConfig, plan: RunPlan) -> list[Share]:
        if not self.mixture:
            return [Share(plan.unique_tokens, 1.0)]
        weights = [c.weight for c in self.corpora] if self.corpora[0].weight is not None else None
        return mixture_shares([c.name for c in self.corpora],
                              [int(c.meta["splits"][cfg.train_split]["tokens"]) for c in self.corpora],
                              weights, plan.unique_tokens, plan.shape.context, cfg.sampling)

    def windows(self, cfg: TrainConfig, plan: RunPlan) -> TrainWindows | MixtureWindows:
        streams = [open_split(c.dir, cfg.train_split).tokens for c in self.corpora]
        if not self.mixture:
            return TrainWindows(streams[0], plan.shape.context, plan.unique_tokens, cfg.sampling, cfg.seed)
        return MixtureWindows(streams, self.shares(cfg, plan), plan.shape.context, cfg.sampling, cfg.seed)

    def summary(self, cfg: TrainConfig, plan: RunPlan) -> list[dict[str, Any]] | None:
        """run.json `mixture`: each corpus's weight, share, train and unique tokens, and epochs (its
        D·share / pool: all equal to the run's unless weights make them differ); None for one units dir."""
        if not self.mixture:
            return None
        return [{"corpus": c.name, "path": str(c.dir.resolve()), "in_test_loss": c.in_test_loss, "weight": c.weight,
                 "probability": round(s.probability, 6), "train_tokens": int(c.meta["splits"][cfg.train_split]["tokens"]),
                 "unique_tokens": s.unique_tokens, "epochs": round(plan.tokens * s.probability / s.unique_tokens, 6)}
                for c, s in zip(self.corpora, self.shares(cfg, plan))]

    def split_corpora(self, split: str) -> list[dict[str, Any]]:
        return [entry for c in self.corpora for entry in split_corpora(c.meta, split)]

    def valid_streams(self, split: str) -> list[np.ndarray]:
        """The validation streams: the headline corpora's that have the split."""
        return [open_split(c.dir, split).tokens for c in self.corpora
                if c.in_test_loss and split in c.meta["splits"]]

    def test_results(self, model: torch.nn.Module, cfg: TrainConfig, plan: RunPlan,
                     procs: Processes) -> dict[str, Any]:
        """The record's test fields: the loss of every corpus with a test split, and the headline: the
        loss over the covered corpora's test tokens together (one units dir: its test split's, exactly).
        Every process evaluates its share of the windows; all of them return the same fields."""
        losses, total, count, split = [], 0.0, 0, {"tokens": 0, "audio_seconds": 0.0}
        for c in self.corpora:
            if cfg.test_split not in c.meta["splits"]:
                continue  # only a corpus outside the headline may lack one (open_train_data)
            stream = open_split(c.dir, cfg.test_split).tokens
            summed, tokens = pooled_loss_sum(model, stream, plan, procs, cfg.test_tokens)
            loss, meta = summed / max(tokens, 1), c.meta["splits"][cfg.test_split]
            losses.append({"corpus": c.name, "loss": loss, "tokens": tokens, "in_test_loss": c.in_test_loss,
                           "bits_per_second": bits_per_second(loss, meta)})
            if c.in_test_loss:
                total, count = total + summed, count + tokens
                split = {"tokens": split["tokens"] + meta["tokens"],
                         "audio_seconds": split["audio_seconds"] + (meta.get("audio_seconds") or 0.0)}
        headline = total / max(count, 1)
        return {"test_loss": headline, "test_tokens": count, "test_bits_per_second": bits_per_second(headline, split),
                "test_losses": losses, "test_loss_covers": [e["corpus"] for e in losses if e["in_test_loss"]]}


def pooled_loss_sum(model: torch.nn.Module, stream: np.ndarray, plan: RunPlan, procs: Processes,
                    max_tokens: int | None) -> tuple[float, int]:
    """`split_loss_sum` over the first `max_tokens` of a stream, each process evaluating its share of
    the windows and the sums pooled over the processes: the same (loss sum, tokens) on every one."""
    summed, tokens = procs.sum_floats(*split_loss_sum(model, stream, plan.shape.context, plan.micro_batch_size,
                                                      procs.device, max_tokens, shard=(procs.rank, procs.world_size)))
    return summed, int(tokens)


def open_train_data(units: str | Path | MixtureConfig, cfg: TrainConfig) -> TrainData:
    """The run's data, checked: every corpus has the train split, the headline ones the test split, and
    a mixture's dirs share one tokenizer (a StageError naming the dir and key that differ)."""
    if isinstance(units, MixtureConfig):
        corpora = tuple(Corpus(c.label, Path(c.units), read_meta(c.units), c.weight, c.in_test_loss)
                        for c in units.corpora)
    else:
        corpora = (Corpus(Path(units).name, Path(units), read_meta(units)),)
    first = corpora[0]
    for c in corpora:
        for key in TOKENIZER_KEYS:
            if c.meta.get(key) != first.meta.get(key):
                raise StageError(f"{c.dir}/meta.json: {key} {c.meta.get(key)!r} is not the {first.meta.get(key)!r} of "
                                 f"{first.dir}; the units dirs of a mixture must come from one tokenizer")
        needed = (cfg.train_split, cfg.test_split) if c.in_test_loss else (cfg.train_split,)
        for split in needed:
            if split not in c.meta.get("splits", {}):
                hint = ("; an imported synthetic corpus has no test split unless asked for (import-tinystories "
                        "--split-fractions 0.98,0.01,0.01" + (", or in_test_loss: false in the mixture)"
                                                               if isinstance(units, MixtureConfig) else ")")
                        if split == cfg.test_split else "")
                raise StageError(f"{c.dir}/meta.json: no split {split!r} (has {sorted(c.meta.get('splits', {}))})"
                                 f"{hint}")
    return TrainData(corpora, isinstance(units, MixtureConfig))
