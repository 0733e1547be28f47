"""Incidental detail sentences: how the training text gets every construction the benchmark tests.

A plot alone is past-tense narration. These details add what TinyStories-like
text also has, and what a learner needs to see in other sentences before the
held-out minimal pairs test it: present-tense statements with agreement (in
speech, reported speech or as a narrator's general fact), this/these, every and
many, there was/were, a subject with a prepositional phrase, reflexives,
do-support negation, some/any, irregular plurals. A measurement of an earlier
version found present-tense agreement and determiner-noun number unlearnable
when rare (docs/DESIGN.md §5.4), so they are frequent here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from slmscale.world import activities
from slmscale.world.characters import Teller
from slmscale.world.endings import Facts
from slmscale.world.grammar import PL, SG, be, choice, do_not, noun_phrase, number_of, one_of, said, sentence, verb
from slmscale.world.lexicon import (ANIMAL_INFO, ANIMALS, FOOD, NOUN_BY_SG, PLACE_ANIMALS, PLACE_LOC, VERB,
                                    Noun)

# Where each kind of animal moves, for present-tense facts ("Ducks swim in the pond.").
MOVE_PP: dict[str, tuple[str, ...]] = {
    "swim": ("in the pond", "in the lake", "in the river", "in the water"),
    "fly": ("over the hill", "over the trees", "in the sky", "over the houses"),
    "climb": ("up the trees", "up the hill", "on the rocks"),
    "run": ("in the field", "across the park", "very fast", "around the farm"),
    "walk": ("in the field", "around the farm", "very slowly", "to the river"),
    "hop": ("in the grass", "across the field", "in the garden"),
    "jump": ("over the fence", "very high", "on the rocks"),
    "dig": ("in the sand", "in the mud", "in the garden"),
    "sleep": ("in the barn", "in the sun", "under the trees", "all day"),
    "hide": ("under the rocks", "under the leaves", "in the grass"),
    "sing": ("in the trees", "every morning"),
}
NICE_ADJECTIVES = ("friendly", "clever", "smart", "funny", "pretty", "beautiful", "busy", "strong",
                   "gentle", "kind", "silly")
PREDICATE_FEELINGS = ("happy", "sad", "hungry", "sleepy", "tired", "cold", "scared", "thirsty", "excited",
                      "calm", "angry", "bored", "lonely", "grumpy", "proud", "sick", "worried", "wet")
# Nouns a prepositional phrase can name next to an animal ("the duck by the rocks").
PP_NOUNS = tuple(NOUN_BY_SG[w] for w in ("tree", "rock", "bush", "flower", "fence", "bench", "stone"))
PP_PREPS = ("near", "by", "under", "behind", "next to")
COLLECTIBLES = tuple(NOUN_BY_SG[w] for w in ("shell", "rock", "stone", "feather", "flower", "leaf", "stick"))
CROWDS = ("child", "man", "woman", "boy", "girl")


def _home_of(animal: Noun) -> str:
    """A place the animal lives, for 'there are many ducks by the pond'."""
    homes = [p for p, animals in PLACE_ANIMALS.items() if animal.sg in animals]
    return homes[0] if homes else "park"


def _food_np(rng: random.Random, animal: Noun) -> str:
    eats = ANIMAL_INFO[animal.sg].eats
    food = NOUN_BY_SG[choice(rng, eats)] if eats else choice(rng, FOOD)
    return food.sg if food.mass else food.pl


def generic_subject(rng: random.Random, animal: Noun, number: str, speech: bool) -> str:
    """'ducks', 'a duck', 'every duck', 'all ducks'; in speech also 'the', 'my', 'this', 'these'."""
    if number == SG:
        dets = ("a", "every") + (("the", "my", "this", "this") if speech else ())
    else:
        dets = ("", "", "all", "many") + (("the", "some", "these", "these", "my") if speech else ())
    return noun_phrase(animal, number, det=choice(rng, dets))


def generic_fact(rng: random.Random, animal: Noun | None = None, speech: bool = False) -> str:
    """A present-tense clause with agreement, lower case and unpunctuated: 'a duck likes bread'."""
    animal = animal if animal is not None else choice(rng, ANIMALS)
    number = SG if animal.invariant and rng.random() < 0.3 else number_of(rng)
    subj = generic_subject(rng, animal, number, speech)
    info = ANIMAL_INFO[animal.sg]
    kinds = ["likes"] * 3 + ["moves"] * 3 + ["dislikes"] * 2 + ["is"] * 2
    if speech:  # "the duck by the rocks is hungry" is something said, not a narrator's general fact
        kinds += ["pp", "pp", "there"]
    if info.sound:
        kinds.append("sound")
    kind = choice(rng, kinds)
    if kind == "likes":
        v = VERB[choice(rng, ("like", "love", "eat", "want", "need"))]
        return f"{subj} {verb(v, 'present', number)} {_food_np(rng, animal)}"
    if kind == "moves":
        move = choice(rng, info.moves)
        return f"{subj} {verb(VERB[move], 'present', number)} {choice(rng, MOVE_PP[move])}"
    if kind == "dislikes":
        if subj.startswith(("all ", "every ")):  # "all worms do not like" reads as "not all"
            subj = noun_phrase(animal, number, det="a" if number == SG else "")
        thing = choice(rng, ("the rain", "the snow", "the mud", "the wind", "the dark", "loud noises"))
        return f"{subj} {do_not(VERB['like'], 'present', number)} {thing}"
    if kind == "is":
        return f"{subj} {be('present', number)} very {choice(rng, NICE_ADJECTIVES)}"
    if kind == "sound":
        it = "it is" if number == SG else "they are"
        when = choice(rng, ("at night", "every morning", f"when {it} happy", f"when {it} hungry"))
        return f"{subj} {verb(VERB[info.sound], 'present', number)} {when}"
    if kind == "pp":
        other = number_of(rng)
        pp = noun_phrase(choice(rng, PP_NOUNS), other, det="the")
        head = noun_phrase(animal, number, det="the")
        return f"{head} {choice(rng, PP_PREPS)} {pp} {be('present', number)} {choice(rng, PREDICATE_FEELINGS)}"
    home = NOUN_BY_SG[_home_of(animal)]
    det = "a" if number == SG else choice(rng, ("many", "some", "two", "three"))
    return f"there {be('present', number)} {noun_phrase(animal, number, det=det)} {PLACE_LOC[home.sg]} the {home.sg}"


def _story_animal(rng: random.Random, f: Facts) -> Noun:
    if f.animal is not None and rng.random() < 0.5:
        return f.animal
    if f.place.sg in PLACE_ANIMALS:
        return NOUN_BY_SG[choice(rng, PLACE_ANIMALS[f.place.sg])]
    return choice(rng, ANIMALS)


def _loc(f: Facts) -> str:
    return f"{PLACE_LOC[f.place.sg]} the {f.place.sg}"


def fact(t: Teller, f: Facts) -> str:
    rng = t.rng
    animal = _story_animal(rng, f)
    how = choice(rng, ("said", "said", "knew", "told", "plain", "plain"))
    if how == "said":
        speaker = t.name(f.helper) if rng.random() < 0.6 else f.hero.name
        return said(speaker, generic_fact(rng, animal, speech=True))
    if how == "knew":
        return sentence(f.hero.name, "knew that", generic_fact(rng, animal))
    if how == "told":
        return sentence(t.name(f.helper), "told", f.hero.name, "that", generic_fact(rng, animal))
    return sentence(generic_fact(rng, animal))


def this_these(t: Teller, f: Facts) -> str:
    rng = t.rng
    noun = f.obj if f.obj is not None and rng.random() < 0.4 else _story_animal(rng, f)
    speaker = f.hero.name if rng.random() < 0.6 else t.name(f.helper)
    number = SG if noun.invariant else number_of(rng)
    det = "this" if number == SG else "these"
    phrase = noun_phrase(noun, number, det=det)
    if rng.random() < 0.5:
        return said(speaker, f"{phrase} {be('present', number)} very {choice(rng, NICE_ADJECTIVES)}")
    if rng.random() < 0.5:
        return said(speaker, f"I like {phrase}")
    return said(speaker, f"look at {phrase}", end="!")


def habit(t: Teller, f: Facts) -> str:
    rng = t.rng
    when = choice(rng, ("Every morning,", "Every day,", "Every evening,"))
    farm = NOUN_BY_SG[choice(rng, PLACE_ANIMALS["farm"])]
    doing = [f"fed the {farm.pl}", "read a book", "sang a song", f"walked to the {f.place.sg}",
             f"played {_loc(f)}", "looked at the stars", "looked at the moon", "woke up early",
             "walked to school", "went to the library"]
    if f.obj is not None:
        doing.append(f"played with {f.hero.poss} {f.obj.sg}")
    return sentence(when, t.subj(f.hero), choice(rng, doing))


def dislike(t: Teller, f: Facts) -> str:
    thing = choice(t.rng, ("the rain", "the dark", "the cold wind", "loud noises", "the mud"))
    return sentence(t.subj(f.hero), do_not(VERB["like"], "past"), thing)


def there(t: Teller, f: Facts) -> str:
    rng = t.rng
    animal = _story_animal(rng, f)
    number = PL if animal.invariant else number_of(rng)
    if number == SG:
        adj = choice(rng, ("big", "little", "funny", None))
        return sentence("There was", noun_phrase(animal, SG, det="a", adj=adj), _loc(f))
    det = choice(rng, ("many", "some", "two", "three"))
    return sentence("There were", det, animal.pl, _loc(f))


def pp_subject(t: Teller, f: Facts) -> str:
    """A subject with a prepositional phrase or a quantifier, agreeing across it."""
    rng = t.rng
    t.last_subject = None
    animal = _story_animal(rng, f)
    number = PL if animal.invariant else number_of(rng)
    feeling = choice(rng, PREDICATE_FEELINGS)
    style = choice(rng, ("pp", "quantifier"))
    if style == "pp":
        head = noun_phrase(animal, number, det="the")
        pp = noun_phrase(choice(rng, PP_NOUNS), number_of(rng), det="the")
        return sentence(head, choice(rng, PP_PREPS), pp, be("past", number), feeling)
    if number == SG:
        return sentence("Every", animal.sg, _loc(f), "was", feeling)
    return sentence(choice(rng, ("Many", "All the", "Some")), animal.pl, _loc(f), "were", feeling)


def reflexive(t: Teller, f: Facts) -> str:
    rng = t.rng
    if rng.random() < 0.6:
        hero = f.hero
        return one_of(
            rng,
            lambda: sentence(t.subj(hero), "saw", hero.refl, "in a puddle and laughed"),
            lambda: sentence(t.subj(hero), "looked at", hero.refl, "in the water"),
            lambda: sentence(t.subj(hero), "washed", hero.refl, "and put on a clean coat"),
            lambda: sentence(t.subj(hero), "dried", hero.refl, "with a soft towel"))
    t.last_subject = None
    animal = _story_animal(rng, f)
    number = PL if animal.invariant else number_of(rng)
    refl = "itself" if number == SG else "themselves"
    v = choice(rng, ("washed", "licked", "cleaned"))
    return sentence(noun_phrase(animal, number, det="the"), v, refl, _loc(f))


def some_any(t: Teller, f: Facts) -> str:
    rng = t.rng
    thing = choice(rng, COLLECTIBLES)
    if rng.random() < 0.5:
        return sentence(t.subj(f.hero), "found some", choice(rng, ("pretty", "little", "big", "")), thing.pl,
                        _loc(f))
    if rng.random() < 0.5:
        return sentence(t.subj(f.hero), "looked for", thing.pl + ", but", f.hero.subj, "did not find any")
    return sentence(t.subj(f.hero), "did not see any", _story_animal(rng, f).pl, "that day")


def crowd(t: Teller, f: Facts) -> str:
    """Irregular plurals in use: children, geese, mice, sheep, men."""
    rng = t.rng
    t.last_subject = None
    local = [a for a in PLACE_ANIMALS.get(f.place.sg, ())
             if NOUN_BY_SG[a].irregular_plural or NOUN_BY_SG[a].invariant]
    noun = NOUN_BY_SG[choice(rng, local + list(CROWDS))]
    doing = choice(rng, ("played", "ran around", "looked at them", "were very busy", "were happy"))
    return sentence(choice(rng, ("The", "Some", "Many")), noun.pl, _loc(f), doing)


def sound(t: Teller, f: Facts) -> str:
    rng = t.rng
    t.last_subject = None
    loud = [a for a in (PLACE_ANIMALS.get(f.place.sg) or ()) if ANIMAL_INFO[a].sound] or ["dog"]
    animal = NOUN_BY_SG[choice(rng, loud)]
    number = number_of(rng)
    det = "a" if number == SG else choice(rng, ("the", "some", "two"))
    return sentence(noun_phrase(animal, number, det=det), VERB[ANIMAL_INFO[animal.sg].sound].past, _loc(f))


@dataclass(frozen=True)
class Detail:
    name: str
    render: Callable[[Teller, Facts], str]
    hooks: tuple[str, ...]
    weight: float


DETAILS: tuple[Detail, ...] = (
    Detail("fact", fact, ("intro", "place"), 0.45),
    Detail("this_these", this_these, ("place",), 0.08),
    Detail("habit", habit, ("intro",), 0.08),
    Detail("dislike", dislike, ("intro",), 0.04),
    Detail("there", there, ("place",), 0.08),
    Detail("pp_subject", pp_subject, ("place",), 0.10),
    Detail("reflexive", reflexive, ("intro", "place"), 0.09),
    Detail("some_any", some_any, ("place",), 0.07),
    Detail("crowd", crowd, ("place",), 0.05),
    Detail("sound", sound, ("place",), 0.03),
    Detail("activity_at_home", activities.activity_at_home, ("intro",), 0.12),
    Detail("activity_out", activities.activity_out, ("place",), 0.10),
    Detail("describe_animal", activities.describe_animal, ("place",), 0.04),
    Detail("meal", activities.meal, ("place",), 0.04),
    Detail("meet_someone", activities.meet_someone, ("place",), 0.03),
    Detail("sky", activities.sky, ("intro", "place"), 0.03),
)


def add_detail(t: Teller, f: Facts, hook: str) -> str:
    """One detail sentence that fits at `hook`, drawn by weight."""
    fitting = [d for d in DETAILS if hook in d.hooks]
    total = sum(d.weight for d in fitting)
    pick = t.rng.random() * total
    for d in fitting:
        pick -= d.weight
        if pick < 0:
            return d.render(t, f)
    return fitting[-1].render(t, f)
