"""Import k-means centroids fitted elsewhere (e.g. TWIST's `..._L11_km500.bin`) as a tokenizer dir.

Three file formats, chosen by suffix:

- ``.npy``: a float [k, dim] array (read with ``allow_pickle=False``);
- ``.safetensors``: a tensor named "centroids" (or the file's only tensor);
- anything else: a joblib pickle of a scikit-learn (MiniBatch)KMeans, the
  textlesslib/fairseq release format. Unpickling runs whatever code the file
  names, so it happens only when the caller says it trusts the file.

The centroids are copied into an ordinary tokenizer dir (safetensors, no
pickle) together with the exact feature spec they were fitted on, which
`tokenize` then computes. That spec defaults to **no CMVN**: the released
textlesslib/TWIST quantizers were fitted on raw HuBERT features, and assigning
per-utterance-normalised features to them gives silently wrong units.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from slmscale.config import to_dict
from slmscale.files import StageError, check_output_dir, content_hash
from slmscale.log import get_logger
from slmscale.units.config import ImportConfig
from slmscale.units.extraction import feature_dim
from slmscale.units.tokenizer import Tokenizer, load_tokenizer, resolved_spec, save_tokenizer

log = get_logger(__name__)

REFUSAL = ("{path}: refusing to load a pickled k-means model without --trust-pickle. Unpickling can run "
           "arbitrary code contained in the file, so only load files you obtained from a source you trust "
           "(e.g. the textlesslib/TWIST release), then rerun with --trust-pickle (trust_pickle=True). The "
           "centroids are converted to safetensors, so this is needed only once. (.npy and .safetensors "
           "centroids need no such trust.)")


def _checked_matrix(centers: object, path: Path, what: str) -> np.ndarray:
    """`centers` as float32 [k, dim], or a StageError naming the file."""
    array = np.asarray(centers)
    if array.dtype.kind not in "fiu":
        raise StageError(f"{path}: {what} has dtype {array.dtype}, not a numeric [k, dim] matrix")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1 or not np.isfinite(array).all():
        raise StageError(f"{path}: {what} of shape {array.shape} is not a finite [k, dim] matrix")
    return array.astype(np.float32)


def read_npy_centroids(path: Path) -> np.ndarray:
    """A [k, dim] array saved with `numpy.save` (object arrays are refused: they would need pickle)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise StageError(f"{path}: not a readable .npy array ({type(err).__name__}: {err})") from err
    return _checked_matrix(array, path, "the array")


def read_safetensors_centroids(path: Path) -> np.ndarray:
    """The tensor "centroids" of a safetensors file, or its only tensor."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        tensors = load_file(str(path))
    except (OSError, ValueError, SafetensorError) as err:
        raise StageError(f"{path}: not a readable safetensors file ({type(err).__name__}: {err})") from err
    if "centroids" in tensors:
        return _checked_matrix(tensors["centroids"], path, 'tensor "centroids"')
    if len(tensors) != 1:
        raise StageError(f"{path}: holds tensors {sorted(tensors)}; expected one named \"centroids\" "
                         "(or a single tensor)")
    name, array = next(iter(tensors.items()))
    return _checked_matrix(array, path, f"tensor {name!r}")


def read_pickled_centroids(path: str | Path, trust_pickle: bool = False) -> np.ndarray:
    """The `cluster_centers_` [k, dim] of a joblib-pickled scikit-learn KMeans."""
    path = Path(path)
    if not trust_pickle:
        raise StageError(REFUSAL.format(path=path))
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
    return _checked_matrix(centers, path, "cluster_centers_")


def read_centroids(path: str | Path, trust_pickle: bool = False) -> tuple[np.ndarray, str]:
    """(centroids float32 [k, dim], format name) of a .npy, .safetensors or (trusted) pickle file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".safetensors") and not trust_pickle:
        raise StageError(REFUSAL.format(path=path))  # before touching the file at all
    if not path.is_file():
        raise StageError(f"{path}: no such file")
    if suffix == ".npy":
        return read_npy_centroids(path), "npy"
    if suffix == ".safetensors":
        return read_safetensors_centroids(path), "safetensors"
    return read_pickled_centroids(path, trust_pickle), "sklearn-pickle"


def import_kmeans(path: str | Path, out_dir: str | Path, config: ImportConfig = ImportConfig(),
                  trust_pickle: bool = False) -> Tokenizer:
    """Write a tokenizer dir from k-means centroids and the feature spec they were fitted on."""
    if not isinstance(config, ImportConfig):
        # A bare FeatureSpec would bring FeatureSpec's own default, cmvn=True: the bug this API avoids.
        raise TypeError(f"import_kmeans takes an ImportConfig, got {type(config).__name__}")
    path, out_dir = Path(path), Path(out_dir)
    centroids, file_format = read_centroids(path, trust_pickle)
    config = replace(config, features=resolved_spec(config.features))
    spec = config.features
    stage_fp = content_hash(centroids.tobytes(), repr(to_dict(config)))
    if check_output_dir(out_dir, stage_fp):
        log.info("%s is already complete; skipping", out_dir)
        return load_tokenizer(out_dir)
    if centroids.shape[0] + 2 > 65536:
        raise StageError(f"{path}: k={centroids.shape[0]} does not fit the uint16 units format")
    # Building the extractor checks the spec (and the HuBERT dir) and gives the feature dim.
    dim = feature_dim(spec)
    if dim != centroids.shape[1]:
        raise StageError(f"{path}: centroids have dim {centroids.shape[1]} but the {spec.kind} features "
                         f"(layer {spec.layer}, {spec.frame_rate} Hz) have dim {dim}; "
                         "wrong --features/--hubert-path/--layer/--frame-rate?")
    source = {"imported_from": str(path.resolve()), "format": file_format}
    log.info("imported %s centroids [%d, %d] for %s features, layer %d, %d Hz, cmvn=%s", file_format,
             centroids.shape[0], dim, spec.kind, spec.layer, spec.frame_rate, spec.cmvn)
    return save_tokenizer(out_dir, spec, centroids, config.dedup, stage_fp, {**to_dict(config), **source},
                          **source)
