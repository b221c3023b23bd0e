"""Closed-vocabulary labels -> asked phrases, through a CHAIR synonym table.

    lm = LabelMap(Vocabulary.coco())
    lm.canonical("two men")                          # "person"
    lm.answer([("person", box, 0.9)], ["a man", "dog"])   # [Detection("a man", box, 0.9, "person")]

A YOLO model says "person"; the claim says "man". Both go to the vocabulary's canonical class
(CHAIR's table: first item of a line), and a detection answers every asked phrase of its class.
World-yolo uses the same map with the world's ``synonyms.txt``; oracles with their category names.

A phrase is matched by its longest trailing word sequence that is a synonym ("red car" -> "car",
"teddy bear" -> "teddy bear", not "bear"), tried as written and then with its last word singularised
the way CHAIR does ("dogs" -> "dog"); CHAIR's two-word compounds apply ("baby cat" -> "cat"). A phrase
or label the vocabulary does not know stands for itself, so an exact match still answers.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

from detectors.base import Detection


def _words(text: str) -> list[str]:
    return " ".join(text.lower().replace(".", " ").replace(",", " ").split()).split()


class LabelMap:
    def __init__(self, vocab):
        self.vocab = vocab
        self._memo: dict[str, str | None] = {}

    def canonical(self, text: str) -> str | None:
        """The vocabulary class ``text`` names, or None."""
        if text not in self._memo:
            self._memo[text] = self._lookup(_words(text))
        return self._memo[text]

    def _lookup(self, words: list[str]) -> str | None:
        from halluc.text.singularize import singularize
        canon, compounds = self.vocab.canonical, self.vocab.compounds
        for k in range(len(words), 0, -1):
            tail = words[-k:]
            for cand in (" ".join(tail), " ".join([*tail[:-1], singularize(tail[-1])])):
                cand = compounds.get(cand, cand)
                if cand in canon:
                    return canon[cand]
        return None

    def key(self, text: str) -> str:
        """What two strings must share to answer each other: the class, else the words themselves."""
        return self.canonical(text) or " ".join(_words(text))

    def answer(self, labelled: Iterable[tuple[str, object, float]], phrases: list[str]) -> list[Detection]:
        """(label, box, score) -> one Detection per asked phrase of the label's class."""
        by_key: dict[str, list[str]] = {}
        for p in dict.fromkeys(phrases):           # each distinct phrase once, in asked order
            by_key.setdefault(self.key(p), []).append(p)
        out = []
        for label, box, score in labelled:
            for p in by_key.get(self.key(label), ()):
                out.append(Detection(p, None if box is None else tuple(float(v) for v in box),
                                     float(score), label))
        return out

    def digest(self) -> str:
        """A short hash of the synonym table, for fingerprints (a changed table changes answers)."""
        items = sorted(self.vocab.canonical.items()) + sorted(self.vocab.compounds.items())
        return hashlib.sha256(repr(items).encode()).hexdigest()[:16]


def label_map(synonyms: str | None = None) -> LabelMap:
    """COCO's CHAIR table by default, else a synonyms file (first item per line = canonical)."""
    from halluc.metrics.chair import Vocabulary
    return LabelMap(Vocabulary.coco() if synonyms in (None, "coco") else Vocabulary.from_file(synonyms))
