"""Verdicts on claims from detector evidence (DESIGN.md §6 stages 3-4).

    dets = detector.detect(image, needed_phrases(cap), image_id=rec["image_id"])
    verify(cap, dets, image=image)                 # sets claim.verdict / observed / boxes / reason
    rec["evidence"] = evidence_json(detector, dets, image.size)

- existence: a detection of the object's phrase supports it; none contradicts it (the detector
  alone decides, as in Woodpecker).
- attribute: the checker (``correction.attributes``, pixels by default) looks at each box of the
  object; the mention's attributes are judged on the instance that matches most of them (the world
  metric's rule), and a contradicted one is told that instance's value.
- count: the number of boxes whose attributes match the mention's (corrected) ones, or all boxes
  of the object when nothing about them could be checked. Vague counts ("several") and detectors
  without boxes (``oracle:coco`` gives one answer per object, not per instance) leave it unverifiable.
- relation: some pair of instances must satisfy the geometry: left of / right of / above / below /
  next to as ``halluc.geometry`` defines them (the dominant axis of the centres' offset; next to =
  centres within 1.5 grid cells, where the cell is the domain's grid cell, else the larger box's
  side; beside and near as next to), on / under by vertical order with horizontal overlap; behind /
  in front of need depth and stay unverifiable; one instance cannot stand in a relation to itself.
  A contradicted left of / right of / above / below / next to is told what holds instead
  (``geometry.dominant_relation``) when every pair of instances agrees.
- captions in a closed grammar (``Domain.exact_grammar``) describe each instance once: mentions of
  one object take its instances in turn, the best-matching mention first; a mention left with none
  is contradicted.
A claim about an object that is not there is contradicted with it; without boxes (box=None),
attribute and relation claims are unverifiable.
"""
from __future__ import annotations

from halluc.geometry import AXIS_RELATIONS as RELATIONS
from halluc.geometry import dominant_relation, relation_holds

from correction.attributes import PixelChecker
from correction.claims import SEVERAL, Caption

_AS_NEXT_TO = {"next to", "beside", "near"}
_DEPTH = {"behind", "in front of"}


def needed_phrases(cap: Caption) -> list[str]:
    """The distinct phrases a caption's claims need the detector to look for."""
    return list(dict.fromkeys(m.name for m in cap.mentions if not m.negated))


def _box_json(d) -> dict:
    return {"box": None if d.box is None else [round(float(v), 2) for v in d.box], "score": round(float(d.score), 4)}


def evidence_json(detector, dets, image_size) -> dict:
    boxes: dict[str, list] = {}
    for d in dets:
        boxes.setdefault(d.phrase, []).append({**_box_json(d), **({"label": d.label} if d.label else {})})
    return {"detector": getattr(detector, "name", type(detector).__name__),
            "fingerprint": detector.fingerprint() if hasattr(detector, "fingerprint") else {},
            "image_size": list(image_size) if image_size else None, "boxes": boxes}


def holds(rel: str, a, b, cell: float) -> bool | None:
    """Does box a stand in ``rel`` to box b? None: boxes cannot tell (depth)."""
    if rel in _DEPTH:
        return None
    if rel in _AS_NEXT_TO or rel in RELATIONS:
        return relation_holds("next to" if rel in _AS_NEXT_TO else rel, a, b, cell)
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    if overlap < 0.3 * min(a[2] - a[0], b[2] - b[0]):
        return False
    top, bottom = (a, b) if rel == "on" else (b, a)          # "a on b": a rests on top of b
    return (top[1] + top[3]) / 2 < (bottom[1] + bottom[3]) / 2 and top[3] >= bottom[1] - 0.1 * (bottom[3] - bottom[1])


def verify(cap: Caption, dets: list, *, image=None, checker=None) -> None:
    """Set verdicts of all claims of ``cap`` from the detections of one image."""
    v = _Verifier(cap, dets, image, checker or PixelChecker())
    present, gone = v.existence()
    chosen = v.instances(present, gone)
    for c in cap.claims:
        if c.kind == "relation":
            _relation(c, cap, chosen, gone, image)


class _Verifier:
    """The evidence of one caption's image, and the verdicts read from it, step by step."""

    def __init__(self, cap: Caption, dets: list, image, checker):
        self.cap, self.image, self.checker = cap, image, checker
        self.by_name: dict[str, list] = {}
        for d in dets:
            self.by_name.setdefault(d.phrase, []).append(d)
        self.by_mention: dict[int, list] = {}           # claims of each mention
        for c in cap.claims:
            for k in c.mentions:
                self.by_mention.setdefault(k, []).append(c)
        self.seen: dict[tuple, tuple[str, object]] = {}  # (detection, attribute, value) -> (verdict, observed)
        self.decisions: dict[int, tuple[list, list]] = {}  # mention -> (its boxes, attribute claims they decide)

    def observe(self, d, c):
        key = (id(d), c.attribute, c.value)
        if key not in self.seen:
            self.seen[key] = self.checker.check(self.image, d.box, c.objects[0], c.attribute, c.value, self.cap.domain)
        return self.seen[key]

    def existence(self) -> tuple[list[int], dict[int, str]]:
        """Existence verdicts; the mentions found present, and those that describe nothing (and why)."""
        present, gone = [], {}
        for k, m in enumerate(self.cap.mentions):
            if m.negated:
                continue
            found = self.by_name.get(m.name, [])
            for c in self.by_mention.get(k, []):
                if c.kind == "existence":
                    c.verdict = "supported" if found else "contradicted"
                    c.boxes = [_box_json(d) for d in found]
                    c.reason = "" if found else f"no {m.name} detected"
                elif c.kind in ("count", "attribute") and not found:
                    c.verdict, c.reason = "contradicted", f"no {m.name} detected"
            if found:
                present.append(k)
            else:
                gone[k] = f"no {m.name} detected"
        return present, gone

    def decided(self, k: int) -> tuple[list, list]:
        if k not in self.decisions:
            geometry = [d for d in self.by_name[self.cap.mentions[k].name] if d.box is not None]
            self.decisions[k] = geometry, [c for c in self.by_mention.get(k, []) if c.kind == "attribute"
                                           and any(self.observe(d, c)[0] != "unverifiable" for d in geometry)]
        return self.decisions[k]

    def score(self, d, claims) -> int:
        return sum(self.observe(d, c)[0] == "supported" for c in claims)

    def best_score(self, k: int) -> int:
        geometry, checked = self.decided(k)
        return max([self.score(d, checked) for d in geometry] or [0])

    def instances(self, present: list[int], gone: dict[int, str]) -> dict[int, list]:
        """The instances each present mention is about; its attribute and count verdicts.

        Captions in a closed grammar describe each instance once ("a red star , a blue star"): there,
        mentions take instances one after the other, the best-matching mention first, and a mention
        left without any is contradicted. Elsewhere "a dog ... the brown dog" may name one dog twice."""
        cap, exact = self.cap, self.cap.domain.exact_grammar
        if exact:
            present = sorted(present, key=lambda k: (cap.mentions[k].definite, -self.best_score(k), k))
        chosen: dict[int, list] = {}
        taken: set[int] = set()
        for k in present:
            m, claims = cap.mentions[k], self.by_mention.get(k, [])
            geometry, checked = self.decided(k)
            assign = exact and not m.definite and bool(checked)
            pool = [d for d in geometry if id(d) not in taken] if assign else geometry
            if assign and not pool:
                gone[k] = f"every {m.name} detected is described by another mention"
                for c in claims:
                    c.verdict, c.reason = "contradicted", gone[k]
                continue
            match = self.matching(pool, checked)
            if assign:
                taken.update(id(d) for d in match)
            chosen[k] = match if checked else geometry
            self.judge(k, claims, geometry, checked, match, chosen[k])
        return chosen

    def matching(self, pool: list, checked: list) -> list:
        """The instances that satisfy every checked attribute, else those that look like the best one."""
        match = [d for d in pool if self.score(d, checked) == len(checked)]
        if not match and checked:
            best = max(pool, key=lambda d: self.score(d, checked))
            looks = lambda d: tuple(self.observe(d, c)[1] for c in checked)      # noqa: E731
            match = [d for d in pool if looks(d) == looks(best)]
        return match

    def judge(self, k: int, claims: list, geometry: list, checked: list, match: list, instances: list) -> None:
        for c in claims:
            if c.kind == "attribute":
                if c not in checked:
                    c.reason = "no boxes" if not geometry else f"{getattr(self.checker, 'name', 'checker')} cannot tell"
                    continue
                # Judged on the best-matching instance, as the world metric does: "a large red star"
                # is wrong about something when the scene has a large blue and a small red one.
                c.verdict, value = self.observe(match[0], c)
                c.boxes = [_box_json(d) for d in match]
                if c.verdict == "contradicted":
                    c.observed = value
            elif c.kind == "count":
                _count(c, self.cap, k, geometry, checked, instances)


def _count(c, cap: Caption, k: int, geometry: list, checked: list, instances: list) -> None:
    m = cap.mentions[k]
    others = [j for j, o in enumerate(cap.mentions) if j != k and o.name == m.name and not o.negated and not o.definite]
    if c.value == SEVERAL:
        c.reason = "vague quantity"
    elif not geometry:
        c.reason = "the detector gives no instances"
    elif not checked and others and any(c2.kind == "attribute" and c2.attribute in ("colour", "size")
                                        for c2 in cap.claims if k in c2.mentions):
        c.reason = "other mentions of the object; attributes not checkable"
    else:
        n = len(instances)
        c.verdict, c.observed = ("supported" if n == c.value else "contradicted"), n
        c.boxes = [_box_json(d) for d in instances]


def _relation(c, cap: Caption, chosen: dict, gone: dict, image) -> None:
    a, b = c.mentions
    if a in gone or b in gone:
        c.verdict, c.reason = "contradicted", gone.get(a) or gone[b]
        return
    if not chosen.get(a) or not chosen.get(b):
        c.reason = "no boxes"
        return
    if c.value in _DEPTH:
        c.reason = "depth cannot be read from boxes"
        return
    grid = cap.domain.cell
    pairs = [(da, db) for da in chosen[a] for db in chosen[b] if da is not db]
    if not pairs:
        c.verdict, c.reason = "contradicted", f"only one {cap.mentions[a].name}"
        return
    ok = []
    for da, db in pairs:
        cell = (grid(image) if grid is not None and image is not None
                else max(da.box[2] - da.box[0], da.box[3] - da.box[1], db.box[2] - db.box[0], db.box[3] - db.box[1]))
        if holds(c.value, da.box, db.box, cell):
            ok.append((da, db))
    if ok:
        c.verdict, c.boxes = "supported", [_box_json(d) for d in ok[0]]
        return
    c.verdict, c.boxes = "contradicted", [_box_json(d) for d in pairs[0]]
    if c.value in RELATIONS:                     # what holds instead, when every pair agrees on it
        held = {dominant_relation(da.box, db.box) for da, db in pairs}
        if len(held) == 1:
            c.observed = held.pop()
