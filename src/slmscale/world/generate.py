"""The world stage: config in, text corpus and held-out benchmarks out.

Order matters for the held-out property: the text is generated first, then every
benchmark item is drawn by rejection against the set of its sentences (all
splits, both kinds). Each part has its own random stream derived from the seed
by name (`random.Random(str)` hashes with SHA-512, not Python's salted hash), so
one part's size never shifts another's draws and the output is byte-identical
for a given config.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slmscale import __version__
from slmscale.config import fingerprint
from slmscale.files import check_output_dir, mark_completed, write_json, write_text
from slmscale.log import get_logger
from slmscale.world import lexicon
from slmscale.world.cloze import story_cloze, topic_cloze
from slmscale.world.config import WorldConfig, world_dict
from slmscale.world.grammar import split_sentences, words
from slmscale.world.lexical_pairs import OOV_WORDS, lexical_pairs
from slmscale.world.records import (BENCHMARK_DIR, BENCHMARK_FILES, TEXT_FILE, TextRecord, write_benchmark,
                                    write_text_records)
from slmscale.world.stories import Story, generate_stories, reachable_lower_bound
from slmscale.world.syntax_pairs import PARADIGMS, syntax_pairs
from slmscale.world.text import heldout_set, sentence_groups, split_names, text_records, word_counts

WORLD_VERSION = "3"
"""Bumped whenever the same config would generate different text or pairs; part of the
output fingerprint, so a world made by an older generator is never taken as complete."""
log = get_logger(__name__)


@dataclass
class World:
    records: list[dict[str, Any]]
    """text.jsonl: the spoken records, then the text-only ones ("spoken": false)."""
    benchmarks: dict[str, list[dict[str, object]]]
    stats: dict[str, object]


def _stream(config: WorldConfig, name: str) -> random.Random:
    return random.Random(f"slmscale-world:{config.seed}:{name}")


def make_world(config: WorldConfig) -> World:
    """Generate everything in memory (a few seconds for the default world)."""
    started = time.perf_counter()
    n_groups = config.stories if config.sentence_records is None else config.sentence_records
    records, stories = _records(config, "", config.stories, n_groups)
    extra, extra_stories = _records(config, "text-", config.text_only_stories, config.text_only_stories,
                                    exclude={s.text for s in stories})
    log.info("text: %d story and %d sentence records (and %d of each for text only) in %.1f s", len(stories),
             n_groups, config.text_only_stories, time.perf_counter() - started)

    # Benchmarks are held out from all the text; their words must occur in the spoken train text.
    heldout = heldout_set(records + extra)
    train_counts = word_counts(records, "train")
    syntax = syntax_pairs(_stream(config, "syntax"), config.syntax_pairs_per_subtype, heldout, set(train_counts))
    story_rows, cloze_stories = story_cloze(_stream(config, "story_cloze"), config.cloze_per_subtype, heldout,
                                            {s.text for s in stories + extra_stories})
    topic_rows = topic_cloze(_stream(config, "topic_cloze"), cloze_stories) if cloze_stories else []
    text_words = {w for row in records + extra for w in words(row["text"])}
    oov = len(OOV_WORDS) if config.lexical_oov_words is None else config.lexical_oov_words
    # The kept words come from a stream of their own, so the nonwords' stream, and with it every
    # world without lexical_words, is as before.
    lexical = lexical_pairs(_stream(config, "lexical"), train_counts, text_words,
                            config.lexical_nonwords_per_word, oov, config.lexical_words,
                            _stream(config, "lexical-words"))
    benchmarks = {"syntax": syntax, "lexical": lexical, "story_cloze": story_rows, "topic_cloze": topic_rows}
    log.info("benchmarks: %s in %.1f s", ", ".join(f"{len(v)} {k}" for k, v in benchmarks.items()),
             time.perf_counter() - started)
    stats = {**world_stats(config, records, benchmarks), "text_only_records": len(extra)}
    return World(records + extra, benchmarks, stats)


def _records(config: WorldConfig, prefix: str, n_stories: int, n_groups: int,
             exclude: set[str] | None = None) -> tuple[list[dict[str, Any]], list[Story]]:
    """Story and sentence records with their splits, each from its own seeded streams; `prefix` ""
    names the spoken records, another prefix text-only ones (their own streams, "spoken": false)."""
    if n_stories == 0 and n_groups == 0:
        return [], []
    stories = generate_stories(_stream(config, prefix + "stories"), n_stories, exclude)
    sentences_rng = _stream(config, prefix + "sentences")
    lengths = [len(stories[sentences_rng.randrange(len(stories))].sentences) for _ in range(n_groups)]
    donors = generate_stories(_stream(config, prefix + "donors"), n_groups + n_groups // 4 + 10)
    groups = sentence_groups(sentences_rng, donors, lengths)
    split_rng = _stream(config, prefix + "splits")
    records = text_records(stories, groups,
                           split_names(split_rng, len(stories), config.valid_fraction, config.test_fraction),
                           split_names(split_rng, len(groups), config.valid_fraction, config.test_fraction),
                           prefix, spoken=not prefix)
    return records, stories


def world_stats(config: WorldConfig, records: list[dict[str, str]],
                benchmarks: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    """The counts written to world.json."""
    splits = {s: dict(Counter(r["kind"] for r in records if r["split"] == s)) for s in ("train", "valid", "test")}
    sentences = [s for r in records for s in split_sentences(r["text"])]
    tokens = Counter(w for r in records for w in words(r["text"]))
    used = [lemma for lemma, forms in lexicon.surface_forms().items() if any(tokens[f] for f in forms)]
    train_sentences = [s.lower() for r in records if r["split"] == "train" for s in split_sentences(r["text"])]
    evidence = {f"{p.type}/{p.subtype}": sum(1 for s in train_sentences if re.search(p.evidence, s))
                for p in PARADIGMS}
    by_subtype: dict[str, object] = {}
    for name, rows in benchmarks.items():
        if name == "syntax":
            nested: dict[str, dict[str, int]] = {}
            for row in rows:
                bucket = nested.setdefault(str(row["type"]), {})
                bucket[str(row["subtype"])] = bucket.get(str(row["subtype"]), 0) + 1
            by_subtype[name] = nested
        else:
            by_subtype[name] = dict(Counter(str(row["subtype"]) for row in rows))
    return {
        "generator_version": WORLD_VERSION,
        "slmscale_version": __version__,
        "seed": config.seed,
        "records": dict(Counter(r["kind"] for r in records)),
        "splits": splits,
        "sentences": len(sentences),
        "words": sum(tokens.values()),
        "distinct_words": len(tokens),
        "lexicon": {"nouns": len(lexicon.NOUNS), "verbs": len(lexicon.VERBS), "adjectives": len(lexicon.ADJECTIVES),
                    "content_words": len(lexicon.content_words()), "names": len(lexicon.NAMES)},
        "content_words_used": len(used),
        "reachable_stories_lower_bound": reachable_lower_bound(),
        "train_sentences_with_construction": evidence,
        "pairs": {name: len(rows) for name, rows in benchmarks.items()},
        "pairs_by_subtype": by_subtype,
    }


def build_world(out_dir: str | Path, config: WorldConfig | None = None) -> Path:
    """Write the world to `out_dir`: text.jsonl, benchmarks/*.jsonl, config.yaml, world.json, .completed.

    A rerun with the same config skips; a directory completed with another config is
    an error (StageError). Each file is written atomically and the marker last.
    """
    config = config or WorldConfig()
    out_dir = Path(out_dir)
    # world_dict: a key added since (at its default) changes neither the stamp nor config.yaml.
    stamp = f"{fingerprint(world_dict(config))}-v{WORLD_VERSION}"  # a new generator never reuses an old world
    if check_output_dir(out_dir, stamp):
        log.info("%s is already complete for this config; skipping", out_dir)
        return out_dir
    started = time.perf_counter()
    world = make_world(config)
    write_text_records(out_dir / TEXT_FILE, [TextRecord(**row) for row in world.records])
    for name in BENCHMARK_FILES:
        write_benchmark(out_dir / BENCHMARK_DIR / name, world.benchmarks[name.removesuffix(".jsonl")])
    write_text(out_dir / "config.yaml", yaml.safe_dump(world_dict(config), sort_keys=False))
    write_json(out_dir / "world.json", world.stats)
    mark_completed(out_dir, stamp, stage="world", generator_version=WORLD_VERSION)
    log.info("world written to %s in %.1f s", out_dir, time.perf_counter() - started)
    return out_dir
