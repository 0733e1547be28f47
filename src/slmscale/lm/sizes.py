"""Model sizes: the paper's five presets and a tiny CPU ladder from one knob.

Paper presets (docs/PAPER.md §2.1, Table 1, with the FFN sizes and batch sizes of the
released configs): context 2050, peak LR 5e-4, sequences per update 64/128/256/252/456.

The tiny ladder (`tiny-L1` ... `tiny-L7`) turns one knob, the depth L, into a whole
model, as nanochat does: width 32·L, head dimension 32, FFN 8d/3 rounded up to a
multiple of 32, context 256. Non-embedding parameters grow as about 12·(32L)²·L,
from 13k (L1) to 4.3M (L7). Batch: 4,096 tokens per update at every depth. (It was 8,192 from L5:
at the budgets a CPU study affords, 0.2-1.6M tokens, that halved the updates of the larger
sizes, so L5-L7 lost to L4 at 200k-400k tokens, and a Chinchilla fit over L1-L7 extrapolated
with 11.7% error; with one batch the loss falls with N at every D and the error is 3.5%:
docs/LOG.md, 2026-12-04, GPU pilots.)
Peak LR 0.016/sqrt(L), from a sweep on MFCC units of the demo corpus (docs/LOG.md,
2026-11-25): the best LR was 8e-3..1.6e-2 at L2 and 8e-3 at L5, far above the
paper's 5e-4, as expected for models this small and budgets this short.

FLOPs: C = 6·N·D with N the *total* parameter count, the convention behind the
paper's size names and Pythia's compute axis (docs/PAPER.md §2.6); the attention term
adds 12·layers·width·context per token (the authors' MFU formula, docs/PAPER.md §2.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from slmscale.lm.model import ModelShape

PAPER_VOCAB = 502  # 500 HuBERT units + EOS + PAD (docs/PAPER.md §1)
PAPER_CONTEXT = 2050
TINY_CONTEXT = 256
TINY_DEPTHS = range(1, 8)


def swiglu_hidden(width: int, multiple_of: int) -> int:
    """8d/3 rounded up to a multiple: 512 -> 1536, 768 -> 2048, 1024 -> 2816, 2048 -> 5632."""
    hidden = -(-8 * width // 3)
    return -(-hidden // multiple_of) * multiple_of


@dataclass(frozen=True)
class SizePreset:
    """A named model shape (without vocabulary) and the training settings that go with it."""
    name: str
    layers: int
    width: int
    heads: int
    ffn_hidden: int
    context: int
    sequences_per_update: int
    lr: float

    @property
    def tokens_per_update(self) -> int:
        return self.sequences_per_update * self.context

    def shape(self, vocab_size: int, context: int | None = None) -> ModelShape:
        return ModelShape(vocab_size=vocab_size, context=context or self.context, layers=self.layers,
                          width=self.width, heads=self.heads, ffn_hidden=self.ffn_hidden)


def _paper(name: str, layers: int, width: int, heads: int, sequences: int) -> SizePreset:
    return SizePreset(name, layers, width, heads, swiglu_hidden(width, 256), PAPER_CONTEXT, sequences, 5e-4)


def tiny_preset(depth: int) -> SizePreset:
    """The tiny ladder's one knob: depth L gives width 32·L, L heads of 32."""
    width = 32 * depth
    sequences = 16
    lr = round(0.016 / depth ** 0.5, 5)  # falls with width (docs/LOG.md, tiny LR sweep)
    return SizePreset(f"tiny-L{depth}", depth, width, depth, swiglu_hidden(width, 32),
                      TINY_CONTEXT, sequences, lr)


PRESETS: dict[str, SizePreset] = {p.name: p for p in [
    *(tiny_preset(depth) for depth in TINY_DEPTHS),
    _paper("20m", 6, 512, 8, 64),
    _paper("85m", 12, 768, 12, 128),
    _paper("155m", 12, 1024, 16, 256),
    _paper("309m", 24, 1024, 16, 252),
    _paper("823m", 16, 2048, 32, 456),
]}


def get_preset(name: str) -> SizePreset:
    if name not in PRESETS:
        raise KeyError(f"unknown size {name!r}; choose one of {', '.join(PRESETS)} (`slmscale sizes`)")
    return PRESETS[name]


@dataclass(frozen=True)
class ParamCounts:
    embedding: int
    """The (tied) embedding matrix, counted once."""
    non_embedding: int
    """Every other weight: attention, MLP and norms."""

    @property
    def total(self) -> int:
        return self.embedding + self.non_embedding

    def as_dict(self) -> dict[str, int]:
        return {"total": self.total, "non_embedding": self.non_embedding, "embedding": self.embedding}


def count_params(shape: ModelShape) -> ParamCounts:
    """Parameter counts from the shape alone (asserted equal to the module's in tests)."""
    width = shape.width
    attention = 4 * width * width  # q, k, v, o
    mlp = 3 * width * shape.ffn_hidden  # gate, up, down
    norms = 2 * width
    non_embedding = shape.layers * (attention + mlp + norms) + width  # + final norm
    return ParamCounts(embedding=shape.vocab_size * width, non_embedding=non_embedding)


def count_module_params(model) -> ParamCounts:
    """The same groups counted on a built model, so the formula is checked against reality."""
    embedding = model.embed_tokens.weight.numel()
    total = sum(p.numel() for p in model.parameters())  # tied head is one Parameter, counted once
    return ParamCounts(embedding=embedding, non_embedding=total - embedding)


def flops_per_token(shape: ModelShape, with_attention: bool = False) -> int:
    """Training FLOPs per token: 6N (forward + backward), plus 12·L·d·T for attention scores."""
    flops = 6 * count_params(shape).total
    if with_attention:
        flops += 12 * shape.layers * shape.width * shape.context
    return flops


def size_table(vocab_size: int = PAPER_VOCAB) -> list[dict]:
    """One row per preset: what `slmscale sizes --json` prints."""
    rows = []
    for preset in PRESETS.values():
        shape = preset.shape(vocab_size)
        counts = count_params(shape)
        rows.append({"name": preset.name, "layers": shape.layers, "width": shape.width,
                     "heads": shape.heads, "ffn_hidden": shape.ffn_hidden, "context": shape.context,
                     "total": counts.total, "non_embedding": counts.non_embedding,
                     "embedding": counts.embedding, "tokens_per_update": preset.tokens_per_update,
                     "lr": preset.lr, "flops_per_token": flops_per_token(shape),
                     "flops_per_token_with_attention": flops_per_token(shape, with_attention=True)})
    return rows

