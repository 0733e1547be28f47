"""Everyday actions and descriptions that spread the whole lexicon over the text.

The plots use a core vocabulary over and over. These detail sentences use the rest
of the lexicon (every verb with a sensible object, body parts, foods, people,
indoor places, the sky), drawn with rank-frequency (Zipf-like) weights over a fixed
order of the words. So, as in real text, a few of them are frequent and many are
rare, and the lexical benchmark's frequency bands (1-5, 6-20, 21-100, >100) are
all populated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from slmscale.world.characters import Teller
from slmscale.world.endings import Facts
from slmscale.world.grammar import PL, SG, choice, noun_phrase, one_of, sentence, zipf_choice
from slmscale.world.lexicon import (ADJ_BY_KIND, NOUN_BY_SG, PLACE_ANIMALS, PLACE_LOC, VERB, VERBS, Verb,
                                    nouns_of, objects_for)


def _rarity_order(items: Sequence, key) -> tuple:
    """A fixed order unrelated to meaning or spelling (an MD5 of the word), for Zipf ranks."""
    return tuple(sorted(items, key=lambda item: hashlib.md5(key(item).encode()).hexdigest()))


ACTIVITY_VERBS: tuple[Verb, ...] = _rarity_order(
    [v for v in VERBS if v.objects and v.base not in ("thank", "pat", "lose", "break")
     and objects_for(v.base)], lambda v: v.base)
# What a child does at home; the rest (buy, plant, ride, chase, ...) happens out.
HOME_VERBS: tuple[Verb, ...] = tuple(v for v in ACTIVITY_VERBS if v.base in (
    "read", "draw", "paint", "wash", "clean", "cook", "bake", "eat", "drink", "build", "make", "fix", "open",
    "fill", "write", "sing", "share", "hide", "hug", "lift", "shake", "blow", "hold", "find", "drop", "choose",
    "wear", "love", "like", "want", "need", "keep", "carry", "grab", "take", "bite", "smell", "tickle", "touch",
    "forget", "count", "roll", "pull", "kick"))
# Intransitive actions a child does anywhere; how long or where comes after.
IDLE_VERBS: tuple[Verb, ...] = _rarity_order(
    [VERB[b] for b in ("laugh", "cry", "smile", "giggle", "yawn", "dance", "shout", "wait", "wander", "sneeze",
                       "shiver", "nod", "frown", "rest", "nap", "jump", "skip", "hop", "splash", "listen", "crawl",
                       "sing", "play", "sit", "stand", "arrive", "walk", "climb", "sleep", "swim")], lambda v: v.base)
IDLE_TAILS = ("for a while", "a little", "all morning", "again and again", "with a big smile")
HOME_SPOTS = ("on the sofa", "on the rug", "near the window", "by the door", "under the table", "on the step",
              "near the wall", "in front of the mirror", "on the bed", "on the chair")
PAIRED_BODY = ("hand", "foot", "ear", "eye", "leg", "arm", "tooth")
ADJ_FOR_KIND = {
    "toy": _rarity_order(ADJ_BY_KIND["look"] + ADJ_BY_KIND["color"] + ADJ_BY_KIND["size"], str),
    "food": _rarity_order(ADJ_BY_KIND["taste"] + ("big", "little", "round", "hard", "soft"), str),
    "animal": _rarity_order(ADJ_BY_KIND["size"] + ("fluffy", "fuzzy", "funny", "brown", "white", "black",
                                                   "gray", "striped", "friendly", "shy"), str),
}
PEOPLE = _rarity_order([NOUN_BY_SG[w] for w in ("farmer", "baker", "doctor", "teacher", "neighbor", "king",
                                                "queen", "man", "woman", "baby")], lambda n: n.sg)
FOODS = _rarity_order(nouns_of("food"), lambda n: n.sg)
DRINKS = _rarity_order(nouns_of("drink"), lambda n: n.sg)
FLIERS = ("bird", "duck", "owl", "goose", "hen", "parrot", "chick", "bee", "butterfly")
BODY_LOOKS = {
    "tail": ("long", "short", "fluffy", "striped"), "ear": ("big", "long", "soft", "little"),
    "eye": ("big", "bright", "dark", "little"), "nose": ("pink", "little", "black", "wet"),
    "paw": ("soft", "little", "big"), "leg": ("long", "short", "strong"), "wing": ("white", "big", "gray", "pretty"),
    "head": ("big", "little", "round"),
}


def _where(t: Teller, f: Facts, home: bool) -> str:
    if home:
        return choice(t.rng, ("at home", "at home", "in the kitchen", "in the bedroom"))
    return f"{PLACE_LOC[f.place.sg]} the {f.place.sg}"


def _object_phrase(t: Teller, f: Facts, verb: Verb) -> str:
    rng = t.rng
    noun = zipf_choice(rng, _rarity_order(objects_for(verb.base), lambda n: n.sg), 0.7)
    if noun.kind == "body":
        number = PL if noun.sg in PAIRED_BODY else SG
        return noun_phrase(noun, number, det=f.hero.poss)
    if noun.kind in ("person", "place"):
        return noun_phrase(noun, SG, det="the")
    if noun.mass:
        return noun_phrase(noun, SG, det=choice(rng, ("some", "the")))
    adjs = ADJ_FOR_KIND.get(noun.kind)
    adj = zipf_choice(rng, adjs, 0.7) if adjs and rng.random() < 0.5 else None
    if verb.base in ("count", "collect", "pick") or rng.random() < 0.25:
        return noun_phrase(noun, PL, det=choice(rng, ("some", "the", "many")), adj=adj)
    return noun_phrase(noun, SG, det=choice(rng, ("a", "the")), adj=adj)


def _activity(t: Teller, f: Facts, home: bool) -> str:
    rng = t.rng
    if rng.random() < 0.7:
        verb = zipf_choice(rng, HOME_VERBS if home else ACTIVITY_VERBS, 0.8)
        tail = _where(t, f, home) if rng.random() < 0.5 else ""
        # Sometimes negated: do-support with every verb, not only "did not find".
        done = verb.past if rng.random() < 0.8 else f"did not {verb.base}"
        return sentence(t.subj(f.hero), done, _object_phrase(t, f, verb), tail)
    verb = zipf_choice(rng, IDLE_VERBS, 0.8)
    if rng.random() < 0.5:
        tail = choice(rng, IDLE_TAILS)
    else:
        tail = choice(rng, HOME_SPOTS) if home else _where(t, f, home)
    return sentence(t.subj(f.hero), verb.past, tail)


def activity_at_home(t: Teller, f: Facts) -> str:
    return _activity(t, f, home=True)


def activity_out(t: Teller, f: Facts) -> str:
    return _activity(t, f, home=False)


def describe_animal(t: Teller, f: Facts) -> str:
    rng = t.rng
    animal = f.animal
    if animal is None:
        animal = NOUN_BY_SG[choice(rng, PLACE_ANIMALS.get(f.place.sg, ("dog", "cat", "bird")))]
    t.last_subject = None
    part = "wing" if animal.sg in FLIERS and rng.random() < 0.6 else choice(rng, ("tail", "ear", "eye", "nose",
                                                                                  "paw", "leg", "head"))
    if rng.random() < 0.3:
        return sentence("The", animal.sg, "was very", choice(rng, ("slow", "fast", "huge", "small", "quiet")))
    body = NOUN_BY_SG[part]
    look = choice(rng, BODY_LOOKS[part])
    one = part in ("tail", "nose", "head")
    thing = noun_phrase(body, SG, det="a", adj=look) if one else noun_phrase(body, PL, "", look)
    return sentence("The", animal.sg, "had", thing)


def meal(t: Teller, f: Facts) -> str:
    rng = t.rng
    food = zipf_choice(rng, FOODS)
    food_np = noun_phrase(food, SG if food.mass else PL, det="some")
    if rng.random() < 0.5:
        drink = zipf_choice(rng, DRINKS)
        return sentence(t.together(), "ate", food_np, "and drank some", drink.sg)
    return sentence(t.together(), "ate", food_np, _where(t, f, home=False))


def meet_someone(t: Teller, f: Facts) -> str:
    rng = t.rng
    person = zipf_choice(rng, PEOPLE)
    kind = choice(rng, ("kind", "friendly", "old", "busy", "cheerful", "tall"))
    t.last_subject = None
    if rng.random() < 0.5:
        return sentence("They met", noun_phrase(person, SG, "a", kind), _where(t, f, home=False))
    return sentence(noun_phrase(person, SG, "a", kind), "waved at them and smiled")


def sky(t: Teller, f: Facts) -> str:
    rng = t.rng
    t.last_subject = None
    return one_of(
        rng,
        lambda: sentence("The sun was", choice(rng, ("warm", "bright")), "that day"),
        lambda: sentence("There was a", choice(rng, ("big", "pretty", "bright")), "rainbow in the sky"),
        lambda: sentence("A", choice(rng, ("big", "gray", "white", "fluffy")), "cloud floated over the",
                         f.place.sg),
        lambda: sentence("The wind was", choice(rng, ("cold", "warm", "soft", "strong"))),
        lambda: sentence("The flowers", _where(t, f, home=False), "grew", choice(rng, ("tall", "big", "fast"))))
