"""A small world can have small benchmarks (`lexical_words` caps the lexicon words with pairs), and
the keys added for it leave every world made without them, and its fingerprint, as they were."""

from __future__ import annotations

import yaml

from slmscale.cli import main
from slmscale.config import fingerprint, to_dict
from slmscale.study.config import StudyConfig
from slmscale.world.config import WorldConfig, world_dict
from slmscale.world.generate import build_world, make_world
from slmscale.world.lexical_pairs import OOV_WORDS
from slmscale.world.lexicon import surface_forms

SMALL = dict(stories=20, syntax_pairs_per_subtype=2, cloze_per_subtype=2, lexical_oov_words=0,
             lexical_nonwords_per_word=1)


def test_small_settings_make_small_benchmarks_drawn_from_the_seed():
    uncapped = make_world(WorldConfig(**SMALL)).benchmarks
    assert len(uncapped["syntax"]) == 38 and len(uncapped["lexical"]) > 400  # a pair per lexicon word, near enough
    small = make_world(WorldConfig(**SMALL, lexical_words=20)).benchmarks
    assert len(small["syntax"]) == 38 and len(small["story_cloze"]) <= 10
    words = [row["positive"] for row in small["lexical"]]
    assert 15 <= len(words) <= 20 and len(set(words)) == len(words)  # a word whose nonwords all fail has none
    assert set(words) <= {form for forms in surface_forms().values() for form in forms}
    assert not set(words) & set(OOV_WORDS)
    assert make_world(WorldConfig(**SMALL, lexical_words=20)).benchmarks["lexical"] == small["lexical"]
    reseeded = make_world(WorldConfig(**SMALL, lexical_words=20, seed=1)).benchmarks["lexical"]
    other = [row["positive"] for row in reseeded]
    assert other != words
    # OOV words come on top of the capped lexicon words.
    mixed = make_world(WorldConfig(**{**SMALL, "lexical_oov_words": 3}, lexical_words=5)).benchmarks["lexical"]
    assert sum(row["positive"] in OOV_WORDS for row in mixed) == 3 and len(mixed) <= 8


def test_the_default_configs_fingerprints_and_config_yaml_are_unchanged(tmp_path):
    # The fingerprints of the default world and of the tiny study's world before lexical_words existed.
    assert fingerprint(world_dict(WorldConfig())) == "92cce609b4fd837f"
    assert fingerprint(world_dict(StudyConfig().world)) == "338f36e962de4c1f"
    assert "lexical_words" not in world_dict(WorldConfig()) and "lexical_words" in to_dict(WorldConfig())
    assert world_dict(WorldConfig(lexical_words=7))["lexical_words"] == 7
    out = build_world(tmp_path / "w", WorldConfig(**SMALL))
    assert "lexical_words" not in yaml.safe_load((out / "config.yaml").read_text())
    capped = build_world(tmp_path / "c", WorldConfig(**SMALL, lexical_words=4))
    assert yaml.safe_load((capped / "config.yaml").read_text())["lexical_words"] == 4


def test_world_help_says_how_to_shrink_the_benchmarks(capsys):
    try:
        main(["world", "--help"])
    except SystemExit:
        pass
    out = " ".join(capsys.readouterr().out.split())
    for key in ("syntax_pairs_per_subtype", "cloze_per_subtype", "lexical_words", "lexical_oov_words",
                "lexical_nonwords_per_word"):
        assert key in out
    assert main(["world", "--out", "unused", "lexical_words=-1"]) == 2
