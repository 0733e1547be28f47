"""The world's words: nouns, verbs, adjectives and names with every form the grammar needs.

The lists are hand-written (nothing copied): simple, concrete words a small
child knows, each spoken well by espeak-ng and listed in the CMU dictionary (a
test checks), so the lexical benchmark can take real pronunciations for them.
Forms are explicit where English is irregular (mice, children; ran, ate); the
rest follow the spelling rules in `plural`, `third_singular` and
`regularized_past`. Everything is a tuple in a fixed order: no set iteration
reaches the output, so generation is deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VOWEL_LETTERS = "aeiou"


def plural(singular: str) -> str:
    """Regular English plural spelling: boxes, puppies, cats."""
    if singular.endswith(("s", "x", "z", "ch", "sh")):
        return singular + "es"
    if singular.endswith("y") and singular[-2] not in VOWEL_LETTERS:
        return singular[:-1] + "ies"
    return singular + "s"


def third_singular(base: str) -> str:
    """Present tense, third person singular: runs, fixes, carries, goes."""
    if base in ("go", "do"):
        return base + "es"
    if base == "have":
        return "has"
    return plural(base)


def regularized_past(base: str) -> str:
    """The over-regularized past a child might say (runned, eated, taked): the negative form."""
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in VOWEL_LETTERS:
        return base[:-1] + "ied"
    # A one-syllable word ending consonant-vowel-consonant doubles the consonant: runned, hopped.
    syllables = len(re.findall(f"[{VOWEL_LETTERS}]+", base))
    if (syllables == 1 and len(base) >= 3 and base[-3] not in VOWEL_LETTERS
            and base[-2] in VOWEL_LETTERS and base[-1] not in VOWEL_LETTERS + "wxy"):
        return base + base[-1] + "ed"
    return base + "ed"


def article(word: str) -> str:
    """'a' or 'an' before `word`, by its first sound (spelling rule with the exceptions we use)."""
    if word.startswith(("uni", "use", "eu", "one")):
        return "a"
    if word.startswith(("hour", "honest")):
        return "an"
    return "an" if word[0] in VOWEL_LETTERS else "a"


@dataclass(frozen=True)
class Noun:
    sg: str
    pl: str | None
    """None for mass nouns (milk, sand): they take no plural and no 'a'."""
    kind: str
    """animal, person, toy, food, drink, body, nature, place or spot."""
    tags: tuple[str, ...] = ()
    """Finer classes the grammar selects on: breakable, wearable, container, soft, ..."""

    @property
    def mass(self) -> bool:
        return self.pl is None

    @property
    def invariant(self) -> bool:
        """sheep, fish, deer: singular and plural look the same, so no number contrast."""
        return self.pl == self.sg

    @property
    def irregular_plural(self) -> bool:
        return self.pl is not None and self.pl != plural(self.sg) and self.pl != self.sg


@dataclass(frozen=True)
class Verb:
    base: str
    past: str
    objects: tuple[str, ...] = ()
    """Noun kinds or tags the verb takes as object; empty for intransitive verbs."""
    object_required: bool = False
    """True when the verb cannot drop its object (found, took); used by argument_structure."""

    @property
    def s3(self) -> str:
        return third_singular(self.base)

    @property
    def irregular(self) -> bool:
        """A regular verb's past is exactly its regularized past (hopped, carried)."""
        return self.past != regularized_past(self.base)


@dataclass(frozen=True)
class Adjective:
    word: str
    kind: str
    """size, color, look (things), taste (food), trait (characters), feeling (predicative)."""


@dataclass(frozen=True)
class Name:
    name: str
    gender: str
    """'male' or 'female'; the story uses he/him/his/himself or she/her/herself."""


@dataclass(frozen=True)
class AnimalInfo:
    moves: tuple[str, ...]
    sound: str | None
    eats: tuple[str, ...] = field(default=())


def _nouns(kind: str, text: str) -> tuple[Noun, ...]:
    """Parse 'sg[/pl][:tag,tag]' items separated by whitespace; pl '-' marks a mass noun."""
    out = []
    for item in text.split():
        word, _, tags = item.partition(":")
        sg, _, pl = word.partition("/")
        number = None if pl == "-" else (pl or plural(sg))
        out.append(Noun(sg, number, kind, tuple(t for t in tags.split(",") if t)))
    return tuple(out)


ANIMALS = _nouns("animal", """
    cat dog bird fish/fish duck frog fox bear bunny mouse/mice horse cow pig sheep/sheep
    goat hen owl lion tiger elephant monkey turtle snake bee butterfly puppy kitten squirrel
    deer/deer wolf/wolves goose/geese ant spider whale zebra giraffe parrot lamb chick pony
    snail worm crab seal dolphin beaver
""")
PEOPLE = _nouns("person", """
    boy:male girl:female man/men:male woman/women:female child/children baby mom:female
    dad:male grandma:female grandpa:male sister:female brother:male friend teacher farmer
    baker king:male queen:female doctor neighbor
""")
TOYS = _nouns("toy", """
    ball:round kite:breakable doll:soft book:readable hat:wearable cap:wearable
    cup:breakable,container box:container car:breakable,pushable truck:breakable,pushable
    train:breakable boat:breakable drum:breakable bell robot:breakable puzzle
    bike:big,rideable,pushable wagon:big,pushable,container umbrella:breakable balloon crayon
    scarf:wearable,soft mitten:wearable,soft whistle marble puppet:soft crown:wearable
    necklace:wearable sled:big,rideable shovel bucket:container rope basket:container key
    map:readable brush flute:breakable sock:wearable shoe:wearable blanket:soft
    pillow:soft,big block coat:wearable,soft bag:container ring:wearable lamp:big
    clock:big ribbon letter:readable tower:big fort:big snowman/snowmen:big towel:soft
""")
FOOD = _nouns("food", """
    apple banana cake cookie bread/- carrot cheese/- egg pie berry corn/- grape nut seed
    bone plum pear peach muffin sandwich candy cracker pancake lemon melon bean soup/-
    honey/- rice/- jam/- pizza
""")
DRINKS = _nouns("drink", "milk/- water/- juice/- tea/-")
BODY = _nouns("body", """
    hand foot/feet tooth/teeth nose ear tail paw wing face head eye leg arm
""")
NATURE = _nouns("nature", """
    sun moon star cloud rain/- snow/- wind sky grass/- flower tree leaf/leaves rock stone
    stick shell feather puddle rainbow sand/- mud/- song game nest hole bubble
""")
PLACES = _nouns("place", """
    park garden forest farm beach lake river pond hill school house kitchen yard barn zoo
    shop library bakery castle cave field meadow jungle town playground bedroom market
    mountain island village
""")
SPOTS = _nouns("spot", """
    bed table chair sofa rug bush bench door shelf/shelves desk fence swing slide wall
    window step mirror
""")

NOUNS: tuple[Noun, ...] = ANIMALS + PEOPLE + TOYS + FOOD + DRINKS + BODY + NATURE + PLACES + SPOTS
NOUN_BY_SG: dict[str, Noun] = {n.sg: n for n in NOUNS}

# The preposition for being at a place: "in the park", "on the farm", "at the beach".
PLACE_LOC: dict[str, str] = {
    "park": "in", "garden": "in", "forest": "in", "farm": "on", "beach": "at", "lake": "by",
    "river": "by", "pond": "by", "hill": "on", "school": "at", "house": "in", "kitchen": "in",
    "yard": "in", "barn": "in", "zoo": "at", "shop": "at", "library": "in", "bakery": "at",
    "castle": "in", "cave": "in", "field": "in", "meadow": "in", "jungle": "in", "town": "in",
    "playground": "at", "bedroom": "in", "market": "at", "mountain": "on", "island": "on",
    "village": "in",
}
# Places a child goes on an outing, and places where things are bought.
OUTDOOR_PLACES = ("park", "garden", "forest", "farm", "beach", "lake", "river", "pond", "hill",
                  "zoo", "field", "meadow", "jungle", "playground", "mountain", "island", "yard")
SHOP_PLACES = ("shop", "market", "town", "village")
WATER_PLACES = ("lake", "river", "pond", "beach")
KITE_PLACES = ("hill", "park", "beach", "field", "meadow")

# Where a thing can lie or an animal sit at each outdoor place ("under the bench").
_PARK_SPOTS = ("bench", "swing", "slide", "bush", "fence", "tree")
_WILD_SPOTS = ("bush", "tree", "rock")
PLACE_SPOTS: dict[str, tuple[str, ...]] = {
    **{p: _PARK_SPOTS for p in ("park", "playground", "yard", "garden")},
    "farm": ("fence", "bush", "tree"), "beach": ("rock",), "zoo": ("fence", "tree", "rock"),
}


def spots_at(place: str) -> tuple[str, ...]:
    return PLACE_SPOTS.get(place, _WILD_SPOTS)

# Who lives where, so a trip to the pond meets ducks and not lions.
_FIELD = ("dog", "cat", "bird", "bunny", "squirrel", "butterfly", "bee", "ant", "snail", "worm",
          "puppy", "kitten", "mouse")
PLACE_ANIMALS: dict[str, tuple[str, ...]] = {
    "lake": ("duck", "fish", "frog", "goose", "turtle", "beaver"),
    "river": ("duck", "fish", "frog", "goose", "beaver", "turtle"),
    "pond": ("duck", "fish", "frog", "goose", "turtle", "snail"),
    "beach": ("crab", "seal", "bird", "dolphin", "turtle", "dog", "whale"),
    "farm": ("cow", "pig", "sheep", "goat", "hen", "horse", "duck", "chick", "lamb", "pony", "goose"),
    "forest": ("fox", "bear", "owl", "deer", "squirrel", "bunny", "wolf", "bird", "snail", "spider"),
    "zoo": ("lion", "tiger", "elephant", "monkey", "zebra", "giraffe", "parrot", "snake", "bear", "seal"),
    "jungle": ("monkey", "tiger", "snake", "parrot", "elephant", "lion", "frog"),
    "mountain": ("goat", "bear", "deer", "wolf", "bird"),
    "island": ("bird", "crab", "seal", "turtle", "parrot", "monkey", "whale"),
    "field": _FIELD + ("horse", "cow", "sheep", "deer"),
    "meadow": _FIELD + ("horse", "cow", "sheep", "lamb"),
    "hill": _FIELD + ("sheep", "goat"),
    "park": _FIELD + ("duck",),
    "garden": _FIELD + ("frog",),
    "yard": _FIELD + ("hen", "chick"),
    "playground": _FIELD,
    **{p: ("dog", "cat", "bird", "mouse", "puppy", "kitten") for p in SHOP_PLACES},
}

# Prepositions that put something at a spot: "under the bed", "behind the door".
SPOT_PREPS: dict[str, tuple[str, ...]] = {
    "bed": ("under",), "table": ("under", "on"), "chair": ("under", "on"), "sofa": ("behind", "under"),
    "rug": ("under",), "bush": ("under", "behind"), "bench": ("under", "near"), "door": ("behind",),
    "shelf": ("on",), "desk": ("under", "on"), "fence": ("near", "behind"), "swing": ("near",),
    "slide": ("near", "under"), "wall": ("near",), "window": ("near",), "step": ("on", "near"),
    "mirror": ("near",), "tree": ("under", "behind", "near"), "rock": ("behind", "near"),
}

ANIMAL_INFO: dict[str, AnimalInfo] = {
    "cat": AnimalInfo(("climb", "sleep"), None, ("milk", "fish")),
    "dog": AnimalInfo(("run", "dig"), "bark", ("bone",)),
    "bird": AnimalInfo(("fly", "sing"), "chirp", ("seed", "berry")),
    "fish": AnimalInfo(("swim",), None, ("seed",)),
    "duck": AnimalInfo(("swim", "fly"), "quack", ("bread", "seed")),
    "frog": AnimalInfo(("hop", "swim"), None, ("worm",)),
    "fox": AnimalInfo(("run", "dig"), None, ("berry", "egg")),
    "bear": AnimalInfo(("climb", "swim", "sleep"), "roar", ("honey", "berry", "fish")),
    "bunny": AnimalInfo(("hop", "dig"), None, ("carrot",)),
    "mouse": AnimalInfo(("run", "hide"), "squeak", ("cheese", "seed")),
    "horse": AnimalInfo(("run",), None, ("apple", "carrot")),
    "cow": AnimalInfo(("walk", "sleep"), "moo", ("grass", "corn")),
    "pig": AnimalInfo(("dig", "sleep"), None, ("corn", "apple")),
    "sheep": AnimalInfo(("walk", "sleep"), None, ("grass",)),
    "goat": AnimalInfo(("climb", "jump"), None, ("grass", "carrot")),
    "hen": AnimalInfo(("walk", "dig"), "cluck", ("seed", "corn")),
    "owl": AnimalInfo(("fly",), None, ("mouse",)),
    "lion": AnimalInfo(("run", "sleep"), "roar", ("bone",)),
    "tiger": AnimalInfo(("run", "swim"), "roar", ("fish",)),
    "elephant": AnimalInfo(("walk", "swim"), None, ("banana", "grass")),
    "monkey": AnimalInfo(("climb", "jump"), None, ("banana",)),
    "turtle": AnimalInfo(("swim", "walk"), None, ("leaf", "berry")),
    "snake": AnimalInfo(("hide",), "hiss", ("egg", "mouse")),
    "bee": AnimalInfo(("fly",), "buzz", ("honey",)),
    "butterfly": AnimalInfo(("fly",), None, ("honey",)),
    "puppy": AnimalInfo(("run", "jump"), "bark", ("bone", "milk")),
    "kitten": AnimalInfo(("climb", "jump"), None, ("milk",)),
    "squirrel": AnimalInfo(("climb", "dig"), None, ("nut", "seed")),
    "deer": AnimalInfo(("run", "jump"), None, ("grass", "apple")),
    "wolf": AnimalInfo(("run",), "howl", ("bone",)),
    "goose": AnimalInfo(("swim", "fly"), None, ("bread", "corn")),
    "ant": AnimalInfo(("walk", "dig"), None, ("seed", "jam")),
    "spider": AnimalInfo(("climb", "hide"), None, ("ant",)),
    "whale": AnimalInfo(("swim",), None, ("fish",)),
    "zebra": AnimalInfo(("run",), None, ("grass",)),
    "giraffe": AnimalInfo(("walk", "run"), None, ("leaf",)),
    "parrot": AnimalInfo(("fly", "sing"), None, ("seed", "nut")),
    "lamb": AnimalInfo(("jump", "run"), None, ("grass", "milk")),
    "chick": AnimalInfo(("walk", "run"), "chirp", ("seed", "corn")),
    "pony": AnimalInfo(("run", "jump"), None, ("apple", "carrot")),
    "snail": AnimalInfo(("hide",), None, ("leaf",)),
    "worm": AnimalInfo(("dig", "hide"), None, ("leaf",)),
    "crab": AnimalInfo(("walk", "hide", "dig"), None, ("fish",)),
    "seal": AnimalInfo(("swim",), None, ("fish",)),
    "dolphin": AnimalInfo(("swim", "jump"), None, ("fish",)),
    "beaver": AnimalInfo(("swim", "dig"), None, ("stick", "leaf")),
}


def _verbs(text: str, objects: str = "", required: bool = False) -> list[Verb]:
    """Parse 'base>past' items (past given only when it is not the regular spelling)."""
    kinds = tuple(k for k in objects.split(",") if k)
    out = []
    for item in text.split():
        base, _, past = item.partition(">")
        out.append(Verb(base, past or regularized_past(base), kinds, required))
    return out


# Transitive verbs that cannot drop their object ("Tom found." is ungrammatical).
_OBLIGATORY = (
    _verbs("find>found take>took hold>held carry>carried grab>grabbed bring>brought keep>kept "
           "like want need", "toy,food", required=True)
    + _verbs("fix", "breakable", required=True)
    + _verbs("pat>patted", "animal", required=True)
    + _verbs("thank", "person", required=True)
    + _verbs("wear>wore", "wearable", required=True)
)
# Transitive verbs whose object may be left out ("Tom ate." is fine).
_OPTIONAL = (
    _verbs("drop>dropped buy>bought lose>lost", "toy,food")
    + _verbs("love hug>hugged", "animal,toy")
    + _verbs("open", "container")
    + _verbs("tickle touch lick", "animal")
    + _verbs("meet>met", "person")
    + _verbs("lift", "container")
    + _verbs("eat>ate bite>bit share cook bake choose>chose", "food")
    + _verbs("drink>drank", "drink")
    + _verbs("read>read", "readable")
    + _verbs("draw>drew paint", "animal,toy")
    + _verbs("wash clean", "toy,body")
    + _verbs("see>saw watch follow call hear>heard", "animal")
    + _verbs("feed>fed chase help", "animal")
    + _verbs("visit", "person,place")
    + _verbs("kick throw>threw catch>caught push pull roll", "round,pushable")
    + _verbs("ride>rode", "rideable")
    + _verbs("hide>hid forget>forgot break>broke", "toy")
    + _verbs("pick>picked plant smell collect", "nature,food")
    + _verbs("build>built make>made", "toy")
    + _verbs("sing>sang write>wrote", "readable")
    + _verbs("shake>shook", "toy")
    + _verbs("count win>won", "toy")
    + _verbs("dig>dug", "nature")
    + _verbs("blow>blew", "toy")
    + _verbs("fill", "container")
)
# Verbs that take no object ("Tom slept the ball." is ungrammatical).
_INTRANSITIVE = _verbs(
    "run>ran walk go>went come>came jump hop>hopped skip>skipped swim>swam fly>flew climb "
    "sit>sat stand>stood sleep>slept nap>napped rest play laugh cry smile giggle yawn dance "
    "shout wait wander fall>fell wake>woke sneeze shiver nod>nodded frown bark quack moo roar "
    "buzz chirp hiss cluck howl squeak arrive splash crawl grow>grew float listen")

VERBS: tuple[Verb, ...] = tuple(_OBLIGATORY) + tuple(_OPTIONAL) + tuple(_INTRANSITIVE)
VERB: dict[str, Verb] = {}
for _verb in VERBS:
    VERB.setdefault(_verb.base, _verb)
# Strictly intransitive verbs (adding an object is clearly wrong), for argument_structure.
STRICT_INTRANSITIVE = ("sleep", "laugh", "cry", "smile", "giggle", "yawn", "nap", "sneeze",
                       "shiver", "frown", "arrive", "go", "come")
# Verbs that cannot drop their object, for the argument_structure pairs.
OBJECT_REQUIRED = tuple(v.base for v in VERBS if v.object_required)


def _adjectives(kind: str, text: str) -> tuple[Adjective, ...]:
    return tuple(Adjective(w, kind) for w in text.split())


ADJECTIVES: tuple[Adjective, ...] = (
    _adjectives("size", "big little small tiny tall long short huge")
    + _adjectives("color", "red blue green yellow pink purple brown black white gray orange golden")
    + _adjectives("look", "shiny soft hard old new pretty funny fluffy round clean dirty heavy "
                         "fuzzy striped smooth bumpy special beautiful bright dark wet dry")
    + _adjectives("taste", "sweet fresh yummy sticky tasty juicy warm")
    + _adjectives("trait", "kind brave shy curious friendly smart silly gentle clever quiet "
                          "strong fast slow lucky careful cheerful busy loud")
    + _adjectives("feeling", "happy sad glad angry scared tired hungry thirsty sleepy upset "
                            "excited bored lonely calm proud cold sick worried grumpy")
    + _adjectives("weather", "sunny rainy windy snowy cloudy")
)
ADJ_BY_KIND: dict[str, tuple[str, ...]] = {}
for _adj in ADJECTIVES:
    ADJ_BY_KIND[_adj.kind] = ADJ_BY_KIND.get(_adj.kind, ()) + (_adj.word,)

# Feelings that follow from a good or a bad outcome, in swap pairs: the story-cloze
# negative replaces a word by its partner, so both lists are used equally often.
GOOD_FEELINGS = ("happy", "glad")
BAD_FEELINGS = ("sad", "upset")

NAMES: tuple[Name, ...] = tuple(
    [Name(n, "male") for n in "Tom Ben Sam Max Jack Leo Tim Joe Dan Nick Jake Luke Paul Pete Ted "
                                "Jim Fred Ned Owen Adam".split()]
    + [Name(n, "female") for n in "Mia Lily Anna Emma Lucy Sue Kate Jane Amy Ella Ruby Nora Zoe "
                                  "Ann Beth Meg Molly Sara Lisa Ellie".split()])



def nouns_of(*kinds_or_tags: str, countable: bool = False) -> tuple[Noun, ...]:
    """Nouns whose kind or one of whose tags is listed, in lexicon order."""
    wanted = set(kinds_or_tags)
    found = tuple(n for n in NOUNS if n.kind in wanted or wanted.intersection(n.tags))
    return tuple(n for n in found if not n.mass) if countable else found


# Objects that make sense for a verb where its noun kinds alone would allow nonsense ("dug the sun").
VERB_OBJECTS: dict[str, tuple[str, ...]] = {
    "dig": ("hole",), "blow": ("bubble", "balloon", "whistle"), "sing": ("song",), "write": ("letter",),
    "win": ("game",), "build": ("tower", "fort", "snowman", "nest"),
    "make": ("cake", "pie", "kite", "boat", "sandwich", "hat"), "ride": ("bike", "horse", "pony", "sled"),
    "throw": ("ball", "stick", "rock"), "catch": ("ball", "fish"), "shake": ("bell", "box"),
    "drink": ("milk", "water", "juice", "tea"), "read": ("book", "letter", "map"),
    "pick": ("flower", "berry", "apple", "plum", "pear", "peach"), "plant": ("seed", "flower", "tree", "bean"),
    "smell": ("flower", "cake", "bread", "soup", "pie"), "collect": ("shell", "stone", "feather", "leaf", "rock"),
    "count": ("star", "cloud"), "bake": ("cake", "cookie", "pie", "muffin", "bread"),
    "cook": ("soup", "egg", "rice", "corn", "pancake"),
    "fix": ("kite", "cup", "car", "truck", "train", "boat", "drum", "robot", "bike", "umbrella", "lamp", "clock",
            "wagon", "sled"),
    "wash": ("hand", "foot", "face", "arm", "cup", "car", "bike", "towel", "sock"),
    "clean": ("kitchen", "bedroom", "car", "bike", "shoe", "table", "tooth"), "kick": ("ball", "rock", "stick"),
    "roll": ("ball", "marble", "wagon"), "pull": ("wagon", "sled", "rope"), "push": ("wagon", "car", "truck"),
    "visit": ("farmer", "baker", "doctor", "teacher", "neighbor"),
}


def objects_for(verb_base: str) -> tuple[Noun, ...]:
    """Nouns a verb sensibly takes as object (its kinds, or a hand-picked list)."""
    if verb_base in VERB_OBJECTS:
        return tuple(NOUN_BY_SG[w] for w in VERB_OBJECTS[verb_base])
    return tuple(n for n in nouns_of(*VERB[verb_base].objects)
                 if n.kind not in ("place", "nature", "spot") and "big" not in n.tags)


def content_words() -> tuple[str, ...]:
    """Every content lemma (noun singular, verb base, adjective), sorted and unique."""
    words = {n.sg for n in NOUNS} | {v.base for v in VERBS} | {a.word for a in ADJECTIVES}
    return tuple(sorted(words))


def surface_forms() -> dict[str, tuple[str, ...]]:
    """Each content lemma with every form the grammar can write (sg/pl, base/3sg/past)."""
    forms: dict[str, list[str]] = {}
    def add(lemma: str, *words: str | None) -> None:
        bucket = forms.setdefault(lemma, [])
        for w in words:
            if w and w not in bucket:
                bucket.append(w)
    for n in NOUNS:
        add(n.sg, n.sg, n.pl)
    for v in VERBS:
        add(v.base, v.base, v.s3, v.past)
    for a in ADJECTIVES:
        add(a.word, a.word)
    return {k: tuple(v) for k, v in sorted(forms.items())}
