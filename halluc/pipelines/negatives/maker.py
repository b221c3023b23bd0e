"""One instruction of a given kind for one image: a positive (existence, attribute, count, relation),
a description, or a negative of one of LRV's families -- or None when the image cannot give it.

    mk = Maker(src, lang, rng)
    mk.positive(ann, "count"), mk.description(ann), mk.negative(ann, "existent", "random")

Every claim is read from the annotation; a negative's claim contradicts it and its answer states the
truth. The words come from ``lang`` (English, or the source's own phrasing).
"""
from __future__ import annotations

from halluc.pipelines.negatives.phrasing import OPPOSITE
from halluc.pipelines.negatives.sampler import TASKS, AbsentObjects
from halluc.pipelines.negatives.sources import Instance, Source


class Maker:
    """Makes one instruction of a kind for one image, or None when the image cannot give it."""

    def __init__(self, src: Source, lang, rng):
        self.src, self.lang, self.rng = src, lang, rng
        self.absent = AbsentObjects(src)

    def choice(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    def _rec(self, ann, q, a, polarity, family, subtype, claim):
        task = TASKS[family] if polarity == "negative" else ("description" if family == "description" else family)
        return {"image_id": ann.image_id, "image": ann.image, "question": q, "answer": a, "task": task,
                "polarity": polarity, "family": family, "subtype": subtype, "claim": claim}

    # ------------------------------------------------------------ objects and relations

    def _relations(self, ann) -> list[tuple[int, str, int]]:
        """Unambiguous (a, rel, b) facts between single-instance classes."""
        singles = set(ann.singles())
        if ann.relations:                                    # explicit (VG)
            return [(a, r, b) for a, r, b in ann.relations if a in singles and b in singles
                    and ann.objects[a].name != ann.objects[b].name]
        out = []
        for i in singles:
            for j in singles:
                if i == j or ann.objects[i].box is None or ann.objects[j].box is None:
                    continue
                r = self.lang.relation(ann.objects[i].box, ann.objects[j].box)
                if r:
                    out.append((i, r, j))
        return out

    def _wrong_relation(self, ann, i, truth, j) -> str | None:
        if ann.relations:                                    # VG: only a known opposite contradicts
            opp = OPPOSITE.get(truth)
            return opp if opp and (i, opp, j) not in ann.relations else None
        return self.lang.wrong_relation(ann.objects[i].box, truth, ann.objects[j].box, self.rng)

    def _wrong_attr(self, inst: Instance, kind: str) -> str | None:
        truth = getattr(inst, kind)
        if truth is None:
            return None
        if kind == "size" and self.lang.size_opposites is not None:
            return self.lang.size_opposites.get(truth)
        have = set(inst.attributes) | {truth}
        options = [v for v in self.lang.attr_values(kind) if v not in have]
        return self.choice(options) if options else None

    def _wrong_relations(self, ann) -> list[tuple[int, str, int, str]]:
        rels = [(i, r, j, self._wrong_relation(ann, i, r, j)) for i, r, j in self._relations(ann)]
        return [x for x in rels if x[3]]

    def _countable(self, ann) -> list[str]:
        """Classes with no crowd annotation and a count the phrasing can say."""
        return [c for c in sorted(ann.names()) if not any(o.crowd for o in ann.objects if o.name == c)
                and self.lang.num(ann.count(c)) is not None]

    # ------------------------------------------------------------ positives

    def positive(self, ann, kind):
        L, rng = self.lang, self.rng
        if kind == "existence":
            c = self.choice(sorted(ann.names()))
            return self._rec(ann, L.exist_q(c, rng), L.exist_a(c, True), "positive", "existence", "existence",
                             {"kind": "existence", "object": c, "claimed": True, "truth": True})
        if kind == "attribute":
            options = [(i, k) for i in ann.singles() for k in ("colour", "size") if getattr(ann.objects[i], k)]
            if not options:
                return None
            i, k = self.choice(options)
            o = ann.objects[i]
            v = getattr(o, k)
            if k == "colour" and rng.random() < 0.5:
                q, a = L.colour_q(o.name, rng), L.colour_a(o.name, v)
            else:
                q, a = L.attr_q(o.name, v, rng), L.attr_a(o.name, v, v)
            return self._rec(ann, q, a, "positive", "attribute", k,
                             {"kind": "attribute", "object": o.name, "attribute": k, "claimed": v, "truth": v})
        if kind == "count":
            options = self._countable(ann)
            if not options:
                return None
            c = self.choice(options)
            n = ann.count(c)
            if rng.random() < 0.5:
                q, a = L.count_q(c, rng), L.count_a(c, n)
            else:
                q, a = L.count_claim_q(c, n, rng), L.count_claim_a(c, n, n)
            return self._rec(ann, q, a, "positive", "count", "count",
                             {"kind": "count", "object": c, "claimed": n, "truth": n})
        if kind == "relation":
            rels = self._relations(ann)
            if not rels:
                return None
            i, r, j = self.choice(rels)
            a, b = ann.objects[i].name, ann.objects[j].name
            return self._rec(ann, L.rel_q(a, r, b, rng), L.rel_a(a, r, r, b), "positive", "relation", "relation",
                             {"kind": "relation", "object": a, "other": b, "claimed": r, "truth": r})
        raise ValueError(kind)

    def description(self, ann):
        return self._rec(ann, self.lang.describe, self.lang.description(ann, self.rng), "positive", "description",
                         "description", {"kind": "description", "objects": sorted(ann.names())})

    # ------------------------------------------------------------ negatives

    def negative(self, ann, family, sampling):
        L, rng = self.lang, self.rng
        if family == "nonexistent":
            got = self.absent.choose(ann, sampling, self.choice)
            if got is None:
                return None
            c, sub = got
            return self._rec(ann, L.exist_q(c, rng), L.exist_a(c, False), "negative", "nonexistent", sub,
                             {"kind": "existence", "object": c, "claimed": True, "truth": False})
        if family == "existent":
            kinds = ["attribute", "count", "relation"]
            for k in [kinds[int(i)] for i in rng.permutation(3)]:
                rec = self._existent(ann, k)
                if rec:
                    return rec
            return None
        if family == "knowledge":
            kinds = ["absent", "attribute", "relation", "category"]
            for k in [kinds[int(i)] for i in rng.permutation(4)]:
                rec = self._knowledge(ann, k, sampling)
                if rec:
                    return rec
            return None
        raise ValueError(family)

    def _existent(self, ann, kind):
        L, rng = self.lang, self.rng
        if kind == "attribute":
            options = [(i, k) for i in ann.singles() for k in ("colour", "size") if self._wrong_attr(ann.objects[i], k)]
            if not options:
                return None
            i, k = self.choice(options)
            o = ann.objects[i]
            v, truth = self._wrong_attr(o, k), getattr(o, k)
            return self._rec(ann, L.attr_q(o.name, v, rng), L.attr_a(o.name, v, truth), "negative", "existent", k,
                             {"kind": "attribute", "object": o.name, "attribute": k, "claimed": v, "truth": truth})
        if kind == "count":
            options = self._countable(ann)
            if not options:
                return None
            c = self.choice(options)
            n = ann.count(c)
            wrong = [m for m in (n - 2, n - 1, n + 1, n + 2) if m >= 1 and L.num(m) is not None]
            if not wrong:
                return None
            m = self.choice(wrong)
            return self._rec(ann, L.count_claim_q(c, m, rng), L.count_claim_a(c, m, n), "negative", "existent", "count",
                             {"kind": "count", "object": c, "claimed": m, "truth": n})
        rels = self._wrong_relations(ann)
        if not rels:
            return None
        i, r, j, w = self.choice(rels)
        a, b = ann.objects[i].name, ann.objects[j].name
        return self._rec(ann, L.rel_q(a, w, b, rng), L.rel_a(a, w, r, b), "negative", "existent", "relation",
                         {"kind": "relation", "object": a, "other": b, "claimed": w, "truth": r})

    def _knowledge(self, ann, kind, sampling):
        L, rng = self.lang, self.rng
        if kind == "absent":
            got = self.absent.choose(ann, sampling, self.choice)
            if got is None:
                return None
            c, sub = got
            return self._rec(ann, L.premise_absent_q(c, rng), L.premise_absent_a(c), "negative", "knowledge",
                             f"premise_absent_{sub}", {"kind": "existence", "object": c, "claimed": True, "truth": False})
        if kind == "attribute":
            # the world asks "what color is the large star ?" (size presupposed); English "why is the car red?"
            options = [(i, kk) for i in ann.singles() for kk in L.premise_attributes
                       if self._wrong_attr(ann.objects[i], kk)]
            if not options:
                return None
            i, kk = self.choice(options)
            o = ann.objects[i]
            v, truth = self._wrong_attr(o, kk), getattr(o, kk)
            return self._rec(ann, L.premise_attr_q(o.name, v, kk, rng), L.premise_attr_a(o.name, v, truth, kk),
                             "negative", "knowledge", "premise_attribute",
                             {"kind": "attribute", "object": o.name, "attribute": kk, "claimed": v, "truth": truth})
        if kind == "relation":
            rels = self._wrong_relations(ann)
            if not rels:
                return None
            i, r, j, w = self.choice(rels)
            a, b = ann.objects[i].name, ann.objects[j].name
            return self._rec(ann, L.premise_rel_q(a, w, b, rng), L.premise_rel_a(a, w, r, b), "negative", "knowledge",
                             "premise_relation", {"kind": "relation", "object": a, "other": b, "claimed": w, "truth": r})
        return self._category(ann)

    def _category(self, ann):
        """A false premise: a COCO object put in the wrong supercategory."""
        L, rng = self.lang, self.rng
        sup = self.src.supercategory
        options = [c for c in sorted(ann.names()) if c in sup]
        supers = sorted(set(sup.values()))
        if not options or len(supers) < 2:
            return None
        c = self.choice(options)
        wrong = self.choice([s for s in supers if s != sup[c]])
        q = L.premise_category_q(c, wrong, rng)
        if q is None:
            return None
        return self._rec(ann, q, L.premise_category_a(c, wrong, sup[c]), "negative", "knowledge", "premise_category",
                         {"kind": "category", "object": c, "claimed": wrong, "truth": sup[c]})
