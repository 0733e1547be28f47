"""Whole stories: a plot's beats, a few detail sentences, and an ending that follows from the facts.

`tell(rng, facts)` is the one place a story is put together; the text corpus,
the sentence records and the story-cloze items all come from it. A story has
three to eight sentences, past-tense narration, and ends with an ending chosen
from `endings` that fits its facts.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from slmscale.world.characters import HERO_ANIMALS, HERO_TRAITS, RELATIONS, Teller
from slmscale.world.details import add_detail
from slmscale.world.endings import Facts, choose_ending
from slmscale.world.grammar import choice
from slmscale.world.lexicon import NAMES, OUTDOOR_PLACES
from slmscale.world.plots import OBJECT_ADJECTIVES, PLOTS, PORTABLE, Beat, Hook, sample_facts

MIN_SENTENCES, MAX_SENTENCES = 3, 8
PLOT_NAMES = tuple(PLOTS)
# How many detail sentences a story gets (0 to 3), by weight.
DETAIL_COUNT_WEIGHTS = (0.05, 0.3, 0.45, 0.2)
# The length a story aims at (3 to 8 sentences), by weight; required beats may make it longer.
LENGTH_WEIGHTS = (0.04, 0.08, 0.16, 0.22, 0.25, 0.25)


@dataclass(frozen=True)
class Story:
    facts: Facts
    sentences: tuple[str, ...]
    ending: str
    """Name of the ending template (endings.ENDING_BY_NAME)."""

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def prompt(self) -> str:
        """The story without its last sentence (the story-cloze prompt)."""
        return " ".join(self.sentences[:-1])


def _weighted_index(rng: random.Random, weights: tuple[float, ...]) -> int:
    pick = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        pick -= w
        if pick < 0:
            return i
    return len(weights) - 1


def tell(rng: random.Random, facts: Facts, focus: str | None = None) -> Story:
    """Render a story from its facts; `focus` asks for an ending that states that fact (story cloze)."""
    plot = PLOTS[facts.plot]
    beats = [s for s in plot.steps if isinstance(s, Beat)]
    keep = [not b.optional or rng.random() < b.optional for b in beats]
    details = _weighted_index(rng, DETAIL_COUNT_WEIGHTS)
    target = MIN_SENTENCES + _weighted_index(rng, LENGTH_WEIGHTS)
    # Shorten towards the target (beats + details + ending) by dropping details or optional beats.
    while sum(keep) + details + 1 > target:
        droppable = [i for i, b in enumerate(beats) if b.optional and keep[i] and i > 0]
        if not droppable and details <= 1 and beats[0].optional and keep[0]:
            droppable = [0]  # the introduction goes last, for the shortest stories
        if not droppable and not details:
            break
        # Details carry the constructions the syntax benchmark tests: they go last but one.
        if droppable:
            keep[droppable[rng.randrange(len(droppable))]] = False
        else:
            details -= 1
    hooks = [s for s in plot.steps if isinstance(s, Hook)]
    at_hook = [0] * len(hooks)
    for _ in range(details):
        at_hook[rng.randrange(len(hooks))] += 1

    teller = Teller(rng, facts.hero, facts.helper)
    sentences: list[str] = []
    beat_index = hook_index = 0
    for step in plot.steps:
        if isinstance(step, Hook):
            for _ in range(at_hook[hook_index]):
                sentences.append(add_detail(teller, facts, step.where))
            hook_index += 1
        else:
            line = step.render(teller, facts) if keep[beat_index] else None
            if line is not None:
                sentences.append(line)
            beat_index += 1
    ending = choose_ending(rng, facts, focus)
    sentences.append(ending.render(facts))
    return Story(facts, tuple(sentences), ending.name)


def random_story(rng: random.Random) -> Story:
    plot = choice(rng, PLOT_NAMES)
    return tell(rng, sample_facts(rng, plot))


def generate_stories(rng: random.Random, count: int, exclude: set[str] | None = None) -> list[Story]:
    """`count` stories with distinct texts (none of them in `exclude`)."""
    seen = set(exclude or ())
    stories: list[Story] = []
    attempts = 0
    while len(stories) < count:
        attempts += 1
        if attempts > 20 * count + 1000:
            raise RuntimeError(f"could not find {count} distinct stories (got {len(stories)})")
        story = random_story(rng)
        if story.text in seen:
            continue
        seen.add(story.text)
        stories.append(story)
    return stories


def reachable_lower_bound() -> int:
    """A lower bound on how many distinct stories the generator can write.

    Take only lost_object stories. Their facts choose, independently, the hero's name,
    the hero's kind (girl/boy or an animal), the helper, the place, the object and its
    adjective, and every one of these words is written into the story: the name and
    kind in the first sentence, the object and its adjective in the second, the place
    and the helper when they set off. So different choices give different texts (a test
    checks this on samples), and the count of choices bounds the number of stories.
    """
    helpers = sum(1 if not named else len([n for n in NAMES if n.gender == gender]) - 1
                  for _, gender, named in RELATIONS)
    kinds = 1 + len(HERO_ANIMALS)  # girl/boy (fixed by the name's gender) or an animal
    return math.prod((len(NAMES), kinds, len(HERO_TRAITS), helpers, len(OUTDOOR_PLACES), len(PORTABLE),
                      len(OBJECT_ADJECTIVES)))
