"""Imported k-means centroids give the units they were fitted to give (issue 14).

A scikit-learn k-means is fitted on raw (un-normalised) hidden-layer features of a
small random-weight HuBERT, computed by the project's own extractor from audio this
test writes. Imported with `tokenizer import-kmeans` (pickle, .npy, .safetensors),
`tokenize` must reproduce `predict` on every frame: the import has to compute the
features the centroids were fitted on (no CMVN unless asked).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from slmscale.audio.io import load_audio, write_wav
from slmscale.cli import main
from slmscale.units.features import FeatureSpec, build_extractor
from slmscale.units.shards import open_split
from slmscale.units.tokenizer import load_tokenizer

SR = 16000
LAYER = 2


def voice(seconds: float, seed: int) -> np.ndarray:
    """Gliding harmonics at a per-utterance pitch and loudness, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 100 + 30 * seed + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum(np.sin(h * phase) / h for h in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return ((0.05 + 0.1 * seed) * wav + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def save_hubert(directory: Path) -> None:
    from transformers import HubertConfig, HubertModel
    torch.manual_seed(0)
    HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                             conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
                ).eval().save_pretrained(directory, safe_serialization=True)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Audio, a tiny HuBERT, and a k-means fitted on the raw layer-2 features of that audio."""
    cluster = pytest.importorskip("sklearn.cluster")
    root = tmp_path_factory.mktemp("kmeans_import")
    save_hubert(root / "hubert")
    audio = root / "audio"
    audio.mkdir()
    for n in range(4):
        write_wav(audio / f"utt{n}.wav", voice(1.5, n))
    spec = FeatureSpec(kind="hubert", hubert_path=str(root / "hubert"), layer=LAYER, frame_rate=50, cmvn=False)
    raw_extractor = build_extractor(spec)
    cmvn_extractor = build_extractor(replace(spec, cmvn=True))
    samples = {f"utt{n}": load_audio(audio / f"utt{n}.wav").samples for n in range(4)}  # what tokenize reads
    raw = {stem: raw_extractor(wav) for stem, wav in samples.items()}
    normalised = {stem: cmvn_extractor(wav) for stem, wav in samples.items()}
    model = cluster.KMeans(n_clusters=8, n_init=1, random_state=0).fit(np.concatenate(list(raw.values())))
    expected = {stem: model.predict(frames) for stem, frames in raw.items()}
    with_cmvn = {stem: model.predict(frames) for stem, frames in normalised.items()}
    # The test only means something if CMVN changes the assignments of this data.
    assert agreement(with_cmvn, expected) < 0.95
    return SimpleNamespace(root=root, audio=audio, hubert=root / "hubert", model=model, expected=expected,
                           normalised=normalised)


def agreement(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    assert got.keys() == want.keys() and all(len(got[k]) == len(want[k]) for k in want)
    return float(np.mean(np.concatenate([got[k] == want[k] for k in want])))


def save_centroids(model, path: Path) -> list[str]:  # noqa: ANN001 - a fitted sklearn KMeans
    """Write the centroids in the format of `path`'s suffix; the import flags that format needs."""
    centers = model.cluster_centers_.astype(np.float32)
    if path.suffix == ".npy":
        np.save(path, centers)
        return []
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file
        save_file({"centroids": centers}, str(path))
        return []
    import joblib
    joblib.dump(model, path)
    return ["--trust-pickle"]


def tokenized(fitted: SimpleNamespace, tok: Path, out: Path) -> dict[str, np.ndarray]:
    assert main(["tokenize", str(fitted.audio), "--tokenizer", str(tok), "--out", str(out),
                 "--no-dedup", "--workers", "1"]) == 0
    split = open_split(out, "audio")
    return {utt: split.utterance(i).astype(np.int64) for i, utt in enumerate(split.ids)}


def hubert_flags(fitted: SimpleNamespace) -> list[str]:
    return ["--features", "hubert", "--hubert-path", str(fitted.hubert), "--layer", str(LAYER)]


@pytest.mark.parametrize("name,rate", [
    ("km8.bin", ["frame_rate=50"]),  # the TWIST/textlesslib pickle, the old bare-key spelling of the rate
    ("km8.npy", ["--frame-rate", "50"]),
    ("km8.safetensors", []),  # frame rate left to its default: the model's native 50 Hz
])
def test_imported_centroids_reproduce_their_assignments(fitted: SimpleNamespace, tmp_path: Path,
                                                         name: str, rate: list[str]) -> None:
    trust = save_centroids(fitted.model, tmp_path / name)
    tok = tmp_path / "tok"
    assert main(["tokenizer", "import-kmeans", str(tmp_path / name), "--out", str(tok), *hubert_flags(fitted),
                 *rate, *trust]) == 0
    units = tokenized(fitted, tok, tmp_path / "units")
    share = agreement(units, fitted.expected)
    assert share == 1.0, f"imported units agree with the k-means' own predict on {share:.1%} of frames"
    desc = json.loads((tok / "tokenizer.json").read_text())
    assert desc["features"]["cmvn"] is False and desc["cmvn"] is False
    assert (desc["kind"], desc["layer"], desc["frame_rate"], desc["dim"], desc["k"]) == ("hubert", LAYER, 50, 32, 8)
    assert desc["features"]["hubert_path"] == str(fitted.hubert.resolve())
    assert desc["imported_from"] == str((tmp_path / name).resolve())


def test_cmvn_on_import_is_explicit_and_recorded(fitted: SimpleNamespace, tmp_path: Path) -> None:
    """--cmvn states that the centroids were fitted on per-utterance-CMVN features; tokenize then computes those."""
    save_centroids(fitted.model, tmp_path / "km8.npy")
    tok = tmp_path / "tok"
    assert main(["tokenizer", "import-kmeans", str(tmp_path / "km8.npy"), "--out", str(tok), *hubert_flags(fitted),
                 "--cmvn"]) == 0
    assert load_tokenizer(tok).spec.cmvn is True
    assert json.loads((tok / "tokenizer.json").read_text())["cmvn"] is True
    want = {stem: fitted.model.predict(frames) for stem, frames in fitted.normalised.items()}
    assert agreement(tokenized(fitted, tok, tmp_path / "units"), want) == 1.0


def _fails(argv: list[str], capsys: pytest.CaptureFixture, *needles: str) -> None:
    assert main(argv) == 2
    # The error is the last line; transformers may print a weight-loading progress bar before it.
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("slmscale tokenizer: error: "), err
    for needle in needles:
        assert needle in err, err


def test_bad_imports_are_one_line_errors(fitted: SimpleNamespace, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    from safetensors.numpy import save_file
    out = str(tmp_path / "tok")
    flags = ["--out", out, *hubert_flags(fitted)]
    save_centroids(fitted.model, tmp_path / "km8.bin")
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "km8.bin"), *flags], capsys, "km8.bin", "--trust-pickle")
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "nothing.npy"), *flags], capsys, "nothing.npy: no such file")
    # An object array would need pickle to load: refused, never unpickled.
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "objects.npy"), *flags], capsys, "objects.npy", ".npy")
    np.save(tmp_path / "flat.npy", np.zeros(32, np.float32))
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "flat.npy"), *flags], capsys, "flat.npy", "[k, dim]")
    save_file({"a": np.zeros((8, 32), np.float32), "b": np.zeros(3, np.float32)}, str(tmp_path / "two.safetensors"))
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "two.safetensors"), *flags], capsys,
           "two.safetensors", "'a', 'b'", "centroids")
    np.save(tmp_path / "wide.npy", np.zeros((8, 33), np.float32))
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "wide.npy"), *flags], capsys, "wide.npy", "dim 33", "dim 32")
    save_centroids(fitted.model, tmp_path / "km8.npy")
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "km8.npy"), *flags, "--frame-rate", "100"], capsys,
           "frame_rate 100 Hz is not reachable from the native 50 Hz")
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "km8.npy"), *flags, "features.frame_rate=30"], capsys,
           "frame_rate 30")
    _fails(["tokenizer", "import-kmeans", str(tmp_path / "km8.npy"), "--out", out, "--features", "hubert"], capsys,
           "hubert_path")
    assert not Path(out).exists()
