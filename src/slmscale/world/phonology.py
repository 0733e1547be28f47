"""ARPAbet syllables and Wuggy-style nonwords, for the lexical (sWUGGY-like) benchmark.

A word's phones (CMU dictionary, stress digits on vowels) are split into
syllables by the maximal-onset principle over the legal English onsets below;
each syllable is an onset, a nucleus and a coda. A nonword replaces one
sub-syllabic segment (two in words of three or more syllables) by a segment of
the same kind and the same number of phones seen in the same position in other
words (word-initial vs medial onset, final vs medial coda, nucleus with the same
stress), as Wuggy does (Keuleers & Brysbaert 2010). A candidate is kept only if
its stress-free phones are no pronunciation of any CMU dictionary word and
every pair of adjacent phones is common in English words.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())

# Onsets English allows at the start of a syllable (single consonants and clusters).
LEGAL_ONSETS: frozenset[tuple[str, ...]] = frozenset(
    [()]
    + [(c,) for c in "P B T D K G F V TH DH S Z SH HH CH JH M N L R W Y".split()]
    + [tuple(c.split()) for c in (
        "P R", "P L", "B R", "B L", "T R", "D R", "K R", "K L", "G R", "G L", "F R", "F L", "TH R", "SH R",
        "S P", "S T", "S K", "S M", "S N", "S L", "S W", "S P R", "S P L", "S T R", "S K R", "S K W",
        "T W", "D W", "K W", "G W", "TH W", "P Y", "B Y", "K Y", "F Y", "M Y", "HH Y", "V Y", "S K Y")])


def is_vowel(phone: str) -> bool:
    return phone.rstrip("012") in VOWELS


def strip_stress(phones: Iterable[str]) -> tuple[str, ...]:
    return tuple(p.rstrip("012") for p in phones)


@dataclass(frozen=True)
class Syllable:
    onset: tuple[str, ...]
    nucleus: str
    coda: tuple[str, ...]

    @property
    def phones(self) -> tuple[str, ...]:
        return self.onset + (self.nucleus,) + self.coda


def syllabify(phones: Iterable[str]) -> list[Syllable]:
    """Split ARPAbet phones into syllables (maximal legal onset between vowels)."""
    phones = tuple(phones)
    nuclei = [i for i, p in enumerate(phones) if is_vowel(p)]
    if not nuclei:
        raise ValueError(f"no vowel in {' '.join(phones)!r}")
    onsets = [phones[:nuclei[0]]]
    codas = []
    for left, right in zip(nuclei, nuclei[1:]):
        cluster = phones[left + 1:right]
        split = next(k for k in range(len(cluster) + 1) if cluster[k:] in LEGAL_ONSETS)
        codas.append(cluster[:split])
        onsets.append(cluster[split:])
    codas.append(phones[nuclei[-1] + 1:])
    return [Syllable(o, phones[n], c) for o, n, c in zip(onsets, nuclei, codas)]


def segment_keys(sylls: list[Syllable]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(kind, position, phones) for every segment: the slots a nonword may refill."""
    keys = []
    last = len(sylls) - 1
    for i, s in enumerate(sylls):
        keys.append(("onset", "initial" if i == 0 else "medial", s.onset))
        keys.append(("nucleus", s.nucleus[-1] if s.nucleus[-1].isdigit() else "", (s.nucleus,)))
        keys.append(("coda", "final" if i == last else "medial", s.coda))
    return keys


SegmentIndex = dict[tuple[str, str, int], tuple[list[tuple[str, ...]], list[int]]]


def segment_index(pronunciations: Iterable[Iterable[str]]) -> SegmentIndex:
    """Segments seen in a set of words, by (kind, position, length), with how often each occurs."""
    counts: Counter = Counter()
    for phones in pronunciations:
        counts.update(segment_keys(syllabify(phones)))
    index: dict[tuple[str, str, int], tuple[list[tuple[str, ...]], list[int]]] = {}
    for (kind, position, seg), n in sorted(counts.items()):
        segs, weights = index.setdefault((kind, position, len(seg)), ([], []))
        segs.append(seg)
        weights.append(n)
    return index


def phone_bigrams(phones: Iterable[str]) -> set[tuple[str, str]]:
    """Stress-free phone pairs of a word, with '#' marking its edges."""
    bare = ("#",) + strip_stress(phones) + ("#",)
    return set(zip(bare, bare[1:]))


def common_bigrams(pronunciations: Iterable[Iterable[str]], min_count: int = 50) -> frozenset[tuple[str, str]]:
    """Phone pairs English words use at least `min_count` times: a nonword may use no other
    (so no 'EY NG', seen only in a few names, sneaks in where a new segment meets its neighbour)."""
    counts: Counter = Counter()
    for phones in pronunciations:
        bare = ("#",) + strip_stress(phones) + ("#",)
        counts.update(zip(bare, bare[1:]))
    return frozenset(b for b, n in counts.items() if n >= min_count)


def make_nonword(rng: random.Random, phones: tuple[str, ...], index: SegmentIndex,
                 real: set[tuple[str, ...]], taken: set[tuple[str, ...]],
                 legal_bigrams: frozenset[tuple[str, str]] | None = None,
                 tries: int = 60) -> tuple[str, ...] | None:
    """A nonword as long (in phones) as `phones`, differing in one or two segments; None if none found."""
    sylls = syllabify(phones)
    keys = segment_keys(sylls)
    changes = 1 if len(sylls) <= 2 else 2
    usable = [i for i, (kind, position, seg) in enumerate(keys)
              if seg and len(index.get((kind, position, len(seg)), ((),))[0]) > 1]
    if len(usable) < changes:
        return None
    for _ in range(tries):
        new = [seg for _, _, seg in keys]
        for i in rng.sample(usable, changes):
            kind, position, seg = keys[i]
            segs, weights = index[(kind, position, len(seg))]
            while new[i] == seg:
                new[i] = rng.choices(segs, weights)[0]
        candidate = tuple(p for seg in new for p in seg)
        if strip_stress(candidate) in real or candidate in taken:
            continue
        if legal_bigrams is not None and not phone_bigrams(candidate) <= legal_bigrams:
            continue
        # The new segments must stay where they were put: re-syllabifying gives the same syllables,
        # so every onset is legal and no cluster slid across a syllable boundary.
        rebuilt = [Syllable(new[3 * k], new[3 * k + 1][0], new[3 * k + 2]) for k in range(len(sylls))]
        if syllabify(candidate) != rebuilt:
            continue
        return candidate
    return None


# A spelling for a nonword: only a label (the audio is synthesized from the phones).
_GRAPHEMES = {
    "AA": "o", "AE": "a", "AH": "u", "AO": "aw", "AW": "ow", "AY": "ie", "EH": "e", "ER": "er", "EY": "ay",
    "IH": "i", "IY": "ee", "OW": "oa", "OY": "oy", "UH": "oo", "UW": "oo", "B": "b", "CH": "ch", "D": "d",
    "DH": "th", "F": "f", "G": "g", "HH": "h", "JH": "j", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ng",
    "P": "p", "R": "r", "S": "s", "SH": "sh", "T": "t", "TH": "th", "V": "v", "W": "w", "Y": "y", "Z": "z",
    "ZH": "zh",
}


def spell(phones: Iterable[str]) -> str:
    """A plain phoneme-to-letter spelling: K AE1 T -> 'kat'; unstressed AH -> 'a', final OW -> 'o'."""
    phones = tuple(phones)
    letters = []
    for i, phone in enumerate(phones):
        bare = phone.rstrip("012")
        if phone == "AH0":
            letters.append("a")
        elif bare == "OW" and i == len(phones) - 1:
            letters.append("o")
        else:
            letters.append(_GRAPHEMES[bare])
    return "".join(letters)
