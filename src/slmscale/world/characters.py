"""Characters and the teller that refers to them with the right name or pronoun.

A character's pronouns come only from its gender, so they cannot drift within a
story. The teller decides between a name and a pronoun the way a simple story
does: a pronoun when the character was the last subject, its name otherwise,
and "her dad" the first time a helper appears, "Dad" after that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from slmscale.world.grammar import PRONOUNS, capitalize, choice
from slmscale.world.lexicon import NAMES

# Helper relations: (relation word, gender, takes its own name?). Parents are called by
# the relation ("Dad"); a friend or sibling has a name ("her friend Ben").
RELATIONS: tuple[tuple[str, str, bool], ...] = (
    ("mom", "female", False), ("dad", "male", False), ("grandma", "female", False),
    ("grandpa", "male", False), ("friend", "male", True), ("friend", "female", True),
    ("sister", "female", True), ("brother", "male", True),
)
HERO_ANIMALS = ("duck", "bunny", "fox", "bear", "cat", "dog", "frog", "mouse", "owl", "pig",
                "puppy", "kitten", "squirrel", "bird", "lamb", "turtle", "pony", "goat")
HERO_TRAITS = ("little", "kind", "brave", "shy", "curious", "friendly", "smart", "silly", "gentle",
               "clever", "happy", "quiet", "cheerful", "busy", "careful", "lucky")


@dataclass(frozen=True)
class Character:
    name: str
    """What the story calls it after the first mention: 'Mia', 'Dad', 'Ben'."""
    gender: str
    """'male', 'female' or 'group' (they)."""
    noun: str
    """What it is: 'girl', 'duck', or the helper relation 'mom', 'friend', 'sister'."""
    named_relation: bool = False
    """A helper introduced as 'her friend Ben' rather than 'her mom'."""

    @property
    def subj(self) -> str:
        return PRONOUNS[self.gender][0]

    @property
    def obj(self) -> str:
        return PRONOUNS[self.gender][1]

    @property
    def poss(self) -> str:
        return PRONOUNS[self.gender][2]

    @property
    def refl(self) -> str:
        return PRONOUNS[self.gender][3]

    def with_gender(self, gender: str) -> Character:
        return Character(self.name, gender, self.noun, self.named_relation)


def make_hero(rng: random.Random, gender: str | None = None, animal: bool | None = None) -> Character:
    names = [n for n in NAMES if gender is None or n.gender == gender]
    name = choice(rng, names)
    if animal is None:
        animal = rng.random() < 0.3
    noun = choice(rng, HERO_ANIMALS) if animal else ("boy" if name.gender == "male" else "girl")
    return Character(name.name, name.gender, noun)


def make_helper(rng: random.Random, hero: Character, gender: str | None = None) -> Character:
    relations = [r for r in RELATIONS if gender is None or r[1] == gender]
    relation, rel_gender, named = choice(rng, relations)
    if not named:
        return Character(capitalize(relation), rel_gender, relation)
    names = [n.name for n in NAMES if n.gender == rel_gender and n.name != hero.name]
    return Character(choice(rng, names), rel_gender, relation, named_relation=True)


class Teller:
    """Per-story memory of who was mentioned and who was the last subject."""

    def __init__(self, rng: random.Random, hero: Character, helper: Character):
        self.rng = rng
        self.hero = hero
        self.helper = helper
        self.introduced: set[str] = {hero.name}
        self.last_subject: Character | None = None

    def subj(self, who: Character, pronoun_rate: float = 0.7) -> str:
        """A subject reference (lower case; `sentence` capitalizes it)."""
        if who is self.helper and who.name not in self.introduced:
            text = self.first_mention(who)
        elif self.last_subject is who and self.rng.random() < pronoun_rate:
            text = who.subj
        else:
            text = who.name
        self.last_subject = who
        return text

    def name(self, who: Character) -> str:
        """The name, or 'her dad' at a helper's first mention; leaves the last subject alone."""
        if who is self.helper and who.name not in self.introduced:
            return self.first_mention(who)
        return who.name

    def first_mention(self, who: Character, owner: str | None = None) -> str:
        self.introduced.add(who.name)
        if owner is None:
            owner = self.hero.poss if self.last_subject is self.hero else f"{self.hero.name}'s"
        if who.named_relation:
            big = "big " if who.noun in ("sister", "brother") else ""
            return f"{owner} {big}{who.noun} {who.name}"
        return f"{owner} {who.noun}"

    def together(self) -> str:
        """'Mia and her dad' / 'Mia and Dad'; the pair becomes the subject 'they'."""
        helper = self.helper
        other = self.first_mention(helper, self.hero.poss) if helper.name not in self.introduced else helper.name
        text = f"{self.hero.name} and {other}"
        self.last_subject = None
        return text
