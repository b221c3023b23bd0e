"""What ``halluc negatives`` asks, and how often: the configuration, the exact apportionment of
slots to negatives, descriptions and positives (and of negatives to families and samplings), and the
choice of an absent object (random, popular, adversarial).

    cfg = NegConfig(neg_ratio=0.5, families=parse_weights("nonexistent=2,existent=1", FAMILIES, "families"))
    quota(10, [("a", 2.0), ("b", 1.0)])       # ['a', 'a', 'a', 'a', 'a', 'a', 'a', 'b', 'b', 'b']
    plan = Plan.draw(n_images, cfg, rng)      # shuffled slots, families and samplings
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from halluc.pipelines.negatives.sources import Source, cooccurrence

FAMILIES = ("nonexistent", "existent", "knowledge")
SAMPLINGS = ("random", "popular", "adversarial")
TASKS = {"nonexistent": "nonexistent_object", "existent": "existent_object", "knowledge": "knowledge_manipulation"}
POSITIVE_KINDS = ("existence", "attribute", "count", "relation")


@dataclass(frozen=True)
class NegConfig:
    neg_ratio: float = 0.5                 # negatives / all records
    caption_share: float = 0.2             # descriptions / all records (positives)
    per_image: int = 4                     # records per image
    families: tuple[tuple[str, float], ...] = (("nonexistent", 1.0), ("existent", 1.0), ("knowledge", 1.0))
    sampling: tuple[tuple[str, float], ...] = (("random", 1.0), ("popular", 1.0), ("adversarial", 1.0))
    positives: tuple[tuple[str, float], ...] = (("existence", 1.0), ("attribute", 1.0), ("count", 1.0),
                                                ("relation", 1.0))
    seed: int = 0
    limit: int | None = None               # only the first N images

    def __post_init__(self):
        if not 0 <= self.neg_ratio <= 1 or not 0 <= self.caption_share <= 1 or self.neg_ratio + self.caption_share > 1:
            raise ValueError(f"neg_ratio {self.neg_ratio} and caption_share {self.caption_share}: each in [0, 1], "
                             "summing to at most 1")
        if self.per_image < 1:
            raise ValueError(f"per_image {self.per_image}: must be >= 1")
        for what, table, valid in (("families", self.families, FAMILIES), ("sampling", self.sampling, SAMPLINGS),
                                   ("positives", self.positives, POSITIVE_KINDS)):
            for k, w in table:
                if k not in valid:
                    raise ValueError(f"{what}: unknown {k!r}; valid: {', '.join(valid)}")
                if w < 0:
                    raise ValueError(f"{what}: weight of {k} is negative")
            if not any(w > 0 for _, w in table):
                raise ValueError(f"{what}: at least one needs a positive weight")


def parse_weights(spec: str, valid: tuple[str, ...], what: str) -> tuple[tuple[str, float], ...]:
    """"a,b" or "a=2,b=1" -> ((a, w), ...); unknown names are an error naming the valid ones."""
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        k, _, w = part.partition("=")
        k = k.strip()
        if k not in valid:
            raise ValueError(f"--{what} {spec}: unknown {k!r}; valid: {', '.join(valid)}")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ValueError(f"--{what} {spec}: weight of {k} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"--{what} {spec}: weight of {k} must be a finite number >= 0")
        out.append((k, weight))
    if not out:
        raise ValueError(f"--{what}: give at least one of {', '.join(valid)}")
    return tuple(out)


def quota(total: int, weights: list[tuple[str, float]]) -> list[str]:
    """Largest-remainder apportionment of ``total`` slots to weighted names."""
    ws = [(k, w) for k, w in weights if w > 0]
    s = sum(w for _, w in ws)
    exact = [(k, total * w / s) for k, w in ws]
    n = {k: int(math.floor(x)) for k, x in exact}
    rest = total - sum(n.values())
    for k, x in sorted(exact, key=lambda kx: (-(kx[1] - math.floor(kx[1])), [a for a, _ in ws].index(kx[0])))[:rest]:
        n[k] += 1
    return [k for k, _ in ws for _ in range(n[k])]


@dataclass
class Plan:
    """Every record's slot (negative / description / positive) over all images x per_image, and each
    negative's family and sampling: exact counts, shuffled with the seed."""
    slots: list[str]
    families: list[str]
    samplings: list[str]

    @classmethod
    def draw(cls, n_images: int, cfg: NegConfig, rng) -> "Plan":
        total = n_images * cfg.per_image
        n_neg = round(cfg.neg_ratio * total)
        n_cap = round(cfg.caption_share * total)
        slots = ["negative"] * n_neg + ["description"] * n_cap + ["positive"] * (total - n_neg - n_cap)
        rng.shuffle(slots)
        fam = quota(n_neg, list(cfg.families))
        rng.shuffle(fam)
        samp = quota(n_neg, list(cfg.sampling))
        rng.shuffle(samp)
        return cls(slots, fam, samp)


class AbsentObjects:
    """Chooses an object class an image does not show: at random, among the most frequent, or -- the
    adversarial case -- a planted partner of a present class, else one that co-occurs with the present
    classes in the annotations."""

    def __init__(self, src: Source):
        self.freq, self.cooc = cooccurrence(src.annotations)
        self.partners: dict[str, list[str]] = {}
        for t, p in src.pairs:
            self.partners.setdefault(t, []).append(p)
        self.vocab = [c for c in src.vocabulary if self.freq[c] > 0] or list(src.vocabulary)

    def choose(self, ann, sampling: str, choice) -> tuple[str, str] | None:
        """(class, subtype) or None when this image has no absent class of that sampling."""
        present = ann.names()
        absent = [c for c in self.vocab if c not in present]
        if not absent:
            return None
        if sampling == "random":
            return choice(absent), "random"
        if sampling == "popular":
            top = sorted(absent, key=lambda c: (-self.freq[c], c))[:3]
            return choice(top), "popular"
        planted = sorted({p for c in present for p in self.partners.get(c, []) if p not in present})
        if planted:
            return choice(planted), "adversarial"
        score = {c: sum(self.cooc.get(p, Counter())[c] for p in present) for c in absent}
        top = [c for c in sorted(absent, key=lambda c: (-score[c], c))[:3] if score[c] > 0]
        return (choice(top), "adversarial") if top else None
