"""`slmscale import-checkpoint` and `export --format slm-scaling`: checkpoints of the paper's code.

The reference is a plain forward pass written here from the conventions of the authors' model
(src/slm/model.py of tiagoCuervo/slm_scaling): RoPE rotating the interleaved pairs (2i, 2i+1) of each
head as complex numbers, pre-norm RMSNorm, SwiGLU w2(silu(w1 x) * w3 x), the head tied to the
embedding. It reads the native tensors directly, in float64, and shares no code with the importer.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from slmscale.cli import main
from slmscale.config import ConfigError
from slmscale.files import StageError
from slmscale.lm import slm_scaling_format
from slmscale.lm.config import CheckpointImportConfig
from slmscale.lm.hf import load_pretrained, save_pretrained
from slmscale.lm.import_checkpoint import import_checkpoint
from slmscale.lm.model import Llama, ModelShape
from slmscale.lm.released import released_run
from slmscale.lm.slm_scaling_fixtures import write_native_checkpoint
from slmscale.units.fixtures import make_units_dir

TOLERANCE = 1e-5


def native_tensors(path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(path.glob("model*.safetensors")):
        tensors.update(load_file(str(file)))
    return {name: tensor.double() for name, tensor in tensors.items()}


def reference_log_probs(path, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token log-probabilities (T, vocab) of the native checkpoint at `path`, by the paper's layer
    conventions, in float64."""
    args = json.loads((path / "config.json").read_text())["model_args"]
    w = native_tensors(path)
    length, heads, dim = len(tokens), args["n_heads"], args["dim"]
    head_dim = dim // heads

    def rms_norm(x, gain):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + args["norm_eps"]) * gain

    freqs = 10_000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), freqs)
    rotation = torch.polar(torch.ones_like(angles), angles)[:, None, :]  # (T, 1, head_dim / 2)

    def rope(x):  # consecutive dimensions (2i, 2i + 1) are one complex number, rotated by position
        pairs = torch.view_as_complex(x.reshape(length, heads, head_dim // 2, 2).contiguous())
        return torch.view_as_real(pairs * rotation).reshape(length, heads, head_dim)

    causal = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
    x = w["tok_embeddings.weight"][tokens]
    for layer in range(args["n_layers"]):
        p = f"layers.{layer}."
        h = rms_norm(x, w[p + "attention_norm.weight"])
        q = rope(h @ w[p + "attention.wq.weight"].T)
        k = rope(h @ w[p + "attention.wk.weight"].T)
        v = (h @ w[p + "attention.wv.weight"].T).reshape(length, heads, head_dim)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(head_dim)
        attended = torch.einsum("hts,shd->thd", scores.masked_fill(causal, -math.inf).softmax(-1), v)
        x = x + attended.reshape(length, dim) @ w[p + "attention.wo.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"])
        gate, up = h @ w[p + "feed_forward.w1.weight"].T, h @ w[p + "feed_forward.w3.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "feed_forward.w2.weight"].T
    logits = rms_norm(x, w["norm.weight"]) @ w["tok_embeddings.weight"].T
    return logits.log_softmax(-1)


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    """A units dir of 24 units (vocabulary 26, the fixtures' default) with a test split."""
    return make_units_dir(tmp_path_factory.mktemp("units") / "units")


def fixed_sequences() -> list[torch.Tensor]:
    rng = np.random.default_rng(3)
    return [torch.as_tensor(rng.integers(0, 26, size=n)) for n in (64, 17, 5)]


def slmscale_log_probs(model: Llama, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens[None])[0].double().log_softmax(-1)


@pytest.mark.parametrize("shards", [1, 3])
def test_the_imported_run_gives_the_native_models_log_probabilities(tmp_path, units, shards):
    src = write_native_checkpoint(tmp_path / "native", seed=shards, shards=shards)
    import_checkpoint(src, units, tmp_path / "run", CheckpointImportConfig(tokens=10_000))
    model = load_pretrained(tmp_path / "run")  # what eval and generate load
    transformers = pytest.importorskip("transformers")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "run", dtype=torch.float32).eval()
    for tokens in fixed_sequences():
        reference = reference_log_probs(src, tokens)
        assert (slmscale_log_probs(model, tokens) - reference).abs().max() < TOLERANCE
        with torch.no_grad():
            from_hf = hf(tokens[None]).logits[0].double().log_softmax(-1)
        assert (from_hf - reference).abs().max() < TOLERANCE
        assert reference.std() > 1.0  # the logits are far from uniform: a wrong weight would show


def test_without_the_rope_permutation_the_log_probabilities_differ(tmp_path, units, monkeypatch):
    """The reference can tell the two RoPE pairings apart: importing with q/k rows left in the
    paper's interleaved order gives other log-probabilities."""
    src = write_native_checkpoint(tmp_path / "native")
    monkeypatch.setattr(slm_scaling_format, "interleaved_to_halves", lambda weight, heads: weight)
    import_checkpoint(src, units, tmp_path / "run", CheckpointImportConfig(tokens=10_000))
    tokens = fixed_sequences()[0]
    assert (slmscale_log_probs(load_pretrained(tmp_path / "run"), tokens)
            - reference_log_probs(src, tokens)).abs().max() > 1e-2


def test_import_export_import_is_exact(tmp_path, units, capsys):
    src = write_native_checkpoint(tmp_path / "native", seed=5, shards=2)
    assert main(["import-checkpoint", str(src), "--units", str(units), "--out", str(tmp_path / "run"),
                 "--tokens", "1e4"]) == 0
    assert main(["export", str(tmp_path / "run"), "--format", "slm-scaling", "--out", str(tmp_path / "back")]) == 0
    exported = load_file(str(tmp_path / "back" / "model.safetensors"))
    original = {name: t for file in src.glob("model-*.safetensors") for name, t in load_file(str(file)).items()}
    assert exported.keys() == original.keys()
    assert all(torch.equal(exported[name], original[name]) for name in original)  # bitwise
    assert json.loads((tmp_path / "back" / "config.json").read_text()) == json.loads((src / "config.json").read_text())
    assert main(["import-checkpoint", str(tmp_path / "back"), "--units", str(units), "--out", str(tmp_path / "again"),
                 "--tokens", "1e4"]) == 0
    first, second = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("run", "again"))
    assert first.keys() == second.keys() and all(torch.equal(first[n], second[n]) for n in first)
    records = [json.loads((tmp_path / d / "run.json").read_text()) for d in ("run", "again")]
    assert records[0]["shape"] == records[1]["shape"] and records[0]["test_loss"] == records[1]["test_loss"]
    assert records[0]["origin"]["model_args"] == records[1]["origin"]["model_args"]
    assert (tmp_path / "run" / "config.json").read_bytes() == (tmp_path / "again" / "config.json").read_bytes()


def test_a_model_made_here_exports_to_the_native_format(tmp_path):
    """An slmscale model (not imported) written in the paper's format computes the same function there."""
    torch.manual_seed(0)
    model = Llama(ModelShape(vocab_size=26, context=64, layers=2, width=32, heads=4, ffn_hidden=80))
    with torch.no_grad():
        model.embed_tokens.weight.mul_(25)  # logits far from uniform
    save_pretrained(model, tmp_path / "run", eos_id=24, pad_id=25)
    assert main(["export", str(tmp_path / "run"), "--format", "slm-scaling", "--out", str(tmp_path / "native")]) == 0
    args = json.loads((tmp_path / "native" / "config.json").read_text())["model_args"]
    assert args["hidden_dim"] == 80 and args["n_kv_heads"] is None
    for tokens in fixed_sequences():
        assert (slmscale_log_probs(model, tokens) - reference_log_probs(tmp_path / "native", tokens)).abs().max() \
            < TOLERANCE


def test_a_released_name_gives_the_size_and_tokens_seen():
    exact = released_run("gslm-scaling-85m-43p5b")
    assert (exact.size, exact.tokens, exact.exact) == ("85m", 43_545_280_000, True)
    rounded = released_run("gslm-scaling-155m-2p5b")  # of the released form, not in their table
    assert (rounded.size, rounded.tokens, rounded.exact) == ("155m", 2_500_000_000, False)
    assert released_run("gslm-scaling-823m-26b").tokens == 26_330_200_000
    assert released_run("my-model") is None


def test_a_released_20m_checkpoint_enters_with_its_parameters_tokens_and_flops(tmp_path):
    units = make_units_dir(tmp_path / "units", units=500, utterances={"train": 20, "test": 20})
    src = write_native_checkpoint(tmp_path / "gslm-scaling-20m-0p7b", dim=512, n_layers=6, n_heads=8,
                                  vocab_size=502, multiple_of=256, block_size=2050)
    record = import_checkpoint(src, units, tmp_path / "run", CheckpointImportConfig())
    assert record["size"] == "20m" and record["params"]["total"] == 20_710_912  # docs/PAPER.md §2.1
    assert record["shape"]["ffn_hidden"] == 1536 and record["tokens"] == 662_560_000
    assert record["flops"] == 6 * 20_710_912 * 662_560_000 and record["epochs"] == 1.0
    assert record["origin"]["tokens_from"] == "released table" and record["status"] == "completed"
    assert record["test_tokens"] == json.loads((units / "meta.json").read_text())["splits"]["test"]["tokens"] - 1
    with pytest.raises(StageError, match="the name says size 85m, but .* describes 20m"):
        import_checkpoint(src, units, tmp_path / "other", CheckpointImportConfig(name="gslm-scaling-85m-43p5b"))


def test_a_rerun_skips_and_another_config_is_refused(tmp_path, units):
    src = write_native_checkpoint(tmp_path / "native")
    first = import_checkpoint(src, units, tmp_path / "run", CheckpointImportConfig(tokens=5000))
    written = (tmp_path / "run" / "run.json").read_bytes()
    assert import_checkpoint(src, units, tmp_path / "run", CheckpointImportConfig(tokens=5000, batch_size=2)) == first
    assert (tmp_path / "run" / "run.json").read_bytes() == written
    with pytest.raises(StageError, match="different config"):
        import_checkpoint(src, units, tmp_path / "run", CheckpointImportConfig(tokens=6000))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "run.json").write_text("{}")
    with pytest.raises(StageError, match="exists and is not an imported run"):
        import_checkpoint(src, units, tmp_path / "busy", CheckpointImportConfig())


def _edited(path, model_args: dict | None = None, **top):
    """A tiny native checkpoint whose config.json then gets `top` keys and `model_args` keys changed."""
    write_native_checkpoint(path)
    config = json.loads((path / "config.json").read_text())
    config.update(top)
    config["model_args"].update(model_args or {})
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("make, needle", [
    (lambda p: write_native_checkpoint(p, n_kv_heads=2), "n_kv_heads is 2 with n_heads 4: grouped-query attention"),
    (lambda p: write_native_checkpoint(p, prefix_vocab_size=8), "model_args.prefix_vocab_size is 8: prefix embeddings"),
    (lambda p: write_native_checkpoint(p, untied_head=True), "output.weight differs from tok_embeddings.weight"),
    (lambda p: write_native_checkpoint(p, rope_theta=5e5), "unknown model_args key 'rope_theta'"),
    (lambda p: write_native_checkpoint(p, vocab_size=30), "vocab_size 30, but .*meta.json has vocab_size 26"),
    (lambda p: _edited(p, {"hidden_dim": 64}),
     r"tensor 'layers.0.feed_forward.w1.weight' is torch.float32 \(96, 32\); config.json's model_args need "
     r".*\(64, 32\)"),
    (lambda p: _edited(p, format_version=2), "config.json: format_version is 2; only version 1"),
    (lambda p: _edited(p, model_type="llama"), "model_type is 'llama', not 'slm'"),
    (lambda p: (write_native_checkpoint(p), (p / "model.safetensors").unlink()), "no model.safetensors or"),
    (lambda p: (write_native_checkpoint(p), (p / "model.safetensors").write_bytes(b"not safetensors")),
     "model.safetensors: not a readable safetensors file"),
])
def test_what_slmscale_cannot_represent_is_a_one_line_refusal(tmp_path, units, capsys, make, needle):
    make(tmp_path / "native")
    assert main(["import-checkpoint", str(tmp_path / "native"), "--units", str(units), "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(needle, err), err
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_the_import_config_is_checked():
    with pytest.raises(ConfigError, match="tokens: must be at least 1"):
        CheckpointImportConfig(tokens=0)
    with pytest.raises(ConfigError, match="test_tokens"):
        CheckpointImportConfig(test_tokens=1)
