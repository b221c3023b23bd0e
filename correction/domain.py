"""What the corrector knows about the captions and images it is given: a ``Domain``.

    dom = Domain.coco()                        # CHAIR's COCO table, English grammar, generic pixel reading
    dom = Domain.from_synonyms("syn.txt")      # another vocabulary
    # a plug-in domain (the controlled world: halluc/world/domain.py) fills in its own knowledge

The general corrector never imports a domain's code; a plug-in hands its knowledge in here:
``exact_grammar`` (captions in a closed grammar, where "a star" claims exactly one and each instance
is described once), ``nouns`` (its own plural -> singular table), ``relation_words`` (how a relation
is written back), ``attributes`` (an exact reader of colour and size from pixels) and ``cell`` (the
grid cell in image pixels, which defines "next to").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

# How the rewriter writes a relation in plain English; a closed grammar may write it bare.
ENGLISH_RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of"}


class AttributeReader(Protocol):
    palette: tuple[str, ...]                       # the colour names it can tell apart

    def colour(self, image, box) -> str | None:
        ...

    def size(self, image, box) -> str | None:
        ...


@dataclass
class Domain:
    name: str
    chair: Any                                     # halluc.metrics.chair.Chair (vocabulary + normaliser)
    exact_grammar: bool = False
    nouns: dict[str, str] = field(default_factory=dict)
    relation_words: dict[str, str] = field(default_factory=lambda: dict(ENGLISH_RELATION_WORDS))
    attributes: AttributeReader | None = None
    cell: Callable[[Any], float] | None = None     # image -> grid cell side in pixels

    @classmethod
    def coco(cls, variant: str = "singularize") -> "Domain":
        from halluc.metrics.chair import Chair, Vocabulary
        return cls("coco", Chair(Vocabulary.coco(), variant))

    @classmethod
    def from_synonyms(cls, path: str, variant: str = "singularize") -> "Domain":
        from halluc.metrics.chair import Chair, Vocabulary
        return cls(str(path), Chair(Vocabulary.from_file(path), variant))
