"""How ``halluc negatives`` says its questions and answers in plain English (COCO, Visual Genome).

    L = EnglishLang()
    L.exist_q("dog", rng)           # "Is there a dog in the image?" (or one of two other forms)
    L.count_claim_a("cat", 3, 2)    # "No, there are two cats, not three."

A phrasing is also what the generator asks about a domain's own rules: which relation two boxes
are in (``relation``), which claimed relation contradicts the truth (``wrong_relation``), which
attribute values exist (``attr_values``), how an image is described (``description``) and what every
record must satisfy (``check``). A source with rules of its own (the controlled world) brings a
phrasing with the same methods as ``Source.lang``.
"""
from __future__ import annotations

from collections import Counter

from halluc.geometry import separated_relation
from halluc.pipelines.negatives.sources import COLOURS_EN, SIZES_EN
from halluc.text.english import NUMBERS as ENGLISH_NUMBERS
from halluc.text.english import article, plural

NUMBERS = ENGLISH_NUMBERS[:11]                     # number words up to ten; larger counts are digits
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above", "on": "under",
            "under": "on", "on top of": "under", "in front of": "behind", "behind": "in front of",
            "to the left of": "to the right of", "to the right of": "to the left of"}


def pick(rng, options):
    """One of ``options``, drawn with the generator's one integer draw."""
    return options[int(rng.integers(len(options)))]


class EnglishLang:
    """Plain English for COCO and Visual Genome (LRV's answers are sentences)."""
    describe = "Describe the image briefly."
    premise_attributes = ("colour", "size")        # what a false premise about an object may presuppose
    size_opposites = SIZES_EN                      # a wrong size is the opposite one (VG's sizes are free-form)

    # ------------------------------------------------------------ the domain's rules

    def relation(self, a, b) -> str | None:
        """``a REL b`` from two boxes, or None when nobody could be sure of it."""
        return separated_relation(a, b)

    def wrong_relation(self, a, truth: str, b, rng) -> str | None:
        """A relation between the two boxes that contradicts ``truth``: the opposite side cannot hold."""
        return OPPOSITE[truth]

    def attr_values(self, kind: str) -> tuple[str, ...]:
        return tuple(c for c in COLOURS_EN if c != "grey") if kind == "colour" else tuple(SIZES_EN)

    def description(self, ann, rng) -> str:
        """One of the image's captions, else (VG without regions) a list of its objects."""
        if ann.captions:
            return pick(rng, ann.captions)
        counts = Counter(o.name for o in ann.objects)
        items = [f"{article(c)} {c}" if n == 1 else f"{self.num(n)} {plural(c)}" for c, n in sorted(counts.items())]
        return "The image shows " + (items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]) + "."

    def check(self, rec: dict) -> None:
        """Any sentence will do."""

    # ------------------------------------------------------------ words

    def pl(self, c):
        return plural(c)

    def num(self, n):
        return NUMBERS[n] if n < len(NUMBERS) else str(n)

    def exist_q(self, c, rng):
        return pick(rng, (f"Is there {article(c)} {c} in the image?", f"Can you see {article(c)} {c} in this image?",
                          f"Does the image contain {article(c)} {c}?"))

    def exist_a(self, c, present):
        return f"Yes, there is {article(c)} {c} in the image." if present else f"No, there is no {c} in the image."

    def attr_q(self, c, value, rng):
        return f"Is the {c} {value}?"

    def attr_a(self, c, claimed, truth):
        return f"Yes, the {c} is {truth}." if claimed == truth else f"No, the {c} is not {claimed}; it is {truth}."

    def colour_q(self, c, rng):
        return f"What color is the {c}?"

    def colour_a(self, c, colour):
        return f"The {c} is {colour}."

    def count_q(self, c, rng):
        return f"How many {self.pl(c)} are there in the image?"

    def count_a(self, c, n):
        return f"There is one {c}." if n == 1 else f"There are {self.num(n)} {self.pl(c)}."

    def count_claim_q(self, c, n, rng):
        return f"Is there one {c} in the image?" if n == 1 else f"Are there {self.num(n)} {self.pl(c)} in the image?"

    def count_claim_a(self, c, claimed, truth):
        if claimed == truth:
            return f"Yes, {'there is one ' + c if truth == 1 else 'there are ' + self.num(truth) + ' ' + self.pl(c)}."
        return f"No, there {'is one ' + c if truth == 1 else 'are ' + self.num(truth) + ' ' + self.pl(c)}, not {self.num(claimed)}."

    def rel_q(self, a, rel, b, rng):
        return f"Is the {a} {rel} the {b}?"

    def rel_a(self, a, claimed, truth, b):
        return f"Yes, the {a} is {truth} the {b}." if claimed == truth else f"No, the {a} is {truth} the {b}."

    def premise_absent_q(self, c, rng):
        return pick(rng, (f"What color is the {c} in the image?", f"What is the {c} in the image doing?",
                          f"Where is the {c} in this image?"))

    def premise_absent_a(self, c):
        return f"There is no {c} in the image, so the question does not apply."

    def premise_attr_q(self, c, value, kind, rng):
        return f"Why is the {c} {value}?"

    def premise_attr_a(self, c, value, truth, kind):
        return f"The {c} is not {value}; it is {truth}."

    def premise_rel_q(self, a, rel, b, rng):
        return f"Why is the {a} {rel} the {b}?"

    def premise_rel_a(self, a, rel, truth, b):
        return f"The {a} is not {rel} the {b}; it is {truth} the {b}."

    def premise_category_q(self, c, wrong, rng):
        return f"What kind of {wrong} is the {c} in the image?"

    def premise_category_a(self, c, wrong, truth):
        return f"The {c} is not a kind of {wrong}; it is a kind of {truth}."
