"""Which variants each comparison of the report uses, found from the sweep's labels alone (any
sweep, not only the study's): the main speech variant (Figures 1, 2, 4; the paper's raw HuBERT
units), the text arm of the same world, the raw-vs-unigram pair (Figure 5) and the corpus
comparison at equal tokens (Figure 3). Each returns None or [] with a reason when it is absent.
"""

from __future__ import annotations

from collections import Counter

from slmscale.report.runs import SINGLE_EPOCH, Sweep, VariantRuns

RAW = "raw"
PREFERRED_OTHER_TOKENIZER = "unigram"
MIN_MATCHED_SIZES = 2


def _most_runs(variants: list[VariantRuns]) -> VariantRuns:
    return max(variants, key=lambda v: (len(v.table), v.name))


def main_variant(sweep: Sweep) -> tuple[VariantRuns | None, str]:
    """The raw-units speech variant of the largest grid (most completed speech runs)."""
    speech = sweep.speech()
    if not speech:
        return None, "the sweep has no completed speech runs"
    sizes: Counter[str] = Counter()
    for variant in speech:
        for grid in variant.grids:
            sizes[grid] += len(variant.table)
    grid = max(sizes, key=lambda g: (sizes[g], g)) if sizes else None
    candidates = [v for v in speech if grid is None or grid in v.grids]
    raw = [v for v in candidates if v.tokenizer == RAW]
    chosen = _most_runs(raw or candidates)
    why = f"raw-units speech variant of grid {grid!r}" if raw else f"speech variant with most runs in grid {grid!r}"
    return chosen, why


def text_arm(sweep: Sweep, main: VariantRuns | None) -> tuple[VariantRuns | None, str]:
    """The text variant of the same corpus as the main speech variant, else the largest one."""
    text = sweep.text()
    if not text:
        return None, "the sweep has no completed text-arm runs (modality text)"
    same = [v for v in text if main is not None and v.corpus == main.corpus]
    return _most_runs(same or text), "text arm of the same corpus" if same else "text variant with most runs"


def tokenizer_pair(sweep: Sweep, main: VariantRuns | None) -> tuple[list[VariantRuns], str]:
    """The main variant and a speech variant of the same corpus with another tokenizer (unigram first)."""
    if main is None:
        return [], "no main speech variant"
    others = [v for v in sweep.speech() if v.corpus == main.corpus and v.tokenizer != main.tokenizer]
    if not others:
        return [], (f"no speech variant of corpus {main.corpus!r} with a tokenizer other than "
                    f"{main.tokenizer!r}")
    preferred = [v for v in others if v.tokenizer == PREFERRED_OTHER_TOKENIZER]
    return [main, _most_runs(preferred or others)], "raw units against the other tokenizer"


def _keys(variant: VariantRuns) -> set[tuple[float, float]]:
    single = variant.table.epochs <= SINGLE_EPOCH
    return set(zip(variant.table.params[single].tolist(), variant.table.tokens[single].tolist()))


def corpus_groups(sweep: Sweep) -> tuple[list[dict], str]:
    """Per (modality, tokenizer): the variants whose corpus labels differ and that share single-epoch
    (params, tokens) runs over ≥2 sizes, with those shared runs. Speech groups first."""
    by_units: dict[tuple[str, str], list[VariantRuns]] = {}
    for variant in sweep.variants.values():
        by_units.setdefault((variant.modality, variant.tokenizer), []).append(variant)
    groups = []
    for (modality, tokenizer), variants in sorted(by_units.items(), key=lambda kv: (kv[0][0] == "text", kv[0])):
        matched: dict[str, set] = {}
        for a in variants:
            for b in variants:
                if a.corpus == b.corpus:
                    continue
                shared = _keys(a) & _keys(b)
                if len({n for n, _ in shared}) >= MIN_MATCHED_SIZES:
                    matched.setdefault(a.name, set()).update(shared)
        corpora = {sweep.variants[name].corpus for name in matched}
        if len(corpora) >= 2:
            groups.append({"modality": modality, "tokenizer": tokenizer,
                           "variants": {name: sorted(keys) for name, keys in sorted(matched.items())}})
    if groups:
        return groups, ""
    corpora = ", ".join(sorted({v.corpus for v in sweep.variants.values()}))
    return [], (f"no two variants with different corpus labels share runs of equal size and tokens over "
                f"≥{MIN_MATCHED_SIZES} sizes (corpora: {corpora})")
