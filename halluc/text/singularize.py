"""pattern.en's ``singularize``, bug for bug: the word normaliser of the original CHAIR metric.

CHAIR (Rohrbach et al. 2018), SHIELD and Maxlinn's standalone scorer call
``pattern.en.singularize(token)`` on every lower-cased caption token. ``pattern`` does not
install on Python 3.11, so this module re-implements the same function over the same rule
tables. Its quirks are part of the metric and are kept on purpose::

    >>> from halluc.text.singularize import singularize
    >>> [singularize(w) for w in ("buses", "bus", "glasses", "glass", "people", "has", "'s")]
    ['bus', 'bu', 'glass', 'glas', 'person', 'ha', "'"]

Algorithm (first match wins): a hyphenated compound whose second part is a preposition
("mothers-in-law") singularises its head; a trailing apostrophe becomes "'s"; a word that is a
*suffix* of an uninflected/uncountable noun is returned as is (hence "a", "s", "is", "es" stay);
a word ending in an "-ie" noun + "s" is returned lower-cased; irregular plurals; then the
ordered regex rules, the last of which strips any final "s".

The tables are those of pattern 2.6 as re-packaged in ``Pattern3`` 3.0.0 (PyPI sdist,
``pattern3/text/en/inflect.py``), including three missing commas that glue
"wildebeest"+"carp", "water"+"cheese" and "zombie"+"bogie" into single entries. The only
visible effect on lower-case input is "bogies" -> "bogy" (clips/pattern master, after the
commas were fixed, returns "bogies"); on mixed case, "Zombies" -> "Zombie" rather than "zombies".
Checked identical to the sdist's own function on 1.52 M distinct strings (dictionary words,
WordNet lemmas and their inflections, pattern's plurals, caption tokens, random Unicode).

Licence of the rule tables (carried over as data), pattern's BSD licence:

    Copyright (c) 2011-2013 University of Antwerp, Belgium. All rights reserved.
    Author: Tom De Smedt. Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:
    * Redistributions of source code must retain the above copyright notice, this list of
      conditions and the following disclaimer.
    * Redistributions in binary form must reproduce the above copyright notice, this list of
      conditions and the following disclaimer in the documentation and/or other materials
      provided with the distribution.
    * Neither the name of Pattern nor the names of its contributors may be used to endorse or
      promote products derived from this software without specific prior written permission.
    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS
    OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF
    MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE
    COPYRIGHT OWNER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL,
    EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE
    GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED
    AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING
    NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED
    OF THE POSSIBILITY OF SUCH DAMAGE.

pattern's singular rules are adapted from Bermi Ferrer's Inflector for Python
(Copyright (c) 2006 Bermi Ferrer Martinez, MIT-style permission notice).
"""
from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["singularize"]

# Regex rules in pattern's order. Character classes such as [octop|vir] and [m|l] are pattern's
# (they are classes, not alternations) and the -ves rules without (?i) are case-sensitive there too.
_RULES = [(re.compile(p), r) for p, r in (
    (r"(?i)(.)ae$", r"\1a"),
    (r"(?i)(.)itis$", r"\1itis"),
    (r"(?i)(.)eaux$", r"\1eau"),
    (r"(?i)(quiz)zes$", r"\1"),
    (r"(?i)(matr)ices$", r"\1ix"),
    (r"(?i)(ap|vert|ind)ices$", r"\1ex"),
    (r"(?i)^(ox)en", r"\1"),
    (r"(?i)(alias|status)es$", r"\1"),
    (r"(?i)([octop|vir])i$", r"\1us"),
    (r"(?i)(cris|ax|test)es$", r"\1is"),
    (r"(?i)(shoe)s$", r"\1"),
    (r"(?i)(o)es$", r"\1"),
    (r"(?i)(bus)es$", r"\1"),
    (r"(?i)([m|l])ice$", r"\1ouse"),
    (r"(?i)(x|ch|ss|sh)es$", r"\1"),
    (r"(?i)(m)ovies$", r"\1ovie"),
    (r"(?i)(.)ombies$", r"\1ombie"),
    (r"(?i)(s)eries$", r"\1eries"),
    (r"(?i)([^aeiouy]|qu)ies$", r"\1y"),
    # -f, -fe sometimes take -ves in the plural (lives, wolves).
    (r"([aeo]l)ves$", r"\1f"),
    (r"([^d]ea)ves$", r"\1f"),
    (r"arves$", "arf"),
    (r"erves$", "erve"),
    (r"([nlw]i)ves$", r"\1fe"),
    (r"(?i)([lr])ves$", r"\1f"),
    (r"([aeo])ves$", r"\1ve"),
    (r"(?i)(sive)s$", r"\1"),
    (r"(?i)(tive)s$", r"\1"),
    (r"(?i)(hive)s$", r"\1"),
    (r"(?i)([^f])ves$", r"\1fe"),
    # -ses suffixes.
    (r"(?i)(^analy)ses$", r"\1sis"),
    # pattern blanks the references to unmatched groups; Python's re does the same since 3.5.
    (r"(?i)((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$", r"\1\2sis"),
    (r"(?i)(.)opses$", r"\1opsis"),
    (r"(?i)(.)yses$", r"\1ysis"),
    (r"(?i)(h|d|r|o|n|b|cl|p)oses$", r"\1ose"),
    (r"(?i)(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$", r"\1ose"),
    (r"(?i)(.)oses$", r"\1osis"),
    # -a
    (r"(?i)([ti])a$", r"\1um"),
    (r"(?i)(n)ews$", r"\1ews"),
    (r"(?i)s$", ""),
)]

# Adjacent string literals below reproduce pattern's missing commas (see module docstring).
_UNINFLECTED = (
    "bison", "debris", "headquarters", "pincers", "trout", "bream", "diabetes", "herpes",
    "pliers", "tuna", "breeches", "djinn", "high-jinks", "proceedings", "whiting", "britches",
    "eland", "homework", "rabies", "wildebeest" "carp", "elk", "innings", "salmon", "chassis",
    "flounder", "jackanapes", "scissors", "christmas", "gallows", "mackerel", "series",
    "clippers", "georgia", "measles", "shears", "cod", "graffiti", "mews", "species",
    "contretemps", "mumps", "swine", "corps", "news", "swiss",
)
_UNCOUNTABLE = (
    "advice", "equipment", "happiness", "luggage", "news", "software", "bread", "fruit",
    "information", "mathematics", "progress", "understanding", "butter", "furniture", "ketchup",
    "mayonnaise", "research", "water" "cheese", "garbage", "knowledge", "meat", "rice",
    "electricity", "gravel", "love", "mustard", "sand",
)
# "^pie" and "^tie" are pattern's: tested with endswith(), so they never match.
_IE = (
    "alergie", "cutie", "hoagie", "newbie", "softie", "veggie", "auntie", "doggie", "hottie",
    "nightie", "sortie", "weenie", "beanie", "eyrie", "indie", "oldie", "stoolie", "yuppie",
    "birdie", "freebie", "junkie", "^pie", "sweetie", "zombie" "bogie", "goonie", "laddie",
    "pixie", "techie", "bombie", "groupie", "laramie", "quickie", "^tie", "collie", "hankie",
    "lingerie", "reverie", "toughie", "cookie", "hippie", "meanie", "rookie", "valkyrie",
)
_IRREGULAR = {
    "atlantes": "atlas", "atlases": "atlas", "axes": "axe", "beeves": "beef",
    "brethren": "brother", "children": "child", "corpora": "corpus", "corpuses": "corpus",
    "ephemerides": "ephemeris", "feet": "foot", "ganglia": "ganglion", "geese": "goose",
    "genera": "genus", "genii": "genie", "graffiti": "graffito", "helves": "helve", "kine": "cow",
    "leaves": "leaf", "loaves": "loaf", "men": "man", "mongooses": "mongoose", "monies": "money",
    "moves": "move", "mythoi": "mythos", "numena": "numen", "occipita": "occiput",
    "octopodes": "octopus", "opera": "opus", "opuses": "opus", "our": "my", "oxen": "ox",
    "penes": "penis", "penises": "penis", "people": "person", "sexes": "sex",
    "soliloquies": "soliloquy", "teeth": "tooth", "testes": "testis", "trilbys": "trilby",
    "turves": "turf", "zoa": "zoon",
}
_PREPOSITIONS = frozenset((
    "about", "before", "during", "of", "till", "above", "behind", "except", "off", "to",
    "across", "below", "for", "on", "under", "after", "beneath", "from", "onto", "until",
    "among", "beside", "in", "out", "unto", "around", "besides", "into", "over", "upon", "at",
    "between", "near", "since", "with", "athwart", "betwixt", "beyond", "but", "by",
))

# pattern tests `any(x.endswith(w) for x in uninflected + uncountable)`; the set of all
# suffixes of those words (the empty string included) answers that with one lookup.
_KEEP = frozenset(x[i:] for x in _UNINFLECTED + _UNCOUNTABLE for i in range(len(x) + 1))
_IE_PLURALS = tuple(x + "s" for x in _IE)
# No irregular key is a suffix of another, so at most one matches and dict order is irrelevant.
_IRREGULAR_KEYS = tuple(_IRREGULAR)
_IRREGULAR_RE = {k: re.compile("(?i)" + k + "$") for k in _IRREGULAR}


@lru_cache(maxsize=1 << 17)
def singularize(word: str) -> str:
    """Return pattern.en.singularize(word) (pos=NOUN, no custom dictionary)."""
    if "-" in word:
        parts = word.split("-")
        if parts[1] in _PREPOSITIONS:
            return singularize(parts[0]) + "-" + "-".join(parts[1:])
    if word.endswith("'"):
        return singularize(word[:-1]) + "'s"  # dogs' => dog's
    w = word.lower()
    if w in _KEEP:
        return word
    if w.endswith(_IE_PLURALS):
        return w  # pattern returns the lower-cased form here, unlike everywhere else
    if w.endswith(_IRREGULAR_KEYS):
        key = next(k for k in _IRREGULAR_KEYS if w.endswith(k))
        return _IRREGULAR_RE[key].sub(_IRREGULAR[key], word)
    for rule, repl in _RULES:
        if rule.search(word):
            return rule.sub(repl, word)
    return word


def singularize_many(token_lists) -> list[list[str]]:
    """Every token of every list singularised (CHAIR's normaliser, list-of-captions form)."""
    return [[singularize(t) for t in toks] for toks in token_lists]
