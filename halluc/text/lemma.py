"""WordNet lemmatisation with POS tags: the ``lemma`` word normaliser of CHAIR (OPERA, HALC, PAI,
lmms-eval) and AMBER's noun lemmas.

Those scorers do, per caption::

    tokens = nltk.word_tokenize(caption.lower())
    tags = nltk.pos_tag(tokens)                                  # the averaged perceptron, whole caption
    [WordNetLemmatizer().lemmatize(w, pos) for w, pos in ...]   # J->a, V->v, N->n, R->r, else n

and so does this module, exactly::

    >>> from halluc.text.lemma import lemmatize, lemmatize_tokens, lemmatize_many
    >>> lemmatize("geese", "n"), lemmatize("better", "a"), lemmatize("skiing", "v")
    ('goose', 'good', 'ski')
    >>> lemmatize_tokens("two men are riding skis down a hill".split())   # NLTK's quirks kept
    ['two', 'men', 'be', 'rid', 'ski', 'down', 'a', 'hill']

Tagger: NLTK's own ``PerceptronTagger`` (``nltk.pos_tag``), its English model shipped in
``halluc/assets/nltk_data`` (the JSON model of NLTK 3.9+), which is appended to NLTK's data path:
a model in the user's own NLTK data paths is found first. ``tagger_info()`` names the model and its
sha256, which results record.

Lemmatiser: a re-implementation of NLTK's ``WordNetLemmatizer.lemmatize`` (``min(lemmas, key=len)``
over ``wordnet._morphy(word, pos)``, or the word itself when that is empty; hence "men" -> "men",
both being nouns, and verb "riding" -> "rid" rather than "ride"), with NLTK 3.9+'s morphy:

0. if the word is in the POS's exception list (``noun.exc`` ...), return those of
   ``[word] + exceptions[word]`` that are lemmas of that POS;
1. otherwise apply every suffix rule of the POS once to the word (noun: s, ses, ves, xes, zes,
   ches, shes, men, ies; verb: s, ies, es, ed, ing; adj: er, est; adverbs have none);
2. return those of ``[word] + forms`` that are WordNet lemmas of that POS (possibly none).

Why not NLTK's own: it loads the whole WordNet database first (2 s here, against 0.04 s for the
lemma lists this one reads); the result is the same, lemma by lemma, on every token of every shared
caption log (tests/test_normalize.py compares against NLTK itself; benchmarks/chair_speed.py
measures the difference). (NLTK 3.8, which OPERA's environment pinned, kept applying the rules until
something was found; that differs only on non-words such as "catss", and the published numbers
reproduce with 3.9+.) Adjectives ("a") include satellite adjectives: ``index.adj`` lists both, and
"s" is accepted as a synonym of "a". Data: WordNet 3.0 lemma names and exception lists in
``halluc/assets/wordnet`` (see its README), loaded once on first use.
"""
from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from functools import lru_cache

from halluc.assets import asset_path

__all__ = ["lemmatize", "morphy", "wordnet_pos", "pos_tag", "pos_tag_many",
           "lemmatize_tokens", "lemmatize_many", "tagger_info"]

_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

# nltk.corpus.reader.wordnet.WordNetCorpusReader.MORPHOLOGICAL_SUBSTITUTIONS, in NLTK's order
# (the order decides ties in min(..., key=len)).
_SUBSTITUTIONS = {
    "n": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
          ("shes", "sh"), ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""),
          ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


@lru_cache(maxsize=None)
def _wordnet(pos: str) -> tuple[frozenset[str], dict[str, list[str]]]:
    """(lemma names, exception map) of one POS, read from the bundled files once."""
    name = _FILES[pos]
    with gzip.open(asset_path(f"wordnet/lemmas.{name}.txt.gz"), "rt", encoding="ascii") as f:
        lemmas = frozenset(f.read().split())
    exceptions = {}
    with gzip.open(asset_path(f"wordnet/{name}.exc.gz"), "rt", encoding="ascii") as f:
        for line in f:
            terms = line.split()
            exceptions[terms[0]] = terms[1:]
    return lemmas, exceptions


def _pos_key(pos: str) -> str:
    key = "a" if pos == "s" else pos
    if key not in _FILES:
        raise ValueError(f"unknown WordNet POS {pos!r}: expected one of n, v, a, s, r")
    return key


def morphy(form: str, pos: str) -> list[str]:
    """All base forms of ``form`` that WordNet lists for ``pos`` (NLTK 3.9+ ``_morphy``)."""
    pos = _pos_key(pos)
    lemmas, exceptions = _wordnet(pos)
    rules = _SUBSTITUTIONS[pos]

    def apply_rules(forms: Iterable[str]) -> list[str]:
        # dict.fromkeys drops repeats but keeps first occurrences, which is all the filter
        # below and min() ever look at; it keeps pathological inputs from growing lists.
        return list(dict.fromkeys(f[: -len(old)] + new for f in forms
                                  for old, new in rules if f.endswith(old)))

    def known(forms: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(f for f in forms if f in lemmas))

    if form in exceptions:
        return known([form] + exceptions[form])
    return known([form] + apply_rules([form]))


@lru_cache(maxsize=1 << 17)
def lemmatize(word: str, pos: str = "n") -> str:
    """NLTK ``WordNetLemmatizer().lemmatize(word, pos)``: the shortest base form, or ``word``."""
    lemmas = morphy(word, pos)
    return min(lemmas, key=len) if lemmas else word


def wordnet_pos(tag: str) -> str:
    """Penn Treebank tag -> WordNet POS as OPERA's ``get_wordnet_pos`` (default noun)."""
    return {"J": "a", "V": "v", "N": "n", "R": "r"}.get(tag[:1], "n")


# ---------------------------------------------------------------- tagger (NLTK's, lazy)

TAGGER = "taggers/averaged_perceptron_tagger_eng/"


def nltk_data_dir() -> str:
    """The NLTK data shipped with halluc (the English tagger model)."""
    return str(asset_path("nltk_data"))


@lru_cache(maxsize=1)
def _tagger():
    """NLTK's PerceptronTagger, its model found on NLTK's data path (the user's paths first, then ours)."""
    import nltk.data
    from nltk.tag import PerceptronTagger
    if nltk_data_dir() not in nltk.data.path:
        nltk.data.path.append(nltk_data_dir())
    try:
        return PerceptronTagger()
    except LookupError as e:
        raise RuntimeError(f"NLTK's English tagger model is missing ({TAGGER}): halluc ships it in "
                           f"{nltk_data_dir()}; reinstall halluc") from e


@lru_cache(maxsize=1)
def tagger_info() -> dict:
    """Which tagger model ``pos_tag`` uses: where it was found, the sha256 of its three JSON files, NLTK's version."""
    import hashlib
    import nltk
    tagger = _tagger()
    loc = nltk.data.find(TAGGER)
    h = hashlib.sha256()
    for name in tagger.param_files("eng"):
        with loc.join(name).open() as f:
            h.update(f.read())
    return {"tagger": "nltk.tag.PerceptronTagger (averaged perceptron, eng)", "nltk": nltk.__version__,
            "location": str(loc), "sha256": h.hexdigest()}


def pos_tag_many(token_lists: Iterable[Sequence[str]]) -> list[list[str]]:
    """PTB tags for many pre-tokenised captions (``nltk.pos_tag`` on each, tokens not re-split)."""
    tagger = _tagger()
    return [[tag for _, tag in tagger.tag(list(toks))] for toks in token_lists]


def pos_tag(tokens: Sequence[str]) -> list[str]:
    """PTB tags for one pre-tokenised caption."""
    return pos_tag_many([tokens])[0]


def lemmatize_many(token_lists: Iterable[Sequence[str]]) -> list[list[str]]:
    """Tag each caption's tokens, then lemmatise each token with its WordNet POS."""
    token_lists = [list(t) for t in token_lists]
    return [[lemmatize(w, wordnet_pos(tag)) for w, tag in zip(toks, tags)]
            for toks, tags in zip(token_lists, pos_tag_many(token_lists))]


def lemmatize_tokens(tokens: Sequence[str]) -> list[str]:
    """``lemmatize_many`` for one caption."""
    return lemmatize_many([tokens])[0]
