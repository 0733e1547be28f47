"""Import a textlesslib/fairseq k-means model (e.g. TWIST's `..._L11_km500.bin`).

Those files are joblib pickles of a scikit-learn (MiniBatch)KMeans. Unpickling
runs whatever code the file names, so it happens only when the caller says it
trusts the file; the centroids are then copied into an ordinary tokenizer dir
(safetensors, no pickle) and the pickle is never needed again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from slmscale.config import to_dict
from slmscale.files import StageError, check_output_dir
from slmscale.log import get_logger
from slmscale.units.features import FeatureSpec
from slmscale.units.tokenize import feature_dim
from slmscale.units.tokenizer import Tokenizer, load_tokenizer, resolved_spec, save_tokenizer

log = get_logger(__name__)

REFUSAL = ("{path}: refusing to load a pickled k-means model without --trust-pickle. Unpickling can run "
           "arbitrary code contained in the file, so only load files you obtained from a source you trust "
           "(e.g. the textlesslib/TWIST release), then rerun with --trust-pickle (trust_pickle=True). The "
           "centroids are converted to safetensors, so this is needed only once.")


def read_pickled_centroids(path: str | Path, trust_pickle: bool = False) -> np.ndarray:
    """The `cluster_centers_` [k, dim] of a joblib-pickled scikit-learn KMeans."""
    path = Path(path)
    if not trust_pickle:
        raise StageError(REFUSAL.format(path=path))
    if not path.is_file():
        raise StageError(f"{path}: no such file")
    try:
        import joblib
    except ImportError as err:
        raise StageError("importing a k-means pickle needs joblib and scikit-learn: "
                         "pip install joblib scikit-learn") from err
    try:
        model = joblib.load(path)
    except Exception as err:  # a pickle can fail in any way its classes choose
        raise StageError(f"{path}: cannot unpickle ({type(err).__name__}: {err})") from err
    centers = getattr(model, "cluster_centers_", None)
    if centers is None:
        raise StageError(f"{path}: holds a {type(model).__name__}, not a fitted k-means model "
                         "(no cluster_centers_)")
    centers = np.asarray(centers)
    if centers.ndim != 2 or centers.shape[0] < 1 or not np.isfinite(centers).all():
        raise StageError(f"{path}: cluster_centers_ of shape {centers.shape} is not a finite [k, dim] matrix")
    return centers.astype(np.float32)


def import_kmeans(path: str | Path, out_dir: str | Path, spec: FeatureSpec, trust_pickle: bool = False,
                  dedup: bool = True) -> Tokenizer:
    """Write a tokenizer dir from a pickled k-means model and the feature spec it was fit on."""
    path, out_dir = Path(path), Path(out_dir)
    centroids = read_pickled_centroids(path, trust_pickle)
    spec = resolved_spec(spec)
    stage_fp = hashlib.sha256(centroids.tobytes() + repr((to_dict(spec), dedup)).encode()).hexdigest()[:16]
    if check_output_dir(out_dir, stage_fp):
        log.info("%s is already complete; skipping", out_dir)
        return load_tokenizer(out_dir)
    if centroids.shape[0] + 2 > 65536:
        raise StageError(f"{path}: k={centroids.shape[0]} does not fit the uint16 units format")
    # Building the extractor checks the spec (and the HuBERT dir) and gives the feature dim.
    dim = feature_dim(spec)
    if dim != centroids.shape[1]:
        raise StageError(f"{path}: centroids have dim {centroids.shape[1]} but the {spec.kind} features "
                         f"(layer {spec.layer}) have dim {dim}; wrong --features/--hubert-path/--layer?")
    return save_tokenizer(out_dir, spec, centroids, dedup, stage_fp,
                          {"imported_from": str(path.resolve()), "features": to_dict(spec), "dedup": dedup},
                          imported_from=str(path.resolve()))
