"""AMBER's generative task: CHAIR, Cover, Hal and Cog of image descriptions, computed as AMBER's
reference scorer (``inference.py``, junyangwang0410/AMBER) computes them.

    judge = Judge(association(), safe_words(), similar=None)   # similar: None = exact matching only
    r = judge.score(extract_nouns(text), annotation(1))
    r.nouns, r.hallucinated, r.truth_covered, r.hallu_covered

Per description, as the reference does:

1. nouns: ``nltk.word_tokenize`` (no lower-casing), ``nltk.pos_tag``, the WordNet noun lemma of each
   NN* token (halluc.text's NLTK-identical tokenizer, tagger and lemmatiser); only nouns that are an
   object or an association word of ``relation.json`` are kept.
2. each kept noun, in order: a safe word (``safe_words.txt``) is skipped (counted, never hallucinated);
   a word standing for a truth object (the object itself or one of its association words) covers that
   object and is not hallucinated; otherwise a word standing for a ``hallu`` object covers that one
   (Cog), then, with a vector model, the first ``hallu`` word and the first truth word similar to it
   (spaCy similarity > 0.8) are covered as well, the latter also clearing the noun; every noun not
   cleared is a hallucination.
3. "the object a word stands for" follows the reference's list bookkeeping: the candidate words are
   every object's association words in object order, then the objects themselves, and the *first*
   candidate equal to the noun decides. So an object listed twice in ``truth`` can only ever be
   covered once, and a truth object that is also another truth object's association word is credited
   to that other object when the association comes first.

Totals (percent): CHAIR = hallucinated nouns / kept nouns; Cover = covered truth objects / truth
objects; Hal = descriptions with any hallucination / descriptions; Cog = covered ``hallu`` objects /
``hallu`` objects. Without a vector model the similarity checks are skipped, which is the reference
with "similar" meaning "equal": every one of those checks then either finds a word already matched
exactly or none (the scores are marked approximate by the caller).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SIMILARITY = 0.8            # the reference's --similarity_score default


def extract_nouns(text: str) -> list[str]:
    """The WordNet noun lemmas of the NN* tokens of ``text``, in order (case kept, as the reference)."""
    from halluc.text.lemma import lemmatize, pos_tag
    from halluc.text.tokenize import word_tokenize
    tokens = word_tokenize(text)
    return [lemmatize(w, "n") for w, tag in zip(tokens, pos_tag(tokens)) if tag.startswith("NN")]


@dataclass(frozen=True)
class Candidates:
    """The words that stand for a list of objects: association words of each object in object order,
    then the objects; ``owner[j]`` is the object position word j stands for."""
    words: tuple[str, ...]
    owner: tuple[int, ...]
    first: dict[str, int]           # word -> its first position in ``words``

    @classmethod
    def build(cls, objects: Sequence[str], association: dict[str, list[str]]) -> "Candidates":
        words, owner = [], []
        for i, obj in enumerate(objects):
            words += association[obj]
            owner += [i] * len(association[obj])
        words += objects
        owner += range(len(objects))
        first: dict[str, int] = {}
        for j, w in enumerate(words):
            first.setdefault(w, j)
        return cls(tuple(words), tuple(owner), first)


@dataclass
class Scored:
    """One description: its kept nouns, which of them are hallucinated, which objects it covered."""
    nouns: list[str]
    hallucinated: list[bool]
    truth_covered: list[bool]
    hallu_covered: list[bool]
    compared: int = 0               # similarity checks made (0 without a vector model)


class Judge:
    """Scores descriptions against AMBER's annotations; ``similar(noun, word)`` is the synonym check
    (None: exact matching only)."""

    def __init__(self, association: dict[str, list[str]], safe_words: Sequence[str],
                 similar: Callable[[str, str], bool] | None = None):
        self.association = association
        self.vocabulary = set(association) | {w for ws in association.values() for w in ws}
        self.safe = set(safe_words)
        self.similar = similar

    def score(self, nouns: Sequence[str], ann: dict) -> Scored:
        truth = Candidates.build(ann["truth"], self.association)
        hallu = Candidates.build(ann["hallu"], self.association)
        kept = [n for n in nouns if n in self.vocabulary]
        res = Scored(kept, [False] * len(kept), [False] * len(ann["truth"]), [False] * len(ann["hallu"]))
        for k, noun in enumerate(kept):
            if noun in self.safe:
                continue
            if noun in truth.first:
                res.truth_covered[truth.owner[truth.first[noun]]] = True
                continue
            if noun in hallu.first:
                res.hallu_covered[hallu.owner[hallu.first[noun]]] = True
            if self.similar is not None:
                j = self._first_similar(noun, hallu.words, res)
                if j is not None:
                    res.hallu_covered[hallu.owner[j]] = True
                j = self._first_similar(noun, truth.words, res)
                if j is not None:                 # a synonym of a truth word: covered, not hallucinated
                    res.truth_covered[truth.owner[j]] = True
                    continue
            res.hallucinated[k] = True
        return res

    def _first_similar(self, noun: str, words: Sequence[str], res: Scored) -> int | None:
        for j, w in enumerate(words):
            res.compared += 1
            if self.similar(noun, w):
                return j
        return None


# ---------------------------------------------------------------- the synonym check (spaCy vectors)

class SpacySimilarity:
    """The reference's ``check_synonyms_word``: ``nlp(a).similarity(nlp(b)) > 0.8`` with a spaCy model
    that has word vectors (AMBER uses en_core_web_lg). Docs are cached: the same word gives the same doc."""

    def __init__(self, spec: str, threshold: float = SIMILARITY):
        from halluc.errors import BadInput
        try:
            import spacy
            self.nlp = spacy.load(spec)
        except (OSError, ImportError, ValueError) as e:
            raise BadInput(f"--spacy-model {spec}: cannot load it as a spaCy model ({' '.join(str(e).split())[:200]})") \
                from None
        if self.nlp.vocab.vectors.shape[0] == 0:
            raise BadInput(f"--spacy-model {spec}: the model has no word vectors (AMBER uses en_core_web_lg)")
        self.threshold = threshold
        self._docs: dict = {}
        self._pairs: dict = {}
        meta = self.nlp.meta
        self.info = {"model": f"{meta.get('lang', '')}_{meta.get('name', '')}", "version": meta.get("version"),
                     "path": spec, "vectors": list(self.nlp.vocab.vectors.shape), "threshold": threshold}

    def _doc(self, word: str):
        if word not in self._docs:
            self._docs[word] = self.nlp(word)
        return self._docs[word]

    def __call__(self, a: str, b: str) -> bool:
        if (a, b) not in self._pairs:
            with warnings.catch_warnings():          # the reference silences spaCy's empty-vector warnings too
                warnings.simplefilter("ignore", UserWarning)
                self._pairs[(a, b)] = self._doc(a).similarity(self._doc(b)) > self.threshold
        return self._pairs[(a, b)]
