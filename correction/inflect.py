"""Inflection for the rewriter: noun number, verb agreement, capitals.

    plural("star"), plural("knife"), singular("people"), third_person("watch")
    # 'stars', 'knives', 'person', 'watches'

World shapes use the world's own tables (``halluc.world.language``), so corrected world captions
stay in the world's grammar; other nouns follow English rules and a few irregulars, with the
parser's lemma as the singular. "a"/"an" is the world's ``article``.
"""
from __future__ import annotations

import re

from halluc.world.language import PLURAL, SINGULAR

IRREGULAR = {"person": "people", "man": "men", "woman": "women", "child": "children", "foot": "feet",
             "tooth": "teeth", "mouse": "mice", "goose": "geese", "sheep": "sheep", "fish": "fish",
             "knife": "knives", "leaf": "leaves", "shelf": "shelves", "wolf": "wolves", "loaf": "loaves",
             "deer": "deer"}
_SINGULAR_OF = {v: k for k, v in IRREGULAR.items()}


def case_like(new: str, old: str) -> str:
    """``new`` with a capital first letter when ``old`` has one."""
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def singular(word: str, lemma: str | None = None) -> str:
    """Singular of a noun: the world's table, a few irregulars, else the parser's lemma."""
    w = word.lower()
    return case_like(SINGULAR.get(w) or _SINGULAR_OF.get(w) or lemma or w, word)


def _add_s(w: str, es: str) -> str:
    if re.search(r"[^aeiou]y$", w):
        return w[:-1] + "ies"
    return w + ("es" if re.search(es, w) else "s")


def plural(word: str) -> str:
    """Plural of a singular noun (the world's table for world shapes, English rules otherwise)."""
    w = word.lower()
    return case_like(PLURAL.get(w) or IRREGULAR.get(w) or _add_s(w, r"(s|x|z|ch|sh)$"), word)


def third_person(verb: str) -> str:
    """"sleep" -> "sleeps", "watch" -> "watches", "fly" -> "flies", "have" -> "has"."""
    irregular = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    return irregular.get(verb) or _add_s(verb, r"(s|x|z|ch|sh|o)$")
