"""The story world: lexicon, stories, text records, determinism, the stage and its CLI."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from slmscale.cli import main
from slmscale.config import ConfigError, load_config
from slmscale.files import StageError
from slmscale.world import WorldConfig, build_world, make_world
from slmscale.world import lexicon
from slmscale.world.grammar import split_sentences, words
from slmscale.world.lexical_pairs import pronunciation
from slmscale.world.plots import sample_facts
from slmscale.world.stories import (MAX_SENTENCES, MIN_SENTENCES, PLOT_NAMES, generate_stories,
                                    reachable_lower_bound, tell)
from slmscale.world.text import SPLITS

ROOT = Path(__file__).resolve().parents[1]
MICRO = WorldConfig(stories=40, syntax_pairs_per_subtype=4, cloze_per_subtype=4, lexical_nonwords_per_word=1,
                    lexical_oov_words=10)
MALE = {"he", "him", "his", "himself"}
FEMALE = {"she", "her", "hers", "herself"}


@pytest.fixture(scope="module")
def stories():
    return generate_stories(random.Random(11), 1500)


@pytest.fixture(scope="module")
def micro_dir(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("micro") / "world", MICRO)


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# Lexicon ----------------------------------------------------------------------------------

def test_lexicon_has_at_least_300_content_words_all_in_cmudict():
    content = lexicon.content_words()
    assert len(content) >= 300
    assert len({n.sg for n in lexicon.NOUNS}) + len({v.base for v in lexicon.VERBS}) + \
        len({a.word for a in lexicon.ADJECTIVES}) >= 300
    assert [w for w in content if pronunciation(w) is None] == []
    assert [n.name for n in lexicon.NAMES if pronunciation(n.name.lower()) is None] == []


def test_lexicon_forms():
    assert lexicon.NOUN_BY_SG["mouse"].pl == "mice" and lexicon.NOUN_BY_SG["box"].pl == "boxes"
    assert lexicon.NOUN_BY_SG["puppy"].pl == "puppies" and lexicon.NOUN_BY_SG["milk"].mass
    assert lexicon.VERB["run"].past == "ran" and lexicon.VERB["run"].irregular
    assert lexicon.VERB["carry"].s3 == "carries" and lexicon.VERB["fix"].s3 == "fixes"
    assert lexicon.VERB["hop"].past == "hopped" and not lexicon.VERB["hop"].irregular
    assert [lexicon.regularized_past(b) for b in ("run", "eat", "take", "buzz", "visit")] == \
        ["runned", "eated", "taked", "buzzed", "visited"]
    assert lexicon.article("owl") == "an" and lexicon.article("umbrella") == "an" and lexicon.article("dog") == "a"
    assert {n.gender for n in lexicon.NAMES} == {"male", "female"}


# Stories ----------------------------------------------------------------------------------

def test_stories_are_3_to_8_simple_sentences(stories):
    lengths = Counter(len(s.sentences) for s in stories)
    assert min(lengths) >= MIN_SENTENCES and max(lengths) <= MAX_SENTENCES
    assert len(lengths) >= 5, lengths  # lengths actually vary
    for story in stories:
        assert split_sentences(story.text) == list(story.sentences)
        for sentence in story.sentences:
            assert sentence[0].isupper() and sentence.rstrip('"')[-1] in ".!?", sentence
            assert sentence.isascii() and not re.search(r"\d", sentence), sentence
            assert "  " not in sentence and " ," not in sentence, sentence
    assert {s.facts.plot for s in stories} == set(PLOT_NAMES)


def test_story_narration_is_past_tense_with_present_tense_statements(stories):
    sentences = [x for s in stories for x in s.sentences]
    past = sum(1 for x in sentences if re.search(r"\b(was|were|had|went|saw|found|took|\w+ed)\b", x))
    plurals = {n.pl for n in lexicon.NOUNS}
    present_forms = {"is", "are", "am", "does", "do", "has"} | ({v.s3 for v in lexicon.VERBS} - plurals)
    present = sum(1 for x in sentences if present_forms & set(words(x)))
    assert past / len(sentences) > 0.6
    assert present / len(sentences) > 0.09  # speech and general facts: agreement must be learnable


def test_endings_follow_from_the_outcome(stories):
    for story in stories:
        ending, f = story.sentences[-1], story.facts
        if f.feeling in ending.split():
            assert f.feeling in (("happy", "glad") if f.outcome == "good" else ("sad", "upset"))
        if f.obj is not None and f.obj.sg in words(ending):
            assert f.obj.sg in words(story.prompt), story.text


@pytest.mark.parametrize("gender", ["male", "female"])
def test_pronouns_match_the_characters_gender(gender):
    rng = random.Random(5)
    wrong = FEMALE if gender == "male" else MALE
    for i in range(400):
        facts = sample_facts(rng, PLOT_NAMES[i % len(PLOT_NAMES)], gender=gender, same_gender=True)
        story = tell(rng, facts)
        assert not wrong & set(words(story.text)), story.text
        # the hero is referred to by pronoun somewhere in most stories; never by the wrong one
        assert facts.hero.gender == facts.helper.gender == gender


def test_mixed_cast_uses_each_characters_own_pronouns():
    """The object is the hero's: every 'his/her <object>' uses the hero's possessive, whoever else is there."""
    rng = random.Random(8)
    mixed = 0
    for i in range(600):
        facts = sample_facts(rng, ("lost_object", "want_object", "broken_object")[i % 3])
        mixed += facts.hero.gender != facts.helper.gender
        story = tell(rng, facts)
        for owner in re.findall(rf"\b(his|her) (?:\w+ )?{facts.obj.sg}\b", story.text):
            assert owner == facts.hero.poss, story.text
        for subject in re.findall(r"felt \w+ as (he|she) walked home", story.text):
            assert subject == facts.hero.subj, story.text
    assert mixed > 200


def test_at_least_1e5_distinct_stories_are_reachable():
    bound = reachable_lower_bound()
    assert bound >= 10 ** 5
    # The bound counts choices of facts; check that distinct facts do give distinct texts.
    rng = random.Random(3)
    texts, seen_facts = set(), set()
    for _ in range(400):
        facts = sample_facts(rng, "lost_object")
        key = (facts.hero.name, facts.hero.noun, facts.helper.name, facts.place.sg, facts.obj.sg, facts.obj_adj)
        if key in seen_facts:
            continue
        seen_facts.add(key)
        texts.add(tell(random.Random(0), facts).text)
    assert len(texts) == len(seen_facts)


def test_generated_stories_are_distinct(stories):
    assert len({s.text for s in stories}) == len(stories)


# The stage --------------------------------------------------------------------------------

def test_text_records(micro_dir):
    rows = [json.loads(line) for line in (micro_dir / "text.jsonl").read_text().splitlines()]
    assert all(list(r) == ["id", "text", "kind", "split"] for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    kinds = Counter(r["kind"] for r in rows)
    assert kinds == {"story": 40, "sentence": 40}  # as many sentence records as stories by default
    assert {r["split"] for r in rows} <= set(SPLITS)
    for kind in ("story", "sentence"):
        splits = Counter(r["split"] for r in rows if r["kind"] == kind)
        assert splits["valid"] == splits["test"] == 2 and splits["train"] == 36
    for row in rows:
        assert MIN_SENTENCES <= len(split_sentences(row["text"])) <= MAX_SENTENCES


def test_text_only_records(micro_dir):
    """text_only_stories adds as many story and sentence records marked "spoken": false, from their
    own streams: the spoken records are byte for byte those of the world without them, and every
    benchmark is held out from the extra text as well."""
    from slmscale.world.records import read_text_records
    from slmscale.world.grammar import normalize
    world = make_world(WorldConfig(**{**MICRO.__dict__, "text_only_stories": 30}))
    spoken = [r for r in world.records if r.get("spoken", True)]
    extra = [r for r in world.records if not r.get("spoken", True)]
    plain = [json.loads(line) for line in (micro_dir / "text.jsonl").read_text().splitlines()]
    assert spoken == plain
    assert Counter(r["kind"] for r in extra) == {"story": 30, "sentence": 30}
    assert all(r["id"].startswith(("text-story-", "text-sentences-")) and r["spoken"] is False for r in extra)
    assert not {r["text"] for r in extra} & {r["text"] for r in plain}
    extra_sentences = {normalize(s) for r in extra for s in split_sentences(r["text"])}
    for row in world.benchmarks["syntax"] + world.benchmarks["topic_cloze"]:
        assert normalize(row["positive"]) not in extra_sentences and normalize(row["negative"]) not in extra_sentences
    assert world.stats["text_only_records"] == 60 and world.stats["records"] == {"story": 40, "sentence": 40}
    out = build_world(micro_dir.parent / "with-text-only", WorldConfig(**{**MICRO.__dict__, "text_only_stories": 30}))
    records = read_text_records(out / "text.jsonl")
    assert sum(not r.spoken for r in records) == 60 and sum(r.spoken for r in records) == len(plain)
    with pytest.raises(ConfigError, match="text_only_stories"):
        WorldConfig(text_only_stories=-1)


def test_sentence_records_mix_sentences_of_different_stories():
    world = make_world(WorldConfig(stories=60, syntax_pairs_per_subtype=0, cloze_per_subtype=0,
                                   lexical_nonwords_per_word=0))
    stories = [r["text"] for r in world.records if r["kind"] == "story"]
    groups = [split_sentences(r["text"]) for r in world.records if r["kind"] == "sentence"]
    assert len(groups) == len(stories)
    # lengths follow the stories' lengths
    assert abs(sum(map(len, groups)) / len(groups) - sum(len(split_sentences(s)) for s in stories) / len(stories)) < 1
    # no group is a story: consecutive sentences rarely share a character name
    names = {n.name for n in lexicon.NAMES}
    shared = sum(1 for g in groups for a, b in zip(g, g[1:]) if set(a.split()) & set(b.split()) & names)
    assert shared < 0.2 * sum(len(g) - 1 for g in groups)


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(micro_dir, tmp_path):
    random.seed(12345)  # the global random state must not matter
    again = build_world(tmp_path / "again", MICRO)
    assert _files(again) == _files(micro_dir)
    other = build_world(tmp_path / "other", WorldConfig(**{**MICRO.__dict__, "seed": 1}))
    assert (other / "text.jsonl").read_bytes() != (micro_dir / "text.jsonl").read_bytes()
    assert (other / "benchmarks" / "syntax.jsonl").read_bytes() != \
        (micro_dir / "benchmarks" / "syntax.jsonl").read_bytes()


def test_outputs_and_world_json(micro_dir):
    for name in ("text.jsonl", "config.yaml", "world.json", ".completed", "benchmarks/syntax.jsonl",
                 "benchmarks/lexical.jsonl", "benchmarks/story_cloze.jsonl", "benchmarks/topic_cloze.jsonl"):
        assert (micro_dir / name).is_file(), name
    stats = json.loads((micro_dir / "world.json").read_text())
    assert stats["records"] == {"story": 40, "sentence": 40}
    assert stats["lexicon"]["content_words"] >= 300
    assert stats["reachable_stories_lower_bound"] >= 10 ** 5
    for name in ("syntax", "lexical", "story_cloze", "topic_cloze"):
        lines = (micro_dir / "benchmarks" / f"{name}.jsonl").read_text().splitlines()
        assert stats["pairs"][name] == len(lines)
    assert load_config(WorldConfig, micro_dir / "config.yaml") == MICRO


def test_rerun_skips_and_another_config_is_an_error(micro_dir):
    before = (micro_dir / "text.jsonl").stat().st_mtime_ns
    assert build_world(micro_dir, MICRO) == micro_dir
    assert (micro_dir / "text.jsonl").stat().st_mtime_ns == before
    with pytest.raises(StageError, match="different config"):
        build_world(micro_dir, WorldConfig(**{**MICRO.__dict__, "stories": 41}))


def test_config_validation():
    with pytest.raises(ConfigError, match="syntax_pairs_per_subtype"):
        WorldConfig(syntax_pairs_per_subtype=3)
    with pytest.raises(ConfigError, match="test_fraction"):
        WorldConfig(valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError, match="stories"):
        WorldConfig(stories=0)


@pytest.mark.parametrize("name", ["default.yaml", "tiny.yaml"])
def test_committed_configs_load(name):
    config = load_config(WorldConfig, ROOT / "configs" / "world" / name)
    if name == "default.yaml":
        assert config.stories == 2500 and config.seed == 0 and config == WorldConfig()


# CLI --------------------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "w"
    code = main(["world", "--out", str(out), "--config", str(ROOT / "configs/world/tiny.yaml"), "--stories", "30",
                 "--seed", "2", "sentence_records=10", "syntax_pairs_per_subtype=2", "cloze_per_subtype=2"])
    assert code == 0
    config = load_config(WorldConfig, out / "config.yaml")
    assert (config.stories, config.seed, config.sentence_records, config.syntax_pairs_per_subtype) == (30, 2, 10, 2)
    kinds = Counter(json.loads(line)["kind"] for line in (out / "text.jsonl").read_text().splitlines())
    assert kinds == {"story": 30, "sentence": 10}
    assert str(out) in capsys.readouterr().out


def test_cli_errors_and_show_config(tmp_path, capsys):
    assert main(["world", "--out", str(tmp_path / "x"), "no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert main(["world", "--out", str(tmp_path / "x"), "syntax_pairs_per_subtype=3"]) == 2
    assert "even" in capsys.readouterr().err
    assert main(["world"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["world", "--show-config"]) == 0
    shown = capsys.readouterr().out
    for key in ("stories", "seed", "syntax_pairs_per_subtype", "lexical_oov_words"):
        assert key in shown
    assert not (tmp_path / "x").exists()


@pytest.mark.integration
def test_output_does_not_depend_on_python_hash_seed(tmp_path):
    """Two processes with different string hashing write the same bytes (no set order or hash() leaks)."""
    import os
    import subprocess
    import sys
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"hash{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "slmscale", "-q", "world", "--out", str(out), "stories=60",
                        "syntax_pairs_per_subtype=10", "cloze_per_subtype=10", "lexical_oov_words=20"],
                       check=True, env=env, capture_output=True)
        outputs.append(_files(out))
    assert outputs[0] == outputs[1]
