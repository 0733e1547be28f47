"""ARPAbet (CMUdict's 39 phonemes, vowels with stress 0/1/2) to TTS phoneme strings.

Lexical benchmark items are designed as phone strings: a nonword has no spelling a TTS
would read as intended. Both items of a pair are therefore spoken from phones, through
the same route, so the pair differs in phones only.

Two targets:
- espeak-ng's own English phoneme mnemonics (Kirshenbaum-like ASCII), spoken when the
  text is wrapped in `[[...]]` and the `espeakPHONEMES` flag is set;
- IPA as espeak-ng writes it for en-us, which is what Piper voices were trained on
  (Piper reads `[[...]]` blocks of IPA characters verbatim).

Stress goes immediately before the stressed vowel, as in espeak's own output for real
words (`espeak_TextToPhonemes("cat")` is `k'at`, IPA `kˈæt`): espeak applies a stress
mark to the next vowel, so this placement needs no syllabification.
"""

from __future__ import annotations

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
"""The 15 ARPAbet vowels; they carry a stress digit in CMUdict."""

CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R",
              "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH")
"""The 24 ARPAbet consonants."""

ARPABET = VOWELS + CONSONANTS
"""All 39 ARPAbet phonemes of CMUdict."""

# (stressed, unstressed) forms. The unstressed forms follow espeak's en-us choices for
# reduced vowels: schwa for AH0, r-coloured schwa for ER0, the short "happy" i for IY0.
_ESPEAK_VOWELS = {
    "AA": ("A:", "A:"), "AE": ("a", "a"), "AH": ("V", "@"), "AO": ("O:", "O:"),
    "AW": ("aU", "aU"), "AY": ("aI", "aI"), "EH": ("E", "E"), "ER": ("3:", "3"),
    "EY": ("eI", "eI"), "IH": ("I", "I"), "IY": ("i:", "i"), "OW": ("oU", "oU"),
    "OY": ("OI", "OI"), "UH": ("U", "U"), "UW": ("u:", "u:"),
}
_ESPEAK_CONSONANTS = {
    "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r", "S": "s",
    "SH": "S", "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "Z",
}
_IPA_VOWELS = {
    "AA": ("ɑː", "ɑː"), "AE": ("æ", "æ"), "AH": ("ʌ", "ə"), "AO": ("ɔː", "ɔː"),
    "AW": ("aʊ", "aʊ"), "AY": ("aɪ", "aɪ"), "EH": ("ɛ", "ɛ"), "ER": ("ɜː", "ɚ"),
    "EY": ("eɪ", "eɪ"), "IH": ("ɪ", "ɪ"), "IY": ("iː", "i"), "OW": ("oʊ", "oʊ"),
    "OY": ("ɔɪ", "ɔɪ"), "UH": ("ʊ", "ʊ"), "UW": ("uː", "uː"),
}
_IPA_CONSONANTS = {
    "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
    "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}
_ESPEAK_STRESS = {"1": "'", "2": ",", "0": ""}
_IPA_STRESS = {"1": "ˈ", "2": "ˌ", "0": ""}


class PhonemeError(ValueError):
    """A phone string that is not ARPAbet; the message names the offending symbol."""


def parse_arpabet(phones: str) -> list[tuple[str, str]]:
    """Split "K AE1 T" into [("K", ""), ("AE", "1"), ("T", "")].

    Case-insensitive. A vowel without a stress digit counts as unstressed ("0"); a
    consonant with one, an unknown symbol or an empty string is a `PhonemeError`.
    """
    symbols = phones.split()
    if not symbols:
        raise PhonemeError("empty phone string")
    parsed = []
    for symbol in symbols:
        upper = symbol.upper()
        base, stress = (upper[:-1], upper[-1]) if upper[-1:].isdigit() else (upper, "")
        if base in VOWELS:
            if stress not in ("", "0", "1", "2"):
                raise PhonemeError(f"{symbol!r} in {phones!r}: stress must be 0, 1 or 2")
            parsed.append((base, stress or "0"))
        elif base in CONSONANTS and not stress:
            parsed.append((base, ""))
        else:
            raise PhonemeError(f"{symbol!r} in {phones!r} is not an ARPAbet phoneme "
                               f"(known: {' '.join(ARPABET)}; vowels take a stress digit 0/1/2)")
    return parsed


def _convert(phones: str, vowels: dict, consonants: dict, stress_marks: dict) -> list[str]:
    out = []
    for base, stress in parse_arpabet(phones):
        if base in vowels:
            stressed, unstressed = vowels[base]
            out.append(stress_marks[stress] + (unstressed if stress == "0" else stressed))
        else:
            out.append(consonants[base])
    return out


def arpabet_to_espeak(phones: str) -> str:
    """One word of ARPAbet as espeak-ng phoneme mnemonics, e.g. "K AE1 T" -> "k|'a|t".

    Mnemonics are joined with espeak's "|" separator, which keeps adjacent mnemonics
    from fusing into another one (T SH would otherwise read as "tS", the affricate CH)
    and adds no pause: "[[k|'a|t]]" and "[[k'at]]" give the same audio length.
    """
    return "|".join(_convert(phones, _ESPEAK_VOWELS, _ESPEAK_CONSONANTS, _ESPEAK_STRESS))


def arpabet_to_ipa(phones: str) -> str:
    """One word of ARPAbet as espeak-style en-us IPA, e.g. "K AE1 T" -> "kˈæt"."""
    return "".join(_convert(phones, _IPA_VOWELS, _IPA_CONSONANTS, _IPA_STRESS))
