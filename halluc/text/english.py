"""The English the project writes and reads: noun number, articles, verb agreement, number, colour
and size words. One table of each, used by the corrector's parser and rewriter, the negative-
instruction writer and the controlled world's caption grammar.

    plural("knife"), plural("hot dog"), singular("crosses", known={"crosses": "cross"})
    # 'knives', 'hot dogs', 'cross'
    article("apple"), third_person("watch"), NUMBERS[3], NUMBER_VALUE["dozen"]
    # 'an', 'watches', 'three', 12

A domain with nouns of its own (the world's shapes) passes them as ``known`` (plural -> singular),
so its captions keep its own grammar whatever the parser's lemma says.
"""
from __future__ import annotations

import re

NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
           "twelve")
NUMBER_VALUE = {w: i for i, w in enumerate(NUMBERS)} | {"dozen": 12}

IRREGULAR_PLURALS = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "foot": "feet", "tooth": "teeth",
    "mouse": "mice", "goose": "geese", "sheep": "sheep", "fish": "fish", "deer": "deer", "knife": "knives",
    "leaf": "leaves", "shelf": "shelves", "wolf": "wolves", "loaf": "loaves",
    # plural-only nouns, and words the rules below would get wrong
    "skis": "skis", "scissors": "scissors", "glasses": "glasses", "bus": "buses", "skateboard": "skateboards"}
_SINGULAR_OF = {p: s for s, p in IRREGULAR_PLURALS.items() if p != s}

# Colour words -> the colour they name (grey and gray are one); the first six are the controlled
# world's palette, in its order.
COLOUR_WORDS = {c: c for c in (
    "red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "brown", "pink", "silver",
    "gold", "golden", "beige", "tan", "maroon", "navy", "turquoise", "teal", "cyan")} | {"grey": "gray"}
SIZE_WORDS = {"small": "small", "large": "large", "big": "large", "huge": "large", "giant": "large",
              "little": "small", "tiny": "small"}


def case_like(new: str, old: str) -> str:
    """``new`` with a capital first letter when ``old`` has one."""
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def article(word: str) -> str:
    """The indefinite article before ``word`` (by its first letter, as the world's grammar writes it)."""
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _add_s(w: str, es: str) -> str:
    if re.search(r"[^aeiou]y$", w):
        return w[:-1] + "ies"
    return w + ("es" if re.search(es, w) else "s")


def plural(word: str) -> str:
    """Plural of a singular noun or noun phrase (its last word): irregulars, then English rules."""
    head, _, last = word.rpartition(" ")
    w = last.lower()
    p = case_like(IRREGULAR_PLURALS.get(w) or _add_s(w, r"(s|x|z|ch|sh)$"), last)
    return f"{head} {p}" if head else p


def singular(word: str, lemma: str | None = None, known: dict[str, str] | None = None) -> str:
    """Singular of a noun: the domain's own table (``known``), irregulars, else the parser's lemma."""
    w = word.lower()
    return case_like((known or {}).get(w) or _SINGULAR_OF.get(w) or lemma or w, word)


def third_person(verb: str) -> str:
    """"sleep" -> "sleeps", "watch" -> "watches", "fly" -> "flies", "have" -> "has"."""
    irregular = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    return irregular.get(verb) or _add_s(verb, r"(s|x|z|ch|sh|o)$")
