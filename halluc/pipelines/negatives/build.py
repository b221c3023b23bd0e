"""The generation: every image's records, in the exact shares the configuration asks for.

    records, summary = generate(load_coco("instances.json"), NegConfig(neg_ratio=0.5, seed=0))

Slots (negative / description / positive) are apportioned over all images x per_image exactly and
shuffled with the seed; families and absent-object samplings likewise. A negative an image cannot give
(in its family or, failing that, another) is owed: the next positive slot of an image that can give it
takes it. Within an image no question-answer pair repeats while a fresh one can be found.
"""
from __future__ import annotations

import re
from collections import Counter

from halluc.pipelines.negatives.maker import Maker
from halluc.pipelines.negatives.phrasing import EnglishLang
from halluc.pipelines.negatives.sampler import NegConfig, Plan
from halluc.pipelines.negatives.sources import Source


def generate(src: Source, cfg: NegConfig = NegConfig()) -> tuple[list[dict], dict]:
    """Records and a summary. Deterministic in the source, the configuration and its seed."""
    import numpy as np                   # here, not at the top: building the CLI's parser stays light
    rng = np.random.default_rng(cfg.seed)
    anns = src.annotations[:cfg.limit] if cfg.limit is not None else list(src.annotations)
    lang = src.lang if src.lang is not None else EnglishLang()
    filler = Filler(Maker(src, lang, rng), cfg, rng)
    plan = Plan.draw(len(anns), cfg, rng)
    records = filler.fill(anns, plan)
    finish(records, src, lang)
    return records, summarize(records, len(anns), filler, src)


class Filler:
    """Fills the slots image by image: a negative of the slot's family and sampling (another family
    when the image cannot give it), a description, or a positive of a weighted random kind."""

    def __init__(self, mk: Maker, cfg: NegConfig, rng):
        self.mk, self.cfg, self.rng = mk, cfg, rng
        self.owed: list[tuple[str, str]] = []      # negatives an image could not give: a later positive slot takes them
        self.fallbacks = Counter()
        self.kinds = [k for k, w in cfg.positives if w > 0]
        import numpy as np
        self.weights = np.array([w for _, w in cfg.positives if w > 0], dtype=float)

    def fill(self, anns: list, plan: Plan) -> list[dict]:
        records: list[dict] = []
        per, k_neg = self.cfg.per_image, 0
        for n_img, ann in enumerate(anns):
            seen: set[tuple[str, str]] = set()
            for slot in plan.slots[n_img * per:(n_img + 1) * per]:
                if slot == "negative":
                    rec = self._negative_slot(ann, plan.families[k_neg], plan.samplings[k_neg], seen)
                    k_neg += 1
                elif slot == "description":
                    rec = self._fresh(lambda: self.mk.description(ann), seen, 2) or self.mk.description(ann)
                else:
                    rec = self._positive_slot(ann, seen)
                seen.add((rec["question"], rec["answer"]))
                records.append(rec)
        return records

    def _negative_slot(self, ann, family: str, sampling: str, seen) -> dict:
        rec = self._negative(ann, family, sampling, seen)
        if rec is None:
            self.owed.append((family, sampling))
            rec = self._positive(ann, seen)
        return rec

    def _positive_slot(self, ann, seen) -> dict:
        rec = None
        if self.owed:
            rec = self._negative(ann, *self.owed[0], seen)
            if rec is not None:
                self.owed.pop(0)
        return rec or self._positive(ann, seen)

    @staticmethod
    def _fresh(make, seen, tries=4):
        """A record whose question and answer this image has not had yet (None after ``tries``)."""
        for _ in range(tries):
            rec = make()
            if rec is None or (rec["question"], rec["answer"]) not in seen:
                return rec
        return None

    def _negative(self, ann, family: str, sampling: str, seen):
        for ff in [family] + [x for x, w in self.cfg.families if x != family and w > 0]:
            rec = self._fresh(lambda: self.mk.negative(ann, ff, sampling), seen)
            if rec is not None:
                self.fallbacks[f"{family}->{ff}"] += ff != family
                return rec
        return None

    def _positive(self, ann, seen):
        # kinds in a weighted random order (without replacement): the first one the image can give wins
        import numpy as np
        keys = self.rng.random(len(self.kinds)) ** (1.0 / self.weights)
        kinds = [self.kinds[int(i)] for i in np.argsort(-keys)]
        for k in kinds:
            rec = self._fresh(lambda: self.mk.positive(ann, k), seen, 3)
            if rec is not None:
                return rec
        for k in kinds:                                 # every positive asked already: repeat one
            rec = self.mk.positive(ann, k)
            if rec is not None:
                return rec
        return self.mk.description(ann)


def messages(q: str, a: str) -> list[dict]:
    """The conversational form TRL's ``SFTTrainer`` takes."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]},
            {"role": "assistant", "content": [{"type": "text", "text": a}]}]


def finish(records: list[dict], src: Source, lang) -> None:
    """Checks each record against the phrasing's rules; adds its id, TRL's fields and the source kind."""
    for i, r in enumerate(records):
        lang.check(r)
        iid = re.split(r"[\\/]", str(r["image_id"]))[-1]        # an image id that is a path: no path in the id
        r["id"] = f"{src.name}/{iid}/{i}"
        r["messages"] = messages(r["question"], r["answer"])
        r["images"] = [r["image"]]
        r["source"] = src.kind


def summarize(records: list[dict], n_images: int, filler: Filler, src: Source) -> dict:
    by = lambda key: dict(sorted(Counter(r[key] for r in records).items()))
    negs = sum(r["polarity"] == "negative" for r in records)
    return {"images": n_images, "records": len(records), "negatives": negs,
            "neg_ratio": round(negs / len(records), 4) if records else 0.0,
            "descriptions": sum(r["family"] == "description" for r in records),
            "by_task": by("task"), "by_subtype": by("subtype"),
            "unfilled_negatives": len(filler.owed), "family_fallbacks": dict(filler.fallbacks),
            "skipped_annotations": len(src.bad)}
