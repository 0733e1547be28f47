"""The configuration of the story world (`slmscale world`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from slmscale.config import ConfigError


@dataclass(frozen=True)
class WorldConfig:
    stories: int = 2500
    """Story records (kind "story") in text.jsonl; about 59 words each, so 2,500 make about 12 h of espeak speech (about 2M deduplicated k=200 MFCC units, one epoch of the tiny study's largest budget)."""
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
    """Minimal pairs per syntax paradigm (type/subtype), half of each form; must be even."""
    cloze_per_subtype: int = 100
    """Story-cloze items per contradicted fact (5 subtypes); topic cloze reuses the same prompts. Must be even."""
    lexical_nonwords_per_word: int = 2
    """Nonwords (so lexical pairs) per real word."""
    lexical_oov_words: Optional[int] = None
    """Out-of-vocabulary real words taken from the built-in list (about 200); null = all of them."""

    def validate(self) -> None:
        """Raise ConfigError naming the first key with an impossible value."""
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
        ]
        for key, ok, message in checks:
            if not ok:
                raise ConfigError(f"{key}: value {getattr(self, key)!r} {message}")
