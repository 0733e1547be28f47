"""Story cloze (sStoryCloze-like) and topic cloze (tStoryCloze-like) items.

Benchmark stories come from the same generator as the training text but are new
stories, and their endings (good and bad) are no sentence of text.jsonl.

- story_cloze: the ending against the same ending template rendered with one fact
  swapped (`endings.swap`); `subtype` names the fact. The swapped values are a
  permutation of the true values within a subtype (objects, places, helpers), or
  pairwise balanced (he/she, happy/sad), so no word is more frequent among the
  negative endings than among the positive ones.
- topic_cloze: the same prompts, the ending against the ending of another benchmark
  story that shares no character name or object with the prompt. The stories are
  matched in pairs that swap endings (`_swap_pairs`): story A's ending is B's negative
  and B's ending is A's. Any score of an ending that ignores the prompt then gets
  exactly one of the two items right, so a model that knows only local statistics is
  at chance by construction, not just on average over pairings. A random permutation
  (the earlier design) cancels such a priori preferences only in expectation: over
  500 items its accuracy spreads with sd sqrt(1/(12 n)) = 1.3 points around 50%,
  the same draw for every prompt-blind model (docs/LOG.md, 2026-12-04). A partner
  has another ending template where one is free, and then the nearest ending length,
  so the positive is exactly as often the longer ending as the negative and rarely
  by much: the whole-utterance mean, which weighs an ending's per-unit score by its
  length against the prompt's, then hardly depends on which prompt an ending follows.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from slmscale.world.endings import ENDING_BY_NAME, FOCUSES, Facts, focus_value, swap
from slmscale.world.grammar import choice, normalize, words
from slmscale.world.lexicon import BAD_FEELINGS, GOOD_FEELINGS, NAMES, nouns_of
from slmscale.world.plots import PLOTS, sample_facts
from slmscale.world.stories import Story, tell

OBJECT_STORY_PLOTS = ("lost_object", "want_object", "broken_object", "make_toy")
MAX_ROUNDS = 50


def _spec(focus: str, index: int) -> dict[str, object]:
    """What item `index` of a subtype fixes so that the subtype is balanced."""
    if focus == "pronoun":
        return {"gender": ("male", "female")[index % 2], "same_gender": True}
    if focus == "feeling":
        outcome = ("good", "bad")[index % 2]
        feelings = GOOD_FEELINGS if outcome == "good" else BAD_FEELINGS
        return {"outcome": outcome, "feeling": feelings[(index // 2) % len(feelings)]}
    return {}


def _new_item(rng: random.Random, focus: str, index: int, heldout: set[str], taken: set[str]) -> Story:
    """A benchmark story whose ending states the `focus` fact and is held out from the text."""
    plots = OBJECT_STORY_PLOTS if focus == "object" else tuple(PLOTS)
    for _ in range(1000):
        facts = sample_facts(rng, choice(rng, plots), **_spec(focus, index))
        try:
            story = tell(rng, facts, focus)
        except ValueError:  # no ending of this plot and outcome states the fact; draw again
            continue
        ending = normalize(story.sentences[-1])
        if (len(story.sentences) < 3 or ending in heldout or story.text in taken or story.prompt in taken
                or not _states(story, focus)):
            continue
        taken.add(story.prompt)
        return story
    raise RuntimeError(f"story_cloze {focus}: could not find a held-out story")


def _states(story: Story, focus: str) -> bool:
    """Whether the prompt states the fact the negative ending will contradict."""
    said = _mentions(story)
    f = story.facts
    if focus == "object":
        return bool({f.obj.sg, f.obj.pl} & said)
    if focus == "place":
        return f.place.sg in said
    if focus == "helper":
        return bool({f.helper.name.lower(), f.helper.noun} & said)
    if focus == "pronoun":
        return bool({f.hero.subj, f.hero.obj, f.hero.poss, f.hero.refl} & said)
    return True


def _mentions(story: Story) -> set[str]:
    return set(words(story.prompt))


# Words that name a character or an object: a topic-cloze negative ending may share none with the prompt.
ENTITY_WORDS = frozenset({n.name.lower() for n in NAMES} | {"mom", "dad", "grandma", "grandpa"}
                         | {f for n in nouns_of("toy", "animal", "food", "drink") for f in (n.sg, n.pl) if f})


def _entity_words(story: Story) -> set[str]:
    """Names and objects the story's ending mentions, and those of its facts."""
    f = story.facts
    out = set(words(story.sentences[-1])) & ENTITY_WORDS | {f.hero.name.lower(), f.helper.name.lower()}
    for noun in (f.obj, f.animal):
        if noun is not None:
            out |= {noun.sg, noun.pl or noun.sg}
    return out


def _value_words(focus: str, value: object) -> set[str]:
    if focus == "object":
        return {value.sg, value.pl}
    if focus == "place":
        return {value.sg}
    return {value.name.lower()}


def _permute(rng: random.Random, count: int, ok: Callable[[int, int], bool]) -> list[int] | None:
    """A permutation p with ok(i, p[i]) for all i (random shuffle, then repair by swaps)."""
    perm = list(range(count))
    for _ in range(20):
        rng.shuffle(perm)
        for i in range(count):
            if ok(i, perm[i]):
                continue
            for j in rng.sample(range(count), count):
                if ok(i, perm[j]) and ok(j, perm[i]):
                    perm[i], perm[j] = perm[j], perm[i]
                    break
        if all(ok(i, perm[i]) for i in range(count)):
            return perm
    return None


def _negative_facts(rng: random.Random, focus: str, stories: list[Story]) -> list[Facts] | None:
    if focus in ("pronoun", "feeling"):
        return [swap(s.facts, focus) for s in stories]
    values = [focus_value(s.facts, focus) for s in stories]
    prompts = [_mentions(s) for s in stories]

    def ok(i: int, j: int) -> bool:
        return (_value_words(focus, values[j]) != _value_words(focus, values[i])
                and not _value_words(focus, values[j]) & prompts[i])
    perm = _permute(rng, len(stories), ok)
    if perm is None:
        return None
    return [swap(s.facts, focus, values[perm[i]]) for i, s in enumerate(stories)]


def story_cloze(rng: random.Random, per_subtype: int, heldout: set[str],
                taken: set[str]) -> tuple[list[dict[str, object]], list[Story]]:
    """`per_subtype` items for each contradicted fact; returns the rows and their stories.

    `taken` holds the training story texts: no benchmark story repeats one.
    """
    taken = set(taken)
    rows: list[dict[str, object]] = []
    all_stories: list[Story] = []
    for focus in FOCUSES:
        stories = [_new_item(rng, focus, i, heldout, taken) for i in range(per_subtype)]
        for _ in range(MAX_ROUNDS):
            negatives = _negative_facts(rng, focus, stories)
            if negatives is None:  # no valid permutation: replace a few items and try again
                for i in rng.sample(range(len(stories)), max(1, len(stories) // 10)):
                    stories[i] = _new_item(rng, focus, i, heldout, taken)
                continue
            endings = [ENDING_BY_NAME[s.ending].render(f) for s, f in zip(stories, negatives)]
            bad = [i for i, (s, e) in enumerate(zip(stories, endings))
                   if normalize(e) in heldout or normalize(e) == normalize(s.sentences[-1])]
            if not bad:
                break
            for i in bad:
                stories[i] = _new_item(rng, focus, i, heldout, taken)
        else:
            raise RuntimeError(f"story_cloze {focus}: could not balance held-out negatives")
        for i, (story, negative) in enumerate(zip(stories, endings)):
            rows.append(_row("story_cloze", f"story_cloze-{focus}-{i + 1:04d}", focus, story, negative))
        all_stories.extend(stories)
    return rows, all_stories


def _swap_pairs(rng: random.Random, count: int, ok: Callable[[int, int], bool],
                key: Callable[[int, int], tuple]) -> list[tuple[int, int]] | None:
    """`count` // 2 disjoint pairs (i, j) with ok(i, j) and ok(j, i), covering every index.

    Greedy: the index with the fewest free partners left goes first (ties in a random
    order) and takes the free partner with the smallest key(i, j). Retried in a new
    random order when an index is left with no partner; None if no try succeeds.
    """
    if count % 2:
        return None
    for _ in range(20):
        rank = list(range(count))
        rng.shuffle(rank)
        partners = [{j for j in range(count) if j != i and ok(i, j) and ok(j, i)} for i in range(count)]
        free = set(range(count))
        degree = [len(p) for p in partners]  # free partners left
        pairs: list[tuple[int, int]] = []
        while free:
            i = min(free, key=lambda k: (degree[k], rank[k]))
            options = partners[i] & free
            if not options:
                break
            j = min(options, key=lambda k: (key(i, k), rank[k]))
            free -= {i, j}
            for k in partners[i] | partners[j]:
                degree[k] -= (i in partners[k]) + (j in partners[k])
            pairs.append((i, j))
        if not free:
            return pairs
    return None


def _letters(text: str) -> int:
    return len(normalize(text).replace(" ", ""))


def topic_cloze(rng: random.Random, stories: list[Story]) -> list[dict[str, object]]:
    """Each prompt with its own ending against another story's ending sharing no name or object.

    Stories are paired and swap endings (see the module docstring): every ending is
    once the positive and once the negative, within one pair of items.
    """
    prompts = [_mentions(s) for s in stories]
    entities = [_entity_words(s) for s in stories]
    endings = [s.sentences[-1] for s in stories]
    letters = [_letters(e) for e in endings]

    def ok(i: int, j: int) -> bool:
        return (i != j and not entities[j] & prompts[i] and not entities[j] & entities[i]
                and normalize(endings[j]) != normalize(endings[i]))

    def key(i: int, j: int) -> tuple:
        return (stories[i].ending == stories[j].ending, abs(letters[i] - letters[j]))
    pairs = _swap_pairs(rng, len(stories), ok, key)
    if pairs is None:
        raise RuntimeError("topic_cloze: no pairing of endings without shared names or objects")
    negative = [0] * len(stories)
    for i, j in pairs:
        negative[i], negative[j] = j, i
    return [_row("topic_cloze", f"topic_cloze-{i + 1:04d}", s.facts.plot, s, endings[negative[i]])
            for i, s in enumerate(stories)]


def _row(kind: str, row_id: str, subtype: str, story: Story, negative_ending: str) -> dict[str, object]:
    prompt, ending = story.prompt, story.sentences[-1]
    return {"id": row_id, "positive": f"{prompt} {ending}", "negative": f"{prompt} {negative_ending}",
            "prompt": prompt, "positive_ending": ending, "negative_ending": negative_ending,
            "type": kind, "subtype": subtype}
