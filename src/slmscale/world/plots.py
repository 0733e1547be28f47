"""The plots: what happens in a story, beat by beat, ending left to `endings`.

Each plot is a want or a situation, a problem, an action and a resolution that
depends on the outcome (`Facts.outcome`). A beat renders one sentence from the
facts through the teller (names vs pronouns). `Hook`s mark where incidental
detail sentences may go (see `details`); optional beats are dropped to keep a
story within eight sentences. Plots also choose their own facts
(`sample_facts`): a boat is made for the pond, a kite for the hill.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from slmscale.world.characters import HERO_TRAITS, Teller, make_helper, make_hero
from slmscale.world.details import generic_fact
from slmscale.world.endings import NIGHT_SPOTS, Facts
from slmscale.world.grammar import capitalize, choice, noun_phrase, one_of, said, sentence
from slmscale.world.lexicon import (ADJ_BY_KIND, ANIMAL_INFO, BAD_FEELINGS, GOOD_FEELINGS, KITE_PLACES,
                                    NOUN_BY_SG, OUTDOOR_PLACES, PLACE_ANIMALS, PLACE_LOC, SHOP_PLACES,
                                    SPOT_PREPS, VERB, WATER_PLACES, Noun, nouns_of, spots_at)

OBJECT_ADJECTIVES = ADJ_BY_KIND["color"] + ("shiny", "new", "old", "pretty", "funny", "special",
                                              "striped", "little", "big", "tiny", "beautiful")
PORTABLE = tuple(n for n in nouns_of("toy", countable=True) if "big" not in n.tags)
BREAKABLE = tuple(n for n in PORTABLE if "breakable" in n.tags)
WEATHER_DAYS = ("sunny", "windy", "cloudy", "snowy", "rainy")
# Where a child would take a toy (no jungles or islands for a lost ball).
TOY_PLACES = ("park", "garden", "beach", "yard", "playground", "field", "meadow", "hill", "forest", "farm",
              "lake", "pond", "river")
HOMES = ("in a little house", "near a big forest", "on a farm", "in a quiet village", "by a small lake",
         "near a green hill", "in a little town", "near an old castle", "next to a bakery", "near a dark cave")
# Animals a child may fear and then pat, and animals a child can help (no lions under a blanket).
FEARED_ANIMALS = ("dog", "horse", "goat", "goose", "cow", "pig", "pony", "sheep", "duck", "cat", "puppy", "hen")
HELPED_ANIMALS = ("duck", "bird", "bunny", "kitten", "puppy", "squirrel", "chick", "lamb", "frog", "turtle",
                  "goose", "mouse", "hen", "owl", "deer", "pony", "goat", "dog", "cat", "parrot")


@dataclass(frozen=True)
class Beat:
    render: Callable[[Teller, Facts], str | None]
    """Renders one sentence, or None when the facts leave nothing to say (no object to bring)."""
    optional: float = 0.0
    """Probability of keeping an optional beat; 0 for a required one."""


@dataclass(frozen=True)
class Hook:
    where: str
    """'intro' (before the hero leaves home) or 'place' (at the place they went to)."""


@dataclass(frozen=True)
class Plot:
    name: str
    steps: tuple[Beat | Hook, ...]


def _spot(rng: random.Random, f: Facts) -> str:
    """'under the bench' at the park, 'behind the rock' at the beach."""
    spot = choice(rng, spots_at(f.place.sg))
    return f"{choice(rng, SPOT_PREPS[spot])} the {spot}"


def _loc(place: Noun) -> str:
    return f"{PLACE_LOC[place.sg]} the {place.sg}"


def _obj(f: Facts, det: str = "the") -> str:
    return noun_phrase(f.obj, det=det, adj=f.obj_adj if det in ("a", "his", "her", "their") else None)


# Shared beats -----------------------------------------------------------------------------

def intro(t: Teller, f: Facts) -> str:
    hero, rng = f.hero, t.rng
    trait = choice(rng, HERO_TRAITS)
    t.last_subject = hero
    kind = noun_phrase(NOUN_BY_SG[hero.noun], det="a", adj=trait)
    home = choice(rng, HOMES)
    return one_of(
        rng,
        lambda: sentence("Once upon a time, there was", kind, "named", hero.name),
        lambda: sentence("There was once", kind, "named", hero.name),
        lambda: sentence(hero.name, "was", kind, "who lived", home),
        lambda: sentence("Once there was", kind, "called", hero.name))


def go_together(t: Teller, f: Facts) -> str:
    rng = t.rng
    day = choice(rng, ("One day,", f"One {choice(rng, WEATHER_DAYS)} day,", "One morning,", "The next day,"))
    return sentence(day, t.together(), "went to the", f.place.sg)


def cry(t: Teller, f: Facts) -> str:
    return one_of(
        t.rng,
        lambda: sentence(t.subj(f.hero), "was very sad"),
        lambda: sentence(t.subj(f.hero), "began to cry"),
        lambda: sentence(t.subj(f.hero), "sat down and cried"))


def comfort(t: Teller, f: Facts) -> str:
    """A helper's comforting line: present tense inside the quote."""
    return said(t.name(f.helper), choice(t.rng, (f"do not be sad, {f.hero.name}", "I am here to help you",
                                                 f"your {f.obj.sg} is very special")))


def encourage(t: Teller, f: Facts) -> str:
    return said(t.name(f.helper), choice(t.rng, ("we can do it together", "I hope it works",
                                                 f"this {f.obj.sg} looks very nice")))


# lost_object ----------------------------------------------------------------------------

def have_object(t: Teller, f: Facts) -> str:
    rng, obj = t.rng, _obj(f, "a")
    return one_of(
        rng,
        lambda: sentence(t.subj(f.hero), "had", obj, "that", f.hero.subj, "loved very much"),
        lambda: sentence(t.subj(f.hero), "had", obj + ", and", f.hero.subj, "took it everywhere"),
        lambda: sentence(t.subj(f.hero), "loved", f.hero.poss, f.obj_adj, f.obj.sg, "more than anything"))


def take_object_along(t: Teller, f: Facts) -> str:
    rng = t.rng
    if rng.random() < 0.5:
        return sentence("One day,", t.subj(f.hero), "took", f.hero.poss, f.obj_adj, f.obj.sg, "to the",
                        f.place.sg, "with", t.name(f.helper))
    return sentence(choice(rng, ("One day,", "One morning,")), t.together(), "went to the", f.place.sg,
                    "with", f.hero.poss, f.obj_adj, f.obj.sg)


def play_with_object(t: Teller, f: Facts) -> str:
    return sentence(t.subj(f.hero), "played with the", f.obj.sg, _spot(t.rng, f))


def object_gone(t: Teller, f: Facts) -> str:
    rng = t.rng
    return one_of(
        rng,
        lambda: sentence("When it was time to go home, the", f.obj.sg, "was gone"),
        lambda: sentence("After a while,", t.subj(f.hero), "could not find", f.hero.poss, f.obj.sg),
        lambda: sentence("But soon,", t.subj(f.hero), "lost", f.hero.poss, f.obj.sg))


def search(t: Teller, f: Facts) -> str:
    rng = t.rng
    return one_of(
        rng,
        lambda: sentence(t.subj(f.hero), "looked", _spot(rng, f) + ", but the", f.obj.sg, "was not there"),
        lambda: sentence(t.subj(f.helper), "helped", f.hero.obj, "look for it"),
        lambda: sentence(t.together(), "looked for the", f.obj.sg, "everywhere"))


def found_or_not(t: Teller, f: Facts) -> str:
    rng = t.rng
    if f.outcome == "good":
        finder = f.helper if rng.random() < 0.5 else f.hero
        return one_of(
            rng,
            lambda: sentence("At last,", t.subj(finder), "found the", f.obj.sg, _spot(rng, f)),
            lambda: sentence("Then", t.subj(finder), "saw the", f.obj.sg, _spot(rng, f)),
            lambda: said(t.name(f.helper), f"here is your {f.obj.sg}, {f.hero.name}", end="!"))
    t.last_subject = None
    return one_of(
        rng,
        lambda: sentence("They looked and looked, but they did not find the", f.obj.sg),
        lambda: sentence("They looked until it was dark, but the", f.obj.sg, "was lost"),
        lambda: said(f.hero.name, f"my {f.obj.sg} is lost, and it is not coming back"))


# want_object ----------------------------------------------------------------------------

def want(t: Teller, f: Facts) -> str:
    rng = t.rng
    return one_of(
        rng,
        lambda: sentence(t.subj(f.hero), "wanted", _obj(f, "a"), "more than anything"),
        lambda: sentence(t.subj(f.hero), "really wanted", _obj(f, "a")),
        lambda: sentence(t.subj(f.hero), "saw", _obj(f, "a"), "in a book and wanted one too"))


def ask(t: Teller, f: Facts) -> str:
    return sentence(t.subj(f.hero), "asked", t.name(f.helper), "for", _obj(f, "a"))


def shop_reply(t: Teller, f: Facts) -> str:
    return said(t.name(f.helper), choice(t.rng, (f"we can look for one {_loc(f.place)}",
                                                 f"the {f.place.sg} has many nice things")))


def buy_or_not(t: Teller, f: Facts) -> str:
    rng = t.rng
    if f.outcome == "good":
        return one_of(
            rng,
            lambda: sentence("There they found", _obj(f, "a") + ", and", t.name(f.helper), "bought it for",
                    f.hero.obj),
            lambda: sentence(t.name(f.helper), "bought", f.hero.obj, _obj(f, "a"), _loc(f.place)),
            lambda: said(t.name(f.helper), f"this {f.obj_adj} {f.obj.sg} is for you"))
    t.last_subject = None
    return one_of(
        rng,
        lambda: sentence("But there were no", f.obj.pl, _loc(f.place), "that day"),
        lambda: sentence("But the", f.place.sg, "did not have any", f.obj.pl),
        lambda: said(t.name(f.helper), f"the {f.place.sg} has no {f.obj.pl} today"))


# broken_object --------------------------------------------------------------------------

def play_every_day(t: Teller, f: Facts) -> str:
    return sentence("Every day,", t.subj(f.hero), "played with", f.hero.poss, f.obj_adj, f.obj.sg)


def take_to_place(t: Teller, f: Facts) -> str:
    together = t.together()
    return sentence("One day,", together, "took", f.hero.poss, f.obj_adj, f.obj.sg, "to the", f.place.sg)


def breaks(t: Teller, f: Facts) -> str:
    rng = t.rng
    high = [s for s in ("bench", "swing", "slide") if s in spots_at(f.place.sg)]
    if high and rng.random() < 0.4:
        return sentence("But the", f.obj.sg, "fell off the", choice(rng, high), "and broke")
    return one_of(
        rng,
        lambda: sentence(t.subj(f.hero), "dropped the", f.obj.sg + ", and it broke"),
        lambda: sentence("Then the", f.obj.sg, "hit a big rock and broke"))


def fixed_or_not(t: Teller, f: Facts) -> str:
    rng = t.rng
    if f.outcome == "good":
        return one_of(
            rng,
            lambda: sentence(t.subj(f.helper), "took the", f.obj.sg, "home and fixed it"),
            lambda: sentence(t.subj(f.helper), "fixed the", f.obj.sg, "with some glue"),
            lambda: said(t.name(f.helper), f"I fixed it, and your {f.obj.sg} works again"))
    return one_of(
        rng,
        lambda: sentence(t.subj(f.helper), "tried to fix it, but the", f.obj.sg, "was too broken"),
        lambda: sentence(t.subj(f.helper), "could not fix the", f.obj.sg),
        lambda: said(t.name(f.helper), f"I am sorry, but this {f.obj.sg} is too broken to fix"))


# trip -----------------------------------------------------------------------------------

def bring_along(t: Teller, f: Facts) -> str | None:
    if f.obj is None:
        return None
    return sentence(t.subj(f.hero), "brought", f.hero.poss, f.obj_adj, f.obj.sg, "with", f.hero.obj)


def see_animals(t: Teller, f: Facts) -> str:
    rng, animal = t.rng, f.animal
    t.last_subject = None
    if animal.invariant or rng.random() < 0.5:
        many = choice(rng, ("many", "some", "two", "three"))
        return sentence("There were", many, animal.pl, _loc(f.place))
    return sentence(capitalize(_loc(f.place)) + ", they saw", choice(rng, ("two", "three", "some", "many")),
                    choice(rng, ("little", "big", "funny", "pretty")), animal.pl)


def fun_or_rain(t: Teller, f: Facts) -> str:
    rng = t.rng
    t.last_subject = None
    if f.outcome == "good":
        eats = ANIMAL_INFO[f.animal.sg].eats
        if eats and rng.random() < 0.5:
            food = NOUN_BY_SG[choice(rng, eats)]
            it = "it" if food.mass else "them"
            food_np = food.sg if food.mass else food.pl
            return sentence(t.together(), "gave the", f.animal.pl, "some", food_np + ", and the", f.animal.pl,
                            "ate", it, "all")
        return sentence("They played", _loc(f.place), "until the sun went down")
    return one_of(
        rng,
        lambda: sentence("Then dark clouds came, and it began to rain"),
        lambda: sentence("Then it began to rain, and they had to go home early"))


# animal_help ----------------------------------------------------------------------------

def walk_at_place(t: Teller, f: Facts) -> str:
    return sentence("One day,", t.together(), "went for a walk", _loc(f.place))


def find_animal(t: Teller, f: Facts) -> str:
    rng = t.rng
    size = choice(rng, ("little", "small", "tiny", "young"))
    return sentence("There,", t.subj(f.hero), "saw", noun_phrase(f.animal, det="a", adj=size), _spot(rng, f))


ANIMAL_TROUBLES = ("hungry", "cold", "lost", "scared")


def animal_trouble(t: Teller, f: Facts) -> str:
    return sentence("The", f.animal.sg, "was", f.trouble, "and alone")


def help_animal(t: Teller, f: Facts) -> str:
    rng, trouble = t.rng, f.trouble
    if trouble == "hungry":
        eats = ANIMAL_INFO[f.animal.sg].eats or ("bread",)
        food = NOUN_BY_SG[choice(rng, eats)]
        return sentence(t.subj(f.hero), "gave the", f.animal.sg, "some", food.sg if food.mass else food.pl)
    if trouble == "cold":
        return sentence(t.subj(f.helper), "put a soft blanket on the", f.animal.sg)
    if trouble == "lost":
        return sentence(t.together(), "looked for the", f.animal.sg + "'s", "mom")
    return sentence(t.subj(f.hero), "sat down and talked to the", f.animal.sg, "in a soft voice")


def animal_better_or_not(t: Teller, f: Facts) -> str:
    rng = t.rng
    t.last_subject = None
    if f.outcome == "good":
        return one_of(
            rng,
            lambda: sentence("Soon the", f.animal.sg, "felt much better"),
            lambda: sentence("The", f.animal.sg, "was not", f.trouble, "anymore"),
            lambda: said(f.hero.name, f"look, the {f.animal.sg} is happy now", end="!"))
    return one_of(
        rng,
        lambda: sentence("But the", f.animal.sg, "was scared, and it ran away"),
        lambda: sentence("But the", f.animal.sg, "ran away and did not come back"))


# fear -----------------------------------------------------------------------------------

def afraid(t: Teller, f: Facts) -> str:
    return one_of(
        t.rng,
        lambda: sentence(t.subj(f.hero), "was afraid of", f.animal.pl),
        lambda: sentence(t.subj(f.hero), "was scared of big", f.animal.pl))


def meet_feared(t: Teller, f: Facts) -> str:
    t.last_subject = None
    return sentence("There they saw a big", f.animal.sg, _spot(t.rng, f))


def reassure(t: Teller, f: Facts) -> str:
    rng, helper, animal = t.rng, t.name(f.helper), f.animal
    return one_of(
        rng,
        lambda: said(helper, f"do not be scared, because this {animal.sg} is friendly"),
        lambda: said(helper, f"{animal.pl} are kind, and they do not bite"),
        lambda: sentence(helper, "told", f.hero.name, "that the", animal.sg, "was friendly"),
        lambda: said(helper, f"this {animal.sg} likes children"))


def brave_or_not(t: Teller, f: Facts) -> str:
    rng = t.rng
    if f.outcome == "good":
        return one_of(
            rng,
            lambda: sentence(t.subj(f.hero), "gently patted the", f.animal.sg + ", and it licked", f.hero.poss,
                    "hand"),
            lambda: sentence(t.subj(f.hero), "walked up to the", f.animal.sg, "and smiled at it"),
            lambda: sentence(f.hero.name, "patted the", f.animal.sg + ", and", t.name(f.helper), "said that the",
                    f.animal.sg, "liked", f.hero.obj))
    sound = ANIMAL_INFO[f.animal.sg].sound
    if sound:
        return sentence("But the", f.animal.sg, VERB[sound].past + ", and", f.hero.name, "hid behind",
                        t.name(f.helper))
    return sentence("But the", f.animal.sg, "came too close, and", f.hero.name, "hid behind", t.name(f.helper))


# Present tense in speech: each plot has a line with third-person agreement -----------------

def object_speech(t: Teller, f: Facts) -> str:
    """The hero about the object: 'my kite is gone', 'my friend has a red kite'."""
    hero, obj = f.hero.name, f.obj.sg
    if f.plot == "lost_object":
        return one_of(
            t.rng,
            lambda: said(hero, f"my {obj} is gone"),
            lambda: said(hero, f"where is my {obj}", end="?"))
    if f.plot == "broken_object":
        return said(hero, f"my {obj} is broken")
    return one_of(
        t.rng,
        lambda: said(hero, f"my friend has {_obj(f, 'a')}"),
        lambda: said(hero, f"every child needs {noun_phrase(f.obj, det='a')}"))


def animal_speech(t: Teller, f: Facts) -> str:
    """A general fact about the animal the story meets (present tense, agreement)."""
    speaker = t.name(f.helper) if t.rng.random() < 0.6 else f.hero.name
    if f.plot == "animal_help" and t.rng.random() < 0.5:
        return said(speaker, f"this {f.animal.sg} needs our help")
    return said(speaker, generic_fact(t.rng, f.animal, speech=True))


def place_speech(t: Teller, f: Facts) -> str:
    """The hero about the place they went to: 'the beach is so pretty!'."""
    adj = choice(t.rng, ("pretty", "big", "beautiful", "quiet", "nice", "sunny"))
    return said(f.hero.name, f"the {f.place.sg} is so {adj}", end="!")


def hint(t: Teller, f: Facts) -> str:
    """The helper, while they look for the lost thing."""
    return said(t.name(f.helper), choice(t.rng, (f"your {f.obj.sg} is not far away",
                                                 f"the {f.obj.sg} is somewhere here",
                                                 f"a {f.obj.sg} does not walk away")))


def toy_speech(t: Teller, f: Facts) -> str:
    need = "water" if f.obj.sg == "boat" else "wind"
    return said(t.name(f.helper), f"{noun_phrase(f.obj, det='a')} needs {need}")


# make_toy -------------------------------------------------------------------------------

def make_together(t: Teller, f: Facts) -> str:
    return one_of(
        t.rng,
        lambda: sentence("One day,", t.together(), "made", _obj(f, "a")),
        lambda: sentence(t.subj(f.hero), "wanted", _obj(f, "a") + ", so", t.name(f.helper), "helped", f.hero.obj,
                "make one"))


def take_made(t: Teller, f: Facts) -> str:
    t.last_subject = None
    return sentence("Then they took the", f.obj.sg, "to the", f.place.sg)


def works_or_not(t: Teller, f: Facts) -> str:
    t.last_subject = None
    if f.obj.sg == "boat":
        return sentence("They put the boat on the water,", "and it floated" if f.outcome == "good"
                        else "but it did not float")
    if f.outcome == "good":
        return sentence("The wind was strong, and the kite flew high in the sky")
    return sentence("But there was no wind, and the kite did not fly")


PLOTS: dict[str, Plot] = {p.name: p for p in (
    Plot("lost_object", (Beat(intro, 0.9), Beat(have_object), Hook("intro"), Beat(take_object_along),
                         Hook("place"), Beat(place_speech, 0.3), Beat(play_with_object, 0.4), Beat(object_gone),
                         Beat(object_speech, 0.5), Beat(cry, 0.3), Beat(hint, 0.4), Beat(search, 0.5),
                         Beat(found_or_not))),
    Plot("want_object", (Beat(intro, 0.9), Beat(want), Beat(object_speech, 0.5), Hook("intro"), Beat(ask, 0.7),
                         Beat(shop_reply, 0.5), Beat(go_together), Hook("place"), Beat(buy_or_not))),
    Plot("broken_object", (Beat(intro, 0.9), Beat(play_every_day, 0.6), Hook("intro"), Beat(take_to_place),
                           Hook("place"), Beat(breaks), Beat(object_speech, 0.5), Beat(cry, 0.4),
                           Beat(comfort, 0.4), Beat(fixed_or_not))),
    Plot("trip", (Beat(intro, 0.9), Hook("intro"), Beat(go_together), Beat(bring_along),
                  Beat(place_speech, 0.4), Hook("place"), Beat(see_animals, 0.8), Beat(animal_speech, 0.5),
                  Beat(fun_or_rain))),
    Plot("animal_help", (Beat(intro, 0.9), Hook("intro"), Beat(walk_at_place), Beat(find_animal),
                         Beat(animal_trouble, 0.8), Beat(animal_speech, 0.5), Hook("place"), Beat(help_animal),
                         Beat(animal_better_or_not))),
    Plot("fear", (Beat(intro, 0.9), Beat(afraid), Hook("intro"), Beat(go_together), Beat(place_speech, 0.3),
                  Beat(meet_feared), Hook("place"), Beat(reassure, 0.8), Beat(brave_or_not))),
    Plot("make_toy", (Beat(intro, 0.9), Hook("intro"), Beat(make_together), Beat(take_made), Hook("place"),
                      Beat(place_speech, 0.3), Beat(toy_speech, 0.5), Beat(encourage, 0.3), Beat(works_or_not))),
)}


def sample_facts(rng: random.Random, plot: str, gender: str | None = None, same_gender: bool = False,
                 outcome: str | None = None, feeling: str | None = None) -> Facts:
    """Facts that fit `plot`; a cloze item may fix the hero's gender, a same-gender cast, the outcome."""
    hero = make_hero(rng, gender)
    helper = make_helper(rng, hero, gender=hero.gender if same_gender else None)
    obj: Noun | None = None
    animal: Noun | None = None
    if plot == "want_object":
        place = choice(rng, SHOP_PLACES)
    elif plot == "make_toy":
        obj = NOUN_BY_SG[choice(rng, ("boat", "kite"))]
        place = choice(rng, WATER_PLACES if obj.sg == "boat" else KITE_PLACES)
    elif plot in ("lost_object", "broken_object"):
        place = choice(rng, TOY_PLACES)
    else:
        place = choice(rng, OUTDOOR_PLACES)
    if plot in ("lost_object", "want_object"):
        obj = choice(rng, PORTABLE)
    elif plot == "broken_object":
        obj = choice(rng, BREAKABLE)
    elif plot == "trip" and rng.random() < 0.5:
        obj = choice(rng, PORTABLE)
    if plot in ("animal_help", "fear"):
        allowed = FEARED_ANIMALS if plot == "fear" else HELPED_ANIMALS
        place = choice(rng, [p for p in OUTDOOR_PLACES if set(PLACE_ANIMALS[p]) & set(allowed)])
        animal = NOUN_BY_SG[choice(rng, [a for a in PLACE_ANIMALS[place] if a in allowed])]
    elif plot == "trip":
        animal = NOUN_BY_SG[choice(rng, PLACE_ANIMALS[place])]
    if outcome is None:
        outcome = "good" if rng.random() < 0.6 else "bad"
    if feeling is None:
        feeling = choice(rng, GOOD_FEELINGS if outcome == "good" else BAD_FEELINGS)
    obj_adj = choice(rng, OBJECT_ADJECTIVES) if obj is not None else ""
    trouble = choice(rng, ANIMAL_TROUBLES) if plot == "animal_help" else ""
    return Facts(plot, hero, helper, NOUN_BY_SG[place], outcome, feeling, obj, obj_adj, animal,
                 choice(rng, NIGHT_SPOTS), trouble)
