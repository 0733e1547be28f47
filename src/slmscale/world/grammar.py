"""Sentence building blocks shared by the stories, the sentence records and the benchmark pairs.

Agreement lives here and nowhere else: a noun phrase knows its number, a verb
is conjugated for tense and the subject's number, and pronouns come from a
character's gender. Stories and minimal pairs are built from the same blocks,
so a construction the syntax benchmark tests is one the training text uses.
Also here: splitting a text back into sentences, and the normalized keys the
held-out check compares (a benchmark sentence may not appear in any text).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from slmscale.world.lexicon import Noun, Verb, article

T = TypeVar("T")

SG, PL = "singular", "plural"

# subject, object, possessive, reflexive
PRONOUNS: dict[str, tuple[str, str, str, str]] = {
    "male": ("he", "him", "his", "himself"),
    "female": ("she", "her", "her", "herself"),
    "group": ("they", "them", "their", "themselves"),
    "thing": ("it", "it", "its", "itself"),
}
OTHER_GENDER = {"male": "female", "female": "male"}



def choice(rng: random.Random, items: Sequence[T]) -> T:
    """`rng.choice` that names the empty pool instead of an IndexError deep in a story."""
    if not items:
        raise ValueError("choice from an empty pool")
    return items[rng.randrange(len(items))]


def one_of(rng: random.Random, *makers: Callable[[], T]) -> T:
    """Build just one of several alternatives; the others never run (they may move the teller's state)."""
    return makers[rng.randrange(len(makers))]()


@functools.lru_cache(maxsize=None)
def _zipf_cumulative(size: int, exponent: float) -> tuple[float, ...]:
    total, out = 0.0, []
    for rank in range(1, size + 1):
        total += rank ** -exponent
        out.append(total)
    return tuple(out)


def zipf_choice(rng: random.Random, items: Sequence[T], exponent: float = 1.0) -> T:
    """Rank-frequency choice: item k is drawn in proportion to 1/k, so a pool has common words and a rare tail."""
    return rng.choices(items, cum_weights=_zipf_cumulative(len(items), exponent))[0]


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def sentence(*parts: str, end: str = ".") -> str:
    """Join words into a sentence: single spaces, capital first letter, final punctuation."""
    text = " ".join(p for p in parts if p)
    text = re.sub(r"\s+([,.!?])", r"\1", text).strip()
    return capitalize(text) + end


def said(speaker: str, clause: str, end: str = ".") -> str:
    """Direct speech with the quote last, so sentence splitting stays simple."""
    return sentence(f'{speaker} said, "{capitalize(clause)}{end}"', end="")


def noun_form(noun: Noun, number: str) -> str:
    if number == PL:
        if noun.pl is None:
            raise ValueError(f"mass noun {noun.sg!r} has no plural")
        return noun.pl
    return noun.sg


def noun_phrase(noun: Noun, number: str = SG, det: str = "the", adj: str | None = None) -> str:
    """'the big dog', 'an old owl', 'many red balls', 'milk' (det '' = bare)."""
    head = noun_form(noun, number)
    words = f"{adj} {head}" if adj else head
    if det == "a":
        if noun.mass:
            return words
        return f"{article(words)} {words}"
    return f"{det} {words}" if det else words


def be(tense: str, number: str) -> str:
    """Third-person 'be': is/are/was/were."""
    if tense == "present":
        return "is" if number == SG else "are"
    return "was" if number == SG else "were"


def verb(v: Verb, tense: str, number: str = SG) -> str:
    if tense == "past":
        return v.past
    return v.s3 if number == SG else v.base


def do_not(v: Verb, tense: str, number: str = SG) -> str:
    """Negation with do-support: 'did not see', 'does not like', 'do not like'."""
    if tense == "past":
        aux = "did"
    else:
        aux = "does" if number == SG else "do"
    return f"{aux} not {v.base}"


def number_of(rng: random.Random) -> str:
    return SG if rng.random() < 0.5 else PL


_SENTENCE_END = re.compile(r'(?<=[.!?]")\s+|(?<=[.!?])\s+')


def split_sentences(text: str) -> list[str]:
    """Sentences of a story or record. Quotes hold one sentence and end their sentence."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def normalize(text: str) -> str:
    """Case, punctuation and spacing folded away: what 'the same sentence' means here."""
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


_QUOTED = re.compile(r'"([^"]+)"')
_REPORTED = re.compile(r"\b(?:said|knew|told \w+|thought) that (.+)$", re.IGNORECASE)


def heldout_keys(text_sentence: str) -> list[str]:
    """Every normalized sentence a training sentence contains: itself, a quote, a that-clause.

    `Dad said, "Ducks like bread."` also counts as the sentence "Ducks like bread.",
    so no benchmark sentence is heard verbatim inside speech either.
    """
    keys = [normalize(text_sentence)]
    keys += [normalize(q) for q in _QUOTED.findall(text_sentence)]
    reported = _REPORTED.search(text_sentence)
    if reported:
        keys.append(normalize(reported.group(1)))
    # A benchmark sentence must not be heard verbatim at the end of a longer one either
    # ("... and her friend Tim went to the park." holds "Tim went to the park."): every
    # word suffix of three or more words is a key too.
    suffixes = []
    for key in keys:
        tokens = key.split()
        suffixes += [" ".join(tokens[i:]) for i in range(1, len(tokens) - 2)]
    return [k for k in keys + suffixes if k]


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters and apostrophes), as the frequency counts see them."""
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())
