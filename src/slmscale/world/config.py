"""The configuration of the story world (`slmscale world`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from slmscale.config import ConfigError, to_dict

LATER_KEYS: dict[str, object] = {"lexical_words": None}
"""Keys added after worlds were first made, with the default that keeps the old behaviour. At that
default they are left out of config.yaml and of the fingerprint (`world_dict`), so a world made
before them keeps its bytes and stays complete, and a study's study.yaml is unchanged."""


@dataclass(frozen=True)
class WorldConfig:
    """The story world. The benchmarks do not shrink with `stories`: their sizes are set by
    syntax_pairs_per_subtype, cloze_per_subtype, lexical_words, lexical_oov_words and
    lexical_nonwords_per_word (e.g. 2, 2, 20, 0, 1 for a world of a few dozen pairs each)."""
    stories: int = 2500
    """Story records (kind "story") in text.jsonl; about 59 words each, so 2,500 make about 12 h of espeak speech (about 2M deduplicated k=200 MFCC units, one epoch of the tiny study's largest budget). The benchmarks do not follow it: see syntax_pairs_per_subtype, cloze_per_subtype and the lexical_* keys."""
    sentence_records: Optional[int] = None
    """Sentence records (kind "sentence"): 3-8 unrelated sentences from other stories; null = as many as stories."""
    text_only_stories: int = 0
    """Further story records, and as many sentence records, in text.jsonl with "spoken": false: synth
    skips them and the text arm reads them, so a text LM can train on the world's language over a
    compute range like the speech grid's without hours of speech (a text token carries about 20 speech
    units' worth of content). Benchmarks are held out from them too."""
    seed: int = 0
    """Seed of every random choice: the same seed and config give byte-identical files."""
    valid_fraction: float = 0.05
    """Share of the records (of each kind) in the valid split."""
    test_fraction: float = 0.05
    """Share of the records (of each kind) in the test split; the rest is train."""
    syntax_pairs_per_subtype: int = 100
    """Minimal pairs per syntax paradigm (type/subtype), half of each form; must be even. The syntax
    benchmark has 19 paradigms, so 100 make 1,900 pairs and 2 make 38."""
    cloze_per_subtype: int = 100
    """Story-cloze items per contradicted fact (5 subtypes); topic cloze reuses the same prompts. Must be even."""
    lexical_nonwords_per_word: int = 2
    """Nonwords (so lexical pairs) per real word: the lexical benchmark has about (lexicon words +
    OOV words) x this many pairs (a few words find no nonword), lexicon words being lexical_words or
    all 447 lemmas."""
    lexical_oov_words: Optional[int] = None
    """Out-of-vocabulary real words taken from the built-in list (about 200); null = all of them."""
    lexical_words: Optional[int] = None
    """Lexicon (in-vocabulary) words that get lexical pairs, drawn from the seed; null = every word of
    the lexicon that cmudict pronounces (447 lemmas). With lexical_oov_words=0 and lexical_nonwords_per_word=1,
    lexical_words=20 makes a lexical benchmark of at most 20 pairs."""

    def __post_init__(self) -> None:
        """Refuse, naming the first key, a value no world can be made with."""
        checks = [
            ("stories", self.stories >= 1, "must be at least 1"),
            ("sentence_records", self.sentence_records is None or self.sentence_records >= 0, "must be >= 0"),
            ("text_only_stories", self.text_only_stories >= 0, "must be >= 0"),
            ("valid_fraction", 0 <= self.valid_fraction < 1, "must be in [0, 1)"),
            ("test_fraction", 0 <= self.test_fraction < 1, "must be in [0, 1)"),
            ("test_fraction", self.valid_fraction + self.test_fraction < 1,
             "valid_fraction + test_fraction must leave some train records"),
            ("syntax_pairs_per_subtype", self.syntax_pairs_per_subtype >= 0
             and self.syntax_pairs_per_subtype % 2 == 0, "must be an even number >= 0 (two balanced forms)"),
            ("cloze_per_subtype", self.cloze_per_subtype >= 0 and self.cloze_per_subtype % 2 == 0,
             "must be an even number >= 0 (balanced he/she and good/bad)"),
            ("lexical_nonwords_per_word", self.lexical_nonwords_per_word >= 0, "must be >= 0"),
            ("lexical_oov_words", self.lexical_oov_words is None or self.lexical_oov_words >= 0, "must be >= 0"),
            ("lexical_words", self.lexical_words is None or self.lexical_words >= 0, "must be >= 0"),
        ]
        for key, ok, message in checks:
            if not ok:
                raise ConfigError(f"{key}: value {getattr(self, key)!r} {message}")


def world_dict(config: WorldConfig) -> dict[str, object]:
    """`to_dict(config)` less the LATER_KEYS at their defaults: what config.yaml holds and the
    fingerprint hashes (`fingerprint(world_dict(config))`)."""
    data = to_dict(config)
    for key, default in LATER_KEYS.items():
        if data[key] == default:
            del data[key]
    return data
