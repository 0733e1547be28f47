"""BLiMP-style minimal pairs over the world's lexicon and grammar (the syntax benchmark).

Nine phenomena (`type`, BLiMP names), two or three paradigms each (`subtype`).
Every pair differs in one or two words (three for "did not see any" / "saw any").
Each paradigm has two `form`s (the two values of the contrast it tests:
singular/plural, masculine/feminine, past/present, subject/object) in exactly
equal numbers, because scoring by mean NLL favours the longer member of a pair
and only a balanced set exposes that bias (docs/DESIGN.md §5.4). `longer`
records which member has more letters. Every word of a positive occurs in the
training text (candidates using a word it lacks are drawn again), so a pair tests
the construction and not an unseen word.

Pairs are held out from the training text: a candidate whose positive or
negative sentence is a sentence of text.jsonl (see grammar.heldout_keys) is
rejected and drawn again, as is a repeat within its paradigm.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from slmscale.log import get_logger
from slmscale.world.details import MOVE_PP, PP_NOUNS, PP_PREPS, PREDICATE_FEELINGS
from slmscale.world.grammar import PL, SG, be, choice, noun_form, noun_phrase, normalize, sentence
from slmscale.world.lexicon import (ADJ_BY_KIND, ANIMAL_INFO, NAMES, NOUN_BY_SG, OBJECT_REQUIRED,
                                    PLACE_ANIMALS, PLACE_LOC, STRICT_INTRANSITIVE, VERB, VERBS, Noun, article,
                                    nouns_of, objects_for, plural, regularized_past)
from slmscale.world.plots import TOY_PLACES

log = get_logger(__name__)
Pair = tuple[str, str]
ANIMALS = tuple(n for n in nouns_of("animal") if not n.invariant)
TOYS = tuple(n for n in nouns_of("toy", countable=True) if "big" not in n.tags and not n.invariant)
FOODS = tuple(n for n in nouns_of("food", countable=True))
THINGS = ANIMALS + TOYS
ANIMAL_ADJECTIVES = ("big", "little", "small", "tiny", "young", "old", "brown", "black", "white", "gray",
                     "funny", "fluffy")
TOY_ADJECTIVES = ADJ_BY_KIND["color"] + ("big", "little", "small", "tiny", "new", "old", "shiny", "pretty")
TIMES = ("that day", "in the morning", "after the walk", "all day", "at night", "that evening")
IRREGULAR_PLURALS = tuple(NOUN_BY_SG[w] for w in ("mouse", "child", "man", "woman", "goose", "wolf", "sheep",
                                                  "deer"))
# Where an intransitive irregular verb goes: "ran to the park", "sat on the bench".
INTRANSITIVE_TAILS: dict[str, tuple[str, ...]] = {
    "sit": ("on the bench", "on the rock", "on the step", "under the tree"),
    "stand": ("near the fence", "under the tree", "by the door"),
    "fall": ("off the bench", "off the swing", "in the mud", "off the slide"),
    "sleep": ("under the tree", "in the barn", "on the sofa", "in the sun"),
}
_MOTION_IRREGULAR = ("run", "go", "come", "swim")
IRREGULAR_PAST = tuple(
    v for v in VERBS
    if v.irregular and v.base not in ("see", "sing", "blow", "fly", "wake", "grow", "count")
    and (v.objects or v.base in INTRANSITIVE_TAILS or v.base in _MOTION_IRREGULAR))
# Reflexive frames used by the training text (details.reflexive), with more places to be.
REFLEXIVE_FRAMES: dict[str, tuple[str, ...]] = {
    "saw": ("in a puddle", "in the water", "in the mirror", "in the window", "in the pond", "in the river"),
    "looked at": ("in the water", "in the mirror", "in the window", "in a big puddle", "in the lake"),
    "washed": ("in the river", "in the pond", "after the walk", "after the game", "in the lake"),
    "dried": ("with a soft towel", "with a big towel", "after the walk", "in the sun", "with a red towel"),
}
PERSON_NOUNS = {"male": ("boy", "man"), "female": ("girl", "woman")}
ROYALS = {"male": "king", "female": "queen"}
FEARED = ("the rain", "the snow", "the mud", "the wind", "the dark", "loud noises")
LIKE_VERBS = tuple(VERB[v] for v in ("like", "love", "eat", "want", "need"))


def _adj(rng: random.Random, noun: Noun) -> str | None:
    """An adjective that suits the noun (no pink zebras), or none."""
    return choice(rng, (None,) + (ANIMAL_ADJECTIVES if noun.kind == "animal" else TOY_ADJECTIVES))


def _loc(rng: random.Random, noun: Noun | None = None) -> str:
    """'in the park'; an animal is somewhere it lives, a child's thing somewhere a child plays."""
    homes = [p for p, animals in PLACE_ANIMALS.items() if noun is not None and noun.sg in animals]
    place = choice(rng, homes or TOY_PLACES)
    return f"{PLACE_LOC[place]} the {place}"


def _name(rng: random.Random, gender: str | None = None) -> str:
    return choice(rng, [n.name for n in NAMES if gender is None or n.gender == gender])


def _person(rng: random.Random, number: str) -> str:
    """A person subject: 'Mia', 'the king', 'Tom and Ben', 'the children', 'the girls'."""
    if number == SG:
        if rng.random() < 0.7:
            return _name(rng)
        gender = choice(rng, ("male", "female"))
        return "the " + choice(rng, PERSON_NOUNS[gender] + (ROYALS[gender],))
    if rng.random() < 0.6:
        first, second = _name(rng), _name(rng)
        if first != second:
            return f"{first} and {second}"
    return choice(rng, ("the children", "the boys", "the girls", "the men", "the women"))


def _animal(rng: random.Random, number: str, det: str = "the") -> tuple[str, Noun]:
    noun = choice(rng, ANIMALS)
    return noun_phrase(noun, number, det, _adj(rng, noun)), noun


def _food(rng: random.Random, animal: Noun) -> str:
    eats = ANIMAL_INFO[animal.sg].eats
    food = NOUN_BY_SG[choice(rng, eats)] if eats and rng.random() < 0.7 else choice(rng, FOODS)
    return food.sg if food.mass else food.pl


def _object_for(rng: random.Random, verb_base: str) -> Noun:
    return choice(rng, objects_for(verb_base))


# subject_verb_agreement -------------------------------------------------------------------

def was_were(rng: random.Random, form: str) -> Pair:
    other = PL if form == SG else SG
    subj, _ = _animal(rng, form, choice(rng, ("the", "my")))
    rest = ["very" if rng.random() < 0.5 else "", choice(rng, PREDICATE_FEELINGS), choice(rng, TIMES)]
    return sentence(subj, be("past", form), *rest), sentence(subj, be("past", other), *rest)


def present_tense(rng: random.Random, form: str) -> Pair:
    noun = choice(rng, ANIMALS)
    subj = noun_phrase(noun, form, choice(rng, ("the", "my", "")) if form == PL else choice(rng, ("the", "my")),
                       _adj(rng, noun))
    if rng.random() < 0.5:
        v, rest = choice(rng, LIKE_VERBS), _food(rng, noun)
    else:
        move = choice(rng, ANIMAL_INFO[noun.sg].moves)
        v, rest = VERB[move], choice(rng, MOVE_PP[move])
    good, bad = (v.s3, v.base) if form == SG else (v.base, v.s3)
    return sentence(subj, good, rest), sentence(subj, bad, rest)


def across_prepositional_phrase(rng: random.Random, form: str) -> Pair:
    noun, other = choice(rng, ANIMALS), PL if form == SG else SG
    head = noun_phrase(noun, form, "the")
    pp = f"{choice(rng, PP_PREPS)} {noun_phrase(choice(rng, PP_NOUNS), other, 'the')}"
    tense = choice(rng, ("past", "present"))
    feeling = choice(rng, PREDICATE_FEELINGS)
    return sentence(head, pp, be(tense, form), feeling), sentence(head, pp, be(tense, other), feeling)


# determiner_noun_agreement ----------------------------------------------------------------

def this_these(rng: random.Random, form: str) -> Pair:
    noun = choice(rng, THINGS)
    adj = _adj(rng, noun)
    head = f"{adj} {noun_form(noun, form)}" if adj else noun_form(noun, form)
    good, bad = ("this", "these") if form == SG else ("these", "this")
    if rng.random() < 0.5:
        rest = [be("present", form), "very", choice(rng, ("pretty", "nice", "funny", "soft", "big", "old"))]
        return sentence(good, head, *rest), sentence(bad, head, *rest)
    lead = choice(rng, ("I like", "I want", "Look at", "We can keep"))
    return sentence(lead, good, head), sentence(lead, bad, head)


def a_many(rng: random.Random, form: str) -> Pair:
    noun = choice(rng, THINGS)
    adj = _adj(rng, noun)
    good_head = " ".join(filter(None, (adj, noun_form(noun, form))))
    bad_head = " ".join(filter(None, (adj, noun_form(noun, PL if form == SG else SG))))
    det = article(good_head) if form == SG else "many"
    lead = [_name(rng), "saw" if noun.kind == "animal" else choice(rng, ("found", "had", "saw"))]
    loc = _loc(rng, noun)
    return sentence(*lead, det, good_head, loc), sentence(*lead, det, bad_head, loc)


# anaphor_agreement ------------------------------------------------------------------------

def _reflexive_frame(rng: random.Random) -> tuple[str, str]:
    verb = choice(rng, tuple(REFLEXIVE_FRAMES))
    return verb, choice(rng, REFLEXIVE_FRAMES[verb])


def anaphor_gender(rng: random.Random, form: str) -> Pair:
    gender, other = ("male", "female") if form == "masculine" else ("female", "male")
    subj = _name(rng, gender) if rng.random() < 0.6 else "the " + choice(rng, PERSON_NOUNS[gender]
                                                                         + (ROYALS[gender],))
    verb, tail = _reflexive_frame(rng)
    refl = {"male": "himself", "female": "herself"}
    return sentence(subj, verb, refl[gender], tail), sentence(subj, verb, refl[other], tail)


def anaphor_number(rng: random.Random, form: str) -> Pair:
    if rng.random() < 0.5:
        gender = choice(rng, ("male", "female"))
        noun = NOUN_BY_SG[choice(rng, PERSON_NOUNS[gender])]
        singular = "himself" if gender == "male" else "herself"
        verb, tail = _reflexive_frame(rng)
    else:
        noun, singular = choice(rng, ANIMALS), "itself"
        verb, tail = choice(rng, ("washed", "licked", "cleaned")), _loc(rng, noun)
    subj = noun_phrase(noun, form, "the")
    good, bad = (singular, "themselves") if form == SG else ("themselves", singular)
    return sentence(subj, verb, good, tail), sentence(subj, verb, bad, tail)


# argument_structure -----------------------------------------------------------------------

def drop_object(rng: random.Random, form: str) -> Pair:
    # The verb ends the negative: a place after it could read as a particle ("took in the yard").
    verb = VERB[choice(rng, OBJECT_REQUIRED)]
    noun = _object_for(rng, verb.base)
    obj = noun_phrase(noun, SG, "the", _adj(rng, noun) if noun.kind in ("toy", "animal") else None)
    lead = [choice(rng, ("", "", "Then", "At last,", "Soon,")), _person(rng, form)]
    return sentence(*lead, verb.past, obj), sentence(*lead, verb.past)


def intransitive_with_object(rng: random.Random, form: str) -> Pair:
    verb = VERB[choice(rng, STRICT_INTRANSITIVE)]
    obj = noun_phrase(choice(rng, TOYS), SG, "the")
    subj, loc = _person(rng, form), _loc(rng)
    tail = f"to the {choice(rng, TOY_PLACES)}" if verb.base in ("go", "come") else loc
    return sentence(subj, verb.past, tail), sentence(subj, verb.past, obj, tail)


# word_order -------------------------------------------------------------------------------

def svo_sov(rng: random.Random, form: str) -> Pair:
    if rng.random() < 0.5:
        subj, animal = _animal(rng, form)
        verb, obj = choice(rng, ("chased", "saw", "followed", "watched", "heard")), choice(rng, ANIMALS)
        loc = _loc(rng, animal)
    else:
        base = choice(rng, ("find", "take", "hold", "carry", "grab", "bring", "keep", "want", "feed", "pat"))
        subj, verb, obj, loc = _person(rng, form), VERB[base].past, _object_for(rng, base), _loc(rng)
    obj_np = noun_phrase(obj, SG, "the")
    return sentence(subj, verb, obj_np, loc), sentence(subj, obj_np, verb, loc)


def adjective_noun(rng: random.Random, form: str) -> Pair:
    noun = choice(rng, ANIMALS)
    adj = choice(rng, ANIMAL_ADJECTIVES)
    move = choice(rng, ANIMAL_INFO[noun.sg].moves)
    verb = VERB[move].past
    rest = choice(rng, MOVE_PP[move])
    head = noun_form(noun, form)
    return sentence("the", adj, head, verb, rest), sentence("the", head, adj, verb, rest)


# irregular_forms --------------------------------------------------------------------------

def irregular_past(rng: random.Random, form: str) -> Pair:
    verb = choice(rng, IRREGULAR_PAST)
    subj = _person(rng, form)
    if verb.base in _MOTION_IRREGULAR:
        tail = ["to the", choice(rng, TOY_PLACES)]
    elif verb.base in INTRANSITIVE_TAILS:
        tail = [choice(rng, INTRANSITIVE_TAILS[verb.base])]
    else:
        tail = [noun_phrase(_object_for(rng, verb.base), SG, "the"), _loc(rng)]
    return sentence(subj, verb.past, *tail), sentence(subj, regularized_past(verb.base), *tail)


def irregular_plural(rng: random.Random, form: str) -> Pair:
    noun = choice(rng, IRREGULAR_PLURALS)
    wrong = plural(noun.sg)
    loc = _loc(rng, noun)
    if form == "subject":
        det = choice(rng, ("The", "Many", "Some"))
        verb = choice(rng, ("played", "ran around", "were happy", "were hungry", "looked at the sky", "slept"))
        return sentence(det, noun.pl, loc, verb), sentence(det, wrong, loc, verb)
    lead = [_name(rng), choice(rng, ("saw", "met", "watched", "counted")), choice(rng, ("two", "three", "many",
                                                                                      "some", "the"))]
    return sentence(*lead, noun.pl, loc), sentence(*lead, wrong, loc)


# quantifiers ------------------------------------------------------------------------------

def every_many(rng: random.Random, form: str) -> Pair:
    noun, feeling = choice(rng, ANIMALS), choice(rng, PREDICATE_FEELINGS)
    loc = _loc(rng, noun)
    if form == SG:
        return sentence("every", noun.sg, loc, "was", feeling), sentence("every", noun.pl, loc, "were", feeling)
    return sentence("many", noun.pl, loc, "were", feeling), sentence("many", noun.sg, loc, "was", feeling)


def existential_there(rng: random.Random, form: str) -> Pair:
    noun = choice(rng, THINGS)
    loc, adj = _loc(rng, noun), _adj(rng, noun)
    if form == SG:
        phrase = f"{adj} {noun.sg}" if adj else noun.sg
        return (sentence("there was", article(phrase), phrase, loc), sentence("there was every", phrase, loc))
    phrase = f"{adj} {noun.pl}" if adj else noun.pl
    det = choice(rng, ("many", "some", "two", "three"))
    return sentence("there were", det, phrase, loc), sentence("there were all", phrase, loc)


# negation ---------------------------------------------------------------------------------

def _negated_past(rng: random.Random) -> tuple[str, object, str]:
    base = choice(rng, ("find", "see", "take", "eat", "catch", "bring", "hold", "want", "like", "feed", "chase"))
    obj = noun_phrase(_object_for(rng, base), SG, "the")
    return base, VERB[base], f"{obj} {_loc(rng)}"


def _negated_present(rng: random.Random) -> tuple[str, str, str]:
    number = choice(rng, (SG, PL))
    noun = choice(rng, ANIMALS)
    subj = noun_phrase(noun, number, choice(rng, ("the", "my")))
    return subj, ("does" if number == SG else "do"), choice(rng, FEARED)


def do_support_form(rng: random.Random, form: str) -> Pair:
    if form == "past":
        base, verb, rest = _negated_past(rng)
        subj = _person(rng, choice(rng, (SG, PL)))
        return sentence(subj, "did not", base, rest), sentence(subj, "did not", verb.past, rest)
    subj, aux, thing = _negated_present(rng)
    return sentence(subj, aux, "not like", thing), sentence(subj, aux, "not likes", thing)


def not_position(rng: random.Random, form: str) -> Pair:
    if form == "past":
        base, _, rest = _negated_past(rng)
        subj = _person(rng, choice(rng, (SG, PL)))
        return sentence(subj, "did not", base, rest), sentence(subj, "not did", base, rest)
    subj, aux, thing = _negated_present(rng)
    return sentence(subj, aux, "not like", thing), sentence(subj, "not", aux, "like", thing)


# npi_licensing ----------------------------------------------------------------------------

def _npi_frame(rng: random.Random, form: str) -> tuple[str, object, str]:
    base = choice(rng, ("find", "see"))
    thing = choice(rng, ANIMALS if base == "see" else TOYS + FOODS)
    return _person(rng, form), VERB[base], f"{thing.pl} {_loc(rng, thing)}"


def negation_licensor(rng: random.Random, form: str) -> Pair:
    subj, verb, rest = _npi_frame(rng, form)
    return sentence(subj, "did not", verb.base, "any", rest), sentence(subj, verb.past, "any", rest)


def some_any(rng: random.Random, form: str) -> Pair:
    subj, verb, rest = _npi_frame(rng, form)
    return sentence(subj, verb.past, "some", rest), sentence(subj, verb.past, "any", rest)


@dataclass(frozen=True)
class Paradigm:
    type: str
    subtype: str
    build: Callable[[random.Random, str], Pair]
    forms: tuple[str, str]
    """The two values of the paradigm's contrast; pairs alternate between them (50/50)."""
    evidence: str
    """A regular expression for training sentences that use the construction (world.json counts them)."""


_SG_PL = (SG, PL)
PARADIGMS: tuple[Paradigm, ...] = (
    Paradigm("subject_verb_agreement", "was_were", was_were, _SG_PL, r"\b[a-z]+s were\b|\b[a-z]+ was\b"),
    Paradigm("subject_verb_agreement", "present_tense", present_tense, _SG_PL,
             r"\b[a-z]+ (likes|loves|eats|wants|needs|swims|flies|hops|runs|digs|climbs|sleeps|hides)\b"),
    Paradigm("subject_verb_agreement", "across_prepositional_phrase", across_prepositional_phrase, _SG_PL,
             r"\bthe [a-z]+ (near|by|under|behind|next to) the [a-z]+ (was|were|is|are)\b"),
    Paradigm("determiner_noun_agreement", "this_these", this_these, _SG_PL, r"\b(this|these) [a-z]+\b"),
    Paradigm("determiner_noun_agreement", "a_many", a_many, _SG_PL, r"\bmany [a-z]+\b"),
    Paradigm("anaphor_agreement", "gender", anaphor_gender, ("masculine", "feminine"), r"\b(himself|herself)\b"),
    Paradigm("anaphor_agreement", "number", anaphor_number, _SG_PL, r"\b(themselves|itself)\b"),
    Paradigm("argument_structure", "drop_object", drop_object, _SG_PL,
             r"\b(found|took|held|carried|grabbed|brought|kept|liked|wanted|needed|fixed) the\b"),
    Paradigm("argument_structure", "intransitive_with_object", intransitive_with_object, _SG_PL,
             r"\b(slept|laughed|cried|smiled|went|came)\b"),
    Paradigm("word_order", "svo_sov", svo_sov, _SG_PL, r"\b(saw|found|took|fed|chased|followed) the [a-z]+\b"),
    Paradigm("word_order", "adjective_noun", adjective_noun, _SG_PL, r"\b(a|the) (big|little|red|blue) [a-z]+\b"),
    Paradigm("irregular_forms", "irregular_past", irregular_past, _SG_PL, r"\b(ran|ate|found|took|went|made|fell)\b"),
    Paradigm("irregular_forms", "irregular_plural", irregular_plural, ("subject", "object"),
             r"\b(mice|children|men|women|geese|wolves|sheep|deer)\b"),
    Paradigm("quantifiers", "every_many", every_many, _SG_PL, r"\bevery (?!day\b|morning\b|evening\b)[a-z]+\b"),
    Paradigm("quantifiers", "existential_there", existential_there, _SG_PL, r"\bthere (was|were|is|are)\b"),
    Paradigm("negation", "do_support_form", do_support_form, ("past", "present"), r"\b(did|does|do) not [a-z]+\b"),
    Paradigm("negation", "not_position", not_position, ("past", "present"), r"\b(did|does|do) not\b"),
    Paradigm("npi_licensing", "negation_licensor", negation_licensor, _SG_PL, r"\bnot [a-z]+ any\b|\bnot have any\b"),
    Paradigm("npi_licensing", "some_any", some_any, _SG_PL, r"\bsome [a-z]+\b"),
)


def syntax_pairs(rng: random.Random, per_subtype: int, heldout: set[str], vocabulary: set[str] | None = None,
                 max_tries: int = 300) -> list[dict[str, object]]:
    """`per_subtype` pairs for every paradigm, alternating its two forms, none in the training text.

    `vocabulary` (the training text's words), when given, must hold every word of a positive;
    a text too small for that (a few dozen stories) lifts the rule for the paradigm, with a warning.
    """
    rows: list[dict[str, object]] = []
    for paradigm in PARADIGMS:
        seen: set[str] = set()
        known = vocabulary
        for index in range(per_subtype):
            form = paradigm.forms[index % 2]
            for attempt in range(2 * max_tries):
                if attempt == max_tries and known is not None:
                    log.warning("syntax %s/%s: the text is too small to use only its own words; "
                                "allowing other lexicon words", paradigm.type, paradigm.subtype)
                    known = None
                positive, negative = paradigm.build(rng, form)
                key_pos, key_neg = normalize(positive), normalize(negative)
                if key_pos in seen or key_pos in heldout or key_neg in heldout or key_pos == key_neg:
                    continue
                if known is not None and not set(key_pos.split()) <= known:
                    continue
                seen.add(key_pos)
                break
            else:
                raise RuntimeError(f"syntax {paradigm.type}/{paradigm.subtype}: no new held-out pair after "
                                   f"{max_tries} tries; ask for fewer pairs per subtype")
            longer = ("equal" if len(positive) == len(negative)
                      else "positive" if len(positive) > len(negative) else "negative")
            rows.append({"id": f"syntax-{paradigm.type}-{paradigm.subtype}-{index + 1:04d}",
                         "positive": positive, "negative": negative, "type": paradigm.type,
                         "subtype": paradigm.subtype, "form": form, "longer": longer})
    return rows
