"""The speech tokenizer: a feature spec plus k-means centroids, in a directory.

    TOK/tokenizer.json          feature spec, frame rate, k, dedup, sample rate,
                                eos_id = k, pad_id = k + 1, vocab_size = k + 2, fingerprint;
                                trained_on.corpus: the corpus dir as an absolute path, so the
                                dir works from any working directory (`training_corpus`)
    TOK/centroids.safetensors   "centroids": float32 [k, feature dim]
    TOK/config.yaml             the resolved config that trained it (or the import's source)
    TOK/.completed              written last

The fingerprint hashes the feature spec and the centroid bytes, so a units dir
records exactly which tokenizer made it (`slmscale units check --tokenizer`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from slmscale.audio.manifest import MANIFEST, read_manifest
from slmscale.config import ConfigError, fingerprint, from_dict, to_dict
from slmscale.files import (StageError, atomic_dir, check_output_dir, content_hash, is_completed, mark_completed,
                            ordinary_permissions, read_json, write_json)
from slmscale.log import get_logger
from slmscale.units.config import TokenizerConfig
from slmscale.units.extraction import corpus_items, extract
from slmscale.units.features import FeatureSpec, with_frame_rate
from slmscale.units.hubert import weights_hash
from slmscale.units.kmeans import sample_frames, train_kmeans

log = get_logger(__name__)

TOKENIZER_JSON = "tokenizer.json"
CENTROIDS = "centroids.safetensors"


@dataclass(frozen=True)
class Tokenizer:
    """A loaded tokenizer directory."""
    spec: FeatureSpec
    centroids: np.ndarray
    """float32 [k, dim]."""
    dedup: bool
    sample_rate: int
    fingerprint: str
    hubert_weights: str = ""
    """Content hash of the HuBERT model the features come from (`hubert.weights_hash`; "" for mfcc/logmel
    and for HuBERT tokenizers written before it was recorded)."""

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def eos_id(self) -> int:
        return self.k

    @property
    def pad_id(self) -> int:
        return self.k + 1

    @property
    def vocab_size(self) -> int:
        return self.k + 2


def tokenizer_fingerprint(spec: FeatureSpec, centroids: np.ndarray, hubert_weights: str = "") -> str:
    """What the units depend on: the feature spec and centroids, and for HuBERT features the model's
    weights by content instead of its path (so units keep their identity when the model moves)."""
    described = to_dict(spec)
    if described.get("cmvn_stats") == "utterance":
        del described["cmvn_stats"]  # what every tokenizer meant before the option: their fingerprints stay
    if hubert_weights:
        described = {**described, "hubert_path": None, "hubert_weights": hubert_weights}
    return content_hash(json.dumps(described, sort_keys=True), np.ascontiguousarray(centroids, dtype=np.float32).tobytes())


def _hubert_weights(spec: FeatureSpec) -> str:
    if spec.kind != "hubert":
        return ""
    try:
        return weights_hash(spec.hubert_path)
    except (OSError, ValueError) as err:
        raise StageError(f"feature spec: {err}") from err


def resolved_spec(spec: FeatureSpec) -> FeatureSpec:
    """`spec` as a tokenizer dir records it: an absolute HuBERT path (so the dir works from any working
    directory) and the frame rate resolved (0 = native becomes e.g. 100 for mfcc, 50 for HuBERT base)."""
    if spec.hubert_path:
        spec = replace(spec, hubert_path=str(Path(spec.hubert_path).resolve()))
    try:
        return with_frame_rate(spec)
    except (ValueError, OSError) as err:
        raise StageError(f"feature spec {spec}: {err}") from err


def save_tokenizer(out_dir: str | Path, spec: FeatureSpec, centroids: np.ndarray, dedup: bool,
                   stage_fingerprint: str, config: dict[str, Any], **info: Any) -> Tokenizer:
    """Write a complete tokenizer dir atomically (the whole dir appears at once); `spec` must be the
    exact spec the centroids were fitted on (see `resolved_spec`): tokenize computes these features."""
    from safetensors.numpy import save_file

    if not spec.frame_rate:
        raise ValueError("save_tokenizer needs a resolved frame rate (see resolved_spec), got frame_rate=0")
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k = int(centroids.shape[0])
    weights = _hubert_weights(spec)
    tok = Tokenizer(spec, centroids, dedup, int(spec.sample_rate), tokenizer_fingerprint(spec, centroids, weights),
                    weights)
    description = {
        "features": to_dict(spec), "kind": spec.kind, "layer": spec.layer, "frame_rate": spec.frame_rate,
        "cmvn": spec.cmvn, "dim": int(centroids.shape[1]), "k": k, "dedup": dedup, "sample_rate": tok.sample_rate,
        "eos_id": tok.eos_id, "pad_id": tok.pad_id, "vocab_size": tok.vocab_size,
        "fingerprint": tok.fingerprint, **({"hubert_weights": weights} if weights else {}), **info}
    with atomic_dir(out_dir) as tmp:
        save_file({"centroids": centroids}, str(tmp / CENTROIDS))
        ordinary_permissions(tmp / CENTROIDS)
        write_json(tmp / TOKENIZER_JSON, description)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        mark_completed(tmp, stage_fingerprint, tokenizer_fingerprint=tok.fingerprint)
    return tok


def load_tokenizer(tokenizer_dir: str | Path, hubert_path: str | Path | None = None) -> Tokenizer:
    """Load and validate a tokenizer dir; any inconsistency is a StageError naming the file.
    `hubert_path`: where its HuBERT model is now, if it moved (checked to hold the same weights)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    tokenizer_dir = Path(tokenizer_dir)
    desc_path, centroid_path = tokenizer_dir / TOKENIZER_JSON, tokenizer_dir / CENTROIDS
    if not desc_path.is_file() or not is_completed(tokenizer_dir):
        raise StageError(f"{tokenizer_dir}: not a (complete) tokenizer dir (needs {TOKENIZER_JSON} and .completed)")
    try:
        desc = read_json(desc_path)
        spec = from_dict(FeatureSpec, desc["features"])
        centroids = load_file(str(centroid_path))["centroids"]
    except (KeyError, ConfigError, OSError, SafetensorError) as err:
        raise StageError(f"{tokenizer_dir}: unreadable tokenizer ({type(err).__name__}: {err})") from err
    k = desc.get("k")
    if centroids.ndim != 2 or centroids.shape[0] != k or desc.get("eos_id") != k or desc.get("vocab_size") != k + 2:
        raise StageError(f"{centroid_path}: centroids of shape {centroids.shape} disagree with "
                         f"{desc_path} (k={k}, eos_id={desc.get('eos_id')}, vocab_size={desc.get('vocab_size')})")
    if k + 2 > 65536:
        raise StageError(f"{desc_path}: k={k} does not fit the uint16 units format")
    if not spec.frame_rate:
        raise StageError(f"{desc_path}: features.frame_rate is 0; a tokenizer dir must record the resolved rate")
    weights = str(desc.get("hubert_weights", ""))
    if hubert_path is not None:
        spec = _moved_hubert(spec, weights, Path(hubert_path), desc_path)
    tok = Tokenizer(spec, centroids.astype(np.float32), bool(desc["dedup"]), int(desc["sample_rate"]),
                    tokenizer_fingerprint(spec, centroids, weights), weights)
    if tok.fingerprint != desc.get("fingerprint"):
        raise StageError(f"{tokenizer_dir}: fingerprint {desc.get('fingerprint')} in {TOKENIZER_JSON} does not "
                         f"match its centroids and spec ({tok.fingerprint}); the dir was modified")
    return tok


def _moved_hubert(spec: FeatureSpec, weights: str, path: Path, desc_path: Path) -> FeatureSpec:
    """`spec` reading its HuBERT model from `path`, which must hold the weights it was trained on."""
    if spec.kind != "hubert":
        raise StageError(f"{desc_path}: a {spec.kind} tokenizer has no HuBERT model to relocate")
    if not weights:
        raise StageError(f"{desc_path}: written before tokenizers recorded their HuBERT weights; it cannot check "
                         f"that {path} holds them (retrain it, or put the model back at {spec.hubert_path})")
    try:
        found = weights_hash(path)
    except (OSError, ValueError) as err:
        raise StageError(f"--hubert-path: {err}") from err
    if found != weights:
        raise StageError(f"{path}: its HuBERT weights ({found}) are not the ones {desc_path} was trained on "
                         f"({weights})")
    return replace(spec, hubert_path=str(path.resolve()))


def train_tokenizer(corpus_dir: str | Path, out_dir: str | Path,
                    config: TokenizerConfig = TokenizerConfig()) -> Tokenizer:
    """Fit k-means on a seeded random sample of the train split's frames; write the tokenizer dir."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    config = replace(config, features=resolved_spec(config.features))
    items = [item for item in corpus_items(corpus_dir, config.features.sample_rate) if item.split == "train"]
    if not items:
        raise StageError(f"{corpus_dir}: no train utterances to fit the tokenizer on")
    manifest_hash = content_hash("".join(f"{u.id}\t{u.path}\n" for u in read_manifest(corpus_dir)))
    # Where and in how many processes features are extracted does not change the output.
    stage_config = {**{k: v for k, v in to_dict(config).items() if k != "device"}, "workers": 0}
    stage_fp = fingerprint(stage_config) + manifest_hash[:8]
    if check_output_dir(out_dir, stage_fp):
        log.info("%s is already complete; skipping", out_dir)
        return load_tokenizer(out_dir)
    start = time.time()
    # A seeded shuffle of the train utterances; features are extracted until the
    # sample is covered twice over, so a large corpus is not featurized whole.
    order = np.random.default_rng(config.seed).permutation(len(items))
    chunks, frames = [], 0
    results = extract([items[i] for i in order], config.features, None, config.workers, desc="features",
                      device=config.device, batch_seconds=None)
    try:
        for result in results:
            if result.problem:
                raise StageError(result.problem)
            chunks.append(result.values)
            frames += len(result.values)
            if frames >= 2 * config.frames_sample:
                break
    finally:
        results.close()
    sample = sample_frames(np.concatenate(chunks), config.frames_sample, config.seed)
    feature_s = time.time() - start
    centroids = train_kmeans(sample, config.k, config.kmeans_iterations, config.seed,
                             source=f"the k-means sample (frames_sample={config.frames_sample}; the train split "
                                    f"of {corpus_dir} gave {frames} frames)")
    log.info("k-means k=%d on %d frames of dim %d: %.1f s", config.k, len(sample), sample.shape[1],
             time.time() - start - feature_s)
    return save_tokenizer(out_dir, config.features, centroids, config.dedup, stage_fp, to_dict(config),
                          trained_on={"corpus": str(corpus_dir.resolve()), "frames": int(len(sample)),
                                      "feature_s": round(feature_s, 2),
                                      "kmeans_s": round(time.time() - start - feature_s, 2)})


def training_corpus(tokenizer_dir: str | Path) -> tuple[str | None, Path | None]:
    """(trained_on.corpus as recorded, the corpus dir it names now, or None when none is found).

    Tokenizers written before the path was stored absolute hold it relative to the working
    directory of `tokenizer train`, which is not recorded. It was most likely where --out was
    given from, so the tokenizer dir and its ancestors are tried (nearest first), then the
    current directory; the first that holds a corpus manifest wins."""
    tokenizer_dir = Path(tokenizer_dir)
    try:
        recorded = read_json(tokenizer_dir / TOKENIZER_JSON).get("trained_on", {}).get("corpus")
    except (OSError, ValueError, AttributeError) as err:
        raise StageError(f"{tokenizer_dir / TOKENIZER_JSON}: unreadable ({type(err).__name__}: {err})") from err
    if not recorded or not isinstance(recorded, str):
        return None, None
    path = Path(recorded)
    bases = [Path()] if path.is_absolute() else [*[tokenizer_dir.resolve(), *tokenizer_dir.resolve().parents],
                                                   Path.cwd()]
    found = next((base / path for base in bases if (base / path / MANIFEST).is_file()), None)
    return recorded, found.resolve() if found is not None else None
