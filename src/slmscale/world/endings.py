"""Story facts and the endings that follow from them.

An ending is a template over a story's facts (who, with whom, where, what, and
whether it went well). Because it is rendered from the facts, the story-cloze
negative is the same template rendered from the facts with exactly one of them
swapped (`swap`): the pronoun of the hero, the object, the place, the helper or
the feeling. The result is locally fluent and grammatical but contradicts the
story. Endings that can serve a contradiction list it in `focus`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from slmscale.world.characters import Character
from slmscale.world.grammar import OTHER_GENDER, choice, noun_phrase, sentence
from slmscale.world.lexicon import BAD_FEELINGS, GOOD_FEELINGS, Noun

FOCUSES = ("pronoun", "object", "place", "helper", "feeling")
FEELING_PARTNER = {**dict(zip(GOOD_FEELINGS, BAD_FEELINGS)), **dict(zip(BAD_FEELINGS, GOOD_FEELINGS))}
# Where a found or new thing is put at night: (preposition, spot).
NIGHT_SPOTS = (("next to", "bed"), ("under", "bed"), ("on", "desk"), ("on", "shelf"),
               ("on", "chair"), ("near", "window"), ("next to", "pillow"), ("near", "door"))


@dataclass(frozen=True)
class Facts:
    plot: str
    hero: Character
    helper: Character
    place: Noun
    """Where the hero and the helper went together."""
    outcome: str
    """'good' or 'bad': whether the want was met, the thing found or fixed, the animal helped."""
    feeling: str
    """How the hero felt at the end; follows from the outcome (GOOD_FEELINGS or BAD_FEELINGS)."""
    obj: Noun | None = None
    """The thing the story is about (lost, wanted, broken, made, brought along)."""
    obj_adj: str = ""
    animal: Noun | None = None
    """The animal the hero meets, helps or fears."""
    night_spot: tuple[str, str] = ("next to", "bed")
    trouble: str = ""
    """What was wrong with the animal in an animal_help story (hungry, cold, lost, scared)."""


def swap(facts: Facts, focus: str, value: object = None) -> Facts:
    """The same facts with one contradicted: the input of a story-cloze negative ending."""
    if focus == "pronoun":
        return dataclasses.replace(facts, hero=facts.hero.with_gender(OTHER_GENDER[facts.hero.gender]))
    if focus == "feeling":
        return dataclasses.replace(facts, feeling=FEELING_PARTNER[facts.feeling])
    if focus == "object":
        return dataclasses.replace(facts, obj=value)
    if focus == "place":
        return dataclasses.replace(facts, place=value)
    if focus == "helper":
        return dataclasses.replace(facts, helper=value)
    raise ValueError(f"unknown story-cloze focus {focus!r} (known: {', '.join(FOCUSES)})")


def focus_value(facts: Facts, focus: str) -> object:
    """The fact a focus contradicts (what a negative swaps away)."""
    return {"pronoun": facts.hero.gender, "feeling": facts.feeling, "object": facts.obj,
            "place": facts.place, "helper": facts.helper}[focus]


@dataclass(frozen=True)
class Ending:
    name: str
    render: Callable[[Facts], str]
    focus: tuple[str, ...]
    """Facts this ending states in a way a swap contradicts (pronoun-focus endings never use the name)."""
    outcomes: tuple[str, ...] = ("good", "bad")
    plots: tuple[str, ...] | None = None
    """Plots the ending fits; None for any."""
    needs: tuple[str, ...] = ()
    """Facts that must be present: 'obj', 'animal'."""

    def fits(self, facts: Facts) -> bool:
        return (facts.outcome in self.outcomes
                and (self.plots is None or facts.plot in self.plots)
                and all(getattr(facts, need) is not None for need in self.needs))


def _obj(f: Facts) -> str:
    return f"{f.obj_adj} {f.obj.sg}" if f.obj_adj else f.obj.sg


ENDINGS: tuple[Ending, ...] = (
    Ending("thank_and_hug",
           lambda f: sentence(f.hero.subj, "thanked", f.helper.name, "and hugged", f.hero.poss, _obj(f)),
           ("pronoun", "helper", "object"), ("good",),
           ("lost_object", "want_object", "broken_object", "make_toy"), ("obj",)),
    Ending("put_away_at_night",
           lambda f: sentence("That night,", f.hero.subj, "put", f.hero.poss, _obj(f), f.night_spot[0],
                              f.hero.poss, f.night_spot[1], "and smiled"),
           ("pronoun", "object"), ("good",),
           ("lost_object", "want_object", "broken_object", "make_toy"), ("obj",)),
    Ending("missed_it",
           lambda f: sentence("That night,", f.hero.subj, "went to bed and missed", f.hero.poss, _obj(f)),
           ("pronoun", "object"), ("bad",), ("lost_object",), ("obj",)),
    Ending("broken_away",
           lambda f: sentence(f.hero.subj, "put", f.hero.poss, _obj(f), "in a box and cried"),
           ("pronoun", "object"), ("bad",), ("broken_object", "make_toy"), ("obj",)),
    Ending("still_hoped",
           lambda f: sentence(f.hero.subj, "still hoped to get", noun_phrase(f.obj, det="a", adj=f.obj_adj),
                              "one day"),
           ("pronoun", "object"), ("bad",), ("want_object",), ("obj",)),
    Ending("walked_home",
           lambda f: sentence(f.hero.name, "felt", f.feeling, "as", f.hero.subj, "walked home from the",
                              f.place.sg, "with", f.helper.name),
           ("feeling", "place", "helper")),
    Ending("left_the_place",
           lambda f: sentence(f.hero.name, "and", f.helper.name, "were", f.feeling, "when they left the",
                              f.place.sg),
           ("feeling", "place", "helper")),
    Ending("home_with_object",
           lambda f: sentence(f.hero.subj, "went home from the", f.place.sg, "with", f.hero.poss, _obj(f) + ",",
                              "feeling", f.feeling),
           ("pronoun", "place", "object", "feeling"), ("good",),
           ("lost_object", "want_object", "make_toy", "trip"), ("obj",)),
    Ending("animal_followed",
           lambda f: sentence("The", f.animal.sg, "followed", f.hero.obj, "all the way home from the", f.place.sg),
           ("pronoun", "place"), ("good",), ("animal_help",), ("animal",)),
    Ending("waved_goodbye",
           lambda f: sentence(f.hero.subj, "waved goodbye to the", f.animal.sg, "and went home with",
                              f.helper.name),
           ("pronoun", "helper"), ("good",), ("animal_help", "fear"), ("animal",)),
)
ENDING_BY_NAME = {e.name: e for e in ENDINGS}


def choose_ending(rng: random.Random, facts: Facts, focus: str | None = None) -> Ending:
    """An ending that fits the facts (and states the `focus` fact, for a story-cloze item)."""
    fitting = [e for e in ENDINGS if e.fits(facts) and (focus is None or focus in e.focus)]
    if not fitting:
        raise ValueError(f"no ending for plot {facts.plot!r}, outcome {facts.outcome!r}, focus {focus!r}")
    return choice(rng, fitting)
