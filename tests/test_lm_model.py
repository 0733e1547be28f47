"""The Llama unit LM: exact parameter counts, FLOPs, init, HF equivalence, KV-cached sampling."""

from __future__ import annotations

import json
import math

import pytest
import torch

from slmscale.cli import main
from slmscale.lm.config import SamplingConfig
from slmscale.lm.generate import filter_logits, sample
from slmscale.lm.hf import load_pretrained, save_pretrained
from slmscale.lm.model import Llama, ModelShape, apply_rope, next_token_loss, rope_tables
from slmscale.lm.sizes import (PRESETS, count_module_params, count_params, flops_per_token, get_preset,
                               swiglu_hidden)

# docs/PAPER.md §2.1 (Table 1): exact totals at vocabulary 502.
PAPER_TOTALS = {"20m": 20_710_912, "85m": 85_339_392, "155m": 154_680_320,
                "309m": 308_845_568, "823m": 823_179_264}
SMALL = ModelShape(vocab_size=30, context=24, layers=2, width=32, heads=2, ffn_hidden=64)


def _model(shape: ModelShape = SMALL, seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    model = Llama(shape)
    with torch.no_grad():  # non-trivial norm gains, so the test sees them
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    return model.eval()


def test_paper_presets_have_the_papers_exact_sizes():
    for name, total in PAPER_TOTALS.items():
        counts = count_params(get_preset(name).shape(502))
        assert counts.total == total, name
        assert round(total / 1e6, 2) == {"20m": 20.71, "85m": 85.34, "155m": 154.68,
                                         "309m": 308.85, "823m": 823.18}[name]
    assert [swiglu_hidden(w, 256) for w in (512, 768, 1024, 2048)] == [1536, 2048, 2816, 5632]


@pytest.mark.parametrize("name", list(PRESETS))
def test_counts_by_group_add_up_and_match_the_built_module(name):
    shape = get_preset(name).shape(502)
    with torch.device("meta"):  # the 823m model without its 3.3 GB of memory
        model = Llama(shape)
    built, formula = count_module_params(model), count_params(shape)
    assert built == formula
    assert formula.embedding + formula.non_embedding == formula.total == sum(
        p.numel() for p in model.parameters())
    assert formula.embedding == 502 * shape.width


def test_tiny_ladder_spans_10k_to_5m_from_one_knob():
    tiny = [p for p in PRESETS.values() if p.name.startswith("tiny-")]
    sizes = [count_params(p.shape(202)).non_embedding for p in tiny]
    assert sizes == sorted(sizes) and 8_000 < sizes[0] < 20_000 and 3_000_000 < sizes[-1] < 6_000_000
    for preset in tiny:
        depth = int(preset.name.removeprefix("tiny-L"))
        assert (preset.layers, preset.width, preset.width // preset.heads) == (depth, 32 * depth, 32)
    lrs = [p.lr for p in tiny]
    assert lrs == sorted(lrs, reverse=True)


def test_flops_per_token_by_hand():
    counts = count_params(SMALL)
    assert flops_per_token(SMALL) == 6 * counts.total
    assert flops_per_token(SMALL, with_attention=True) == 6 * counts.total + 12 * 2 * 32 * 24


def test_initialisation_scales_residual_projections():
    shape = ModelShape(vocab_size=502, context=16, layers=8, width=256, heads=4, ffn_hidden=768)
    torch.manual_seed(0)
    model = Llama(shape)
    residual = 0.02 / math.sqrt(2 * 8)
    assert model.layers[3].self_attn.o_proj.weight.std().item() == pytest.approx(residual, rel=0.03)
    assert model.layers[3].mlp.down_proj.weight.std().item() == pytest.approx(residual, rel=0.03)
    assert model.layers[3].mlp.gate_proj.weight.std().item() == pytest.approx(0.02, rel=0.03)
    assert model.embed_tokens.weight.std().item() == pytest.approx(0.02, rel=0.03)
    assert torch.all(model.norm.weight == 1)


def test_hf_llama_loads_the_saved_model_and_gives_the_same_logits(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = _model()
    save_pretrained(model, tmp_path, eos_id=28, pad_id=29)
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path, torch_dtype=torch.float32).eval()
    tokens = torch.randint(0, 30, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = model(tokens), hf(tokens).logits
    assert (ours - theirs).abs().max().item() <= 1e-4
    assert torch.equal(hf.lm_head.weight, hf.model.embed_tokens.weight)  # tied
    # and back: slmscale reads the HF layout exactly
    again = load_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(again(tokens), ours)
    assert json.loads((tmp_path / "config.json").read_text())["eos_token_id"] == 28


def test_rope_and_its_backward_match_hf_rotate_half():
    """`apply_rope` (roll + signed sin) against HF's
    formula x*cos + rotate_half(x)*sin under autograd, and a float64 gradcheck."""
    shape = ModelShape(vocab_size=30, context=12, layers=1, width=24, heads=3, ffn_hidden=64)
    cos, signed_sin = rope_tables(shape, shape.context)
    half = shape.head_dim // 2
    sin = torch.cat([-signed_sin[:, :half], signed_sin[:, half:]], dim=-1)  # HF's table
    assert torch.equal(sin[:, :half], sin[:, half:]) and torch.equal(cos[:, :half], cos[:, half:])
    x = torch.randn(2, 3, 12, 8, requires_grad=True)
    grad = torch.randn(2, 3, 12, 8)
    (ours,) = torch.autograd.grad(apply_rope(x, cos, signed_sin), x, grad)
    first, second = x.chunk(2, dim=-1)
    reference = x * cos + torch.cat([-second, first], dim=-1) * sin
    (theirs,) = torch.autograd.grad(reference, x, grad)
    assert torch.allclose(apply_rope(x, cos, signed_sin), reference, atol=1e-6)
    assert torch.allclose(ours, theirs, atol=1e-6)
    x64 = torch.randn(1, 3, 12, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: apply_rope(t, cos.double(), signed_sin.double()), (x64,))


def test_training_gradients_equal_hf_llamas(tmp_path):
    """The whole backward (RoPE's hand-written one included) against HF's autograd graph."""
    transformers = pytest.importorskip("transformers")
    model = _model().train()
    save_pretrained(model, tmp_path, eos_id=28, pad_id=29)
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path, torch_dtype=torch.float32).train()
    # Units and EOS only: HF's embedding has padding_idx=PAD, whose input row gets no gradient.
    tokens = torch.randint(0, 29, (3, 24), generator=torch.Generator().manual_seed(2))
    next_token_loss(model(tokens[:, :-1]), tokens[:, 1:]).backward()
    next_token_loss(hf(tokens[:, :-1]).logits, tokens[:, 1:]).backward()
    theirs = dict(hf.model.named_parameters())
    for name, param in model.named_parameters():
        assert torch.allclose(param.grad, theirs[name].grad, rtol=1e-4, atol=1e-5), name


def test_kv_cache_step_logits_equal_a_full_forward():
    model = _model()
    tokens = torch.randint(0, 30, (1, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(tokens)
        cache = model.new_cache(1)
        steps = [model(tokens[:, :12], cache)]
        steps += [model(tokens[:, i:i + 1], cache) for i in range(12, 20)]
    assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-5


@pytest.mark.parametrize("cfg", [SamplingConfig(temperature=0), SamplingConfig(temperature=1.0, seed=3),
                                 SamplingConfig(temperature=0.8, top_k=5, top_p=0.9, seed=4)])
def test_cached_and_uncached_decoding_agree(cfg):
    model = _model()
    prompt = [1, 2, 3, 4, 5]
    cached = sample(model, prompt, 19, cfg)
    assert cached == sample(model, prompt, 19, cfg, use_cache=False)
    assert len(cached) == 19 and all(0 <= t < 30 for t in cached)


def test_sampling_beyond_the_context_and_stopping():
    model = _model()
    long = sample(model, [1, 2, 3], 60, SamplingConfig(seed=0))
    assert len(long) == 60
    stopped = sample(model, [1, 2, 3], 60, SamplingConfig(seed=0), stop_token=long[10])
    assert stopped[-1] == long[10] and len(stopped) <= 11


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isinf(filter_logits(logits, SamplingConfig(top_k=2))).tolist() == [False, False, True, True]
    assert torch.isinf(filter_logits(logits, SamplingConfig(top_p=0.75))).tolist() == [False, False, True, True]
    assert torch.isinf(filter_logits(logits, SamplingConfig(top_p=0.4))).tolist() == [False, True, True, True]


def test_sizes_command_lists_every_preset(capsys):
    assert main(["sizes", "--json", "--vocab-size", "202"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(PRESETS)
    for row in rows:
        assert {"name", "layers", "width", "heads", "context", "total", "non_embedding"} <= set(row)
        assert row["total"] == count_params(get_preset(row["name"]).shape(202)).total
    assert main(["sizes"]) == 0
    assert "823m" in capsys.readouterr().out


def test_a_model_built_on_the_meta_device_gets_true_rope_tables_when_materialised():
    with torch.device("meta"):
        model = Llama(SMALL)
    model.to_empty(device="cpu")
    cos, sin = rope_tables(SMALL, SMALL.context)
    assert torch.equal(model.rope_cos, cos) and torch.equal(model.rope_sin, sin)
    assert not any(name.startswith("rope") for name in model.state_dict())  # never saved, always computed


@pytest.mark.integration
def test_compiled_scoring_with_dynamic_lengths_equals_eager():
    # Scoring sees a new length with every batch, a single token included; the causal mask no longer
    # depends on the (symbolic, when compiled) length, and every length scores as in eager mode.
    model = _model()
    compiled = torch.compile(model, dynamic=True)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for length in (5, 9, 1, 13):
            tokens = torch.randint(0, 30, (2, length), generator=generator)
            assert (compiled(tokens) - model(tokens)).abs().max().item() < 1e-4, length
