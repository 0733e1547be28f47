"""The text corpus: story records, sentence records and their train/valid/test splits.

A sentence record is 3-8 sentences drawn from different generated stories (not
the story records), as many as a story record has, so the two kinds match in
length and vocabulary and differ only in narrative coherence: the analog of
audiobook fragments against sTinyStories (Cuervo & Marxer 2024, Figure 3).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from slmscale.world.grammar import heldout_keys, split_sentences, words
from slmscale.world.stories import Story

SPLITS = ("train", "valid", "test")


def split_names(rng: random.Random, count: int, valid_fraction: float, test_fraction: float) -> list[str]:
    """A split per record: exact shares (rounded), in random order."""
    n_valid, n_test = round(count * valid_fraction), round(count * test_fraction)
    names = ["valid"] * n_valid + ["test"] * n_test + ["train"] * (count - n_valid - n_test)
    rng.shuffle(names)
    return names


def sentence_groups(rng: random.Random, donors: list[Story], lengths: list[int]) -> list[list[str]]:
    """One group per wanted length; each sentence from a different donor story, each used once."""
    pool = deque((d, s) for d, story in enumerate(donors) for s in story.sentences)
    rng.shuffle(pool)
    groups: list[list[str]] = []
    for length in lengths:
        group: list[str] = []
        used: set[int] = set()
        skipped: list[tuple[int, str]] = []
        while len(group) < length:
            if not pool:
                raise RuntimeError("not enough donor sentences for the sentence records")
            donor, text = pool.popleft()
            if donor in used:
                skipped.append((donor, text))
                continue
            used.add(donor)
            group.append(text)
        pool.extendleft(reversed(skipped))
        groups.append(group)
    return groups


def text_records(stories: list[Story], groups: list[list[str]], story_splits: list[str],
                 group_splits: list[str], prefix: str = "", spoken: bool = True) -> list[dict[str, Any]]:
    """text.jsonl rows: id, text, kind ('story' | 'sentence'), split, and "spoken": false on records
    only the text arm reads (ids `prefix` + story-N / sentences-N)."""
    width = max(5, len(str(max(len(stories), len(groups)))))
    extra = {} if spoken else {"spoken": False}
    rows = [{"id": f"{prefix}story-{i + 1:0{width}d}", "text": s.text, "kind": "story", "split": split, **extra}
            for i, (s, split) in enumerate(zip(stories, story_splits))]
    rows += [{"id": f"{prefix}sentences-{i + 1:0{width}d}", "text": " ".join(g), "kind": "sentence",
              "split": split, **extra} for i, (g, split) in enumerate(zip(groups, group_splits))]
    return rows


def heldout_set(records: Iterable[dict[str, str]]) -> set[str]:
    """Normalized sentences (and quoted / reported clauses) of every record, in every split."""
    keys: set[str] = set()
    for row in records:
        for sentence in split_sentences(row["text"]):
            keys.update(heldout_keys(sentence))
    return keys


def word_counts(records: Iterable[dict[str, str]], split: str = "train") -> Counter:
    """Word-token counts (lower case) over the records of one split."""
    counts: Counter = Counter()
    for row in records:
        if row["split"] == split:
            counts.update(words(row["text"]))
    return counts
