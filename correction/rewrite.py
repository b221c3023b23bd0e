"""Deterministic correction of a caption from its verdicts (DESIGN.md §6 stage 5).

    text, edits, stats = rewrite(cap)                  # cap: a Caption whose claims were verified
    text, edits, stats = rewrite(cap, grounding=True, image_size=(640, 480))   # dog([0.12, 0.30, 0.45, 0.80])

What changes, and nothing else (every other character is kept):
- a contradicted object goes with what only exists because of it: its item in a list (and the list's
  punctuation is repaired: "a , b and c" minus c is "a and b"), its prepositional phrase ("sitting at
  a table"), the clause it is subject or object of ("..., while a cat sleeps"), or its sentence when
  the object carries the main clause ("There is a cat on the sofa.", "the star is left of the moon .");
- a contradicted count becomes the detected number, with number agreement ("two stars" -> "a star",
  "There are two dogs" -> "There is a dog", "a pair of skis" -> "a ski"); so does the verb of a list
  that lost all but one item ("A cat and a dog are" -> "A dog is");
- a contradicted colour or size becomes the value seen ("a red star" -> "a blue star", "a" / "an" fixed);
- a contradicted relation becomes the one that holds ("left of" -> "above") when the boxes say which,
  and is removed like its object otherwise ("the arrow is above the arrow" with one arrow);
- with ``grounding``, each remaining grounded object gets its boxes, normalised to [0, 1]:
  ``star([0.12, 0.30, 0.45, 0.80])``, several instances separated by ";".
Every object found contradicted is checked to be gone afterwards; if an edit missed it (a parse the
rules above do not cover), its sentence is dropped. Capitals at sentence starts are restored.

``edits`` are minimal: each is {op: remove|replace|insert, span: [start, end) in the original text,
old, new, reason}; applying them right to left to the original gives the corrected text.
"""
from __future__ import annotations

import difflib
import re
from correction.claims import NUMBER_WORDS, Caption
from correction.regions import (Region, agree, grounding_text, list_regions, merge_reasons, remove_unit, retoken,
                                sentence_region)
from halluc.text.english import case_like, plural, singular

_NUMBER = {n: w for w, n in NUMBER_WORDS.items() if w != "dozen"}
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]")


def plan(cap: Caption, *, grounding: bool = False, image_size=None) -> list[Region]:
    """Every edit the verdicts call for, before overlaps are resolved: absent objects go, attributes
    and counts are fixed (with agreement), grounding is added, contradicted relations change or go."""
    by_mention: dict[int, list] = {}
    for c in cap.claims:
        for k in c.mentions:
            by_mention.setdefault(k, []).append(c)
    absent = {k for k, cs in by_mention.items()
              if any(c.kind == "existence" and c.verdict == "contradicted" for c in cs)}
    reason = {k: next(c.reason for c in by_mention[k] if c.kind == "existence") for k in absent}
    regions = _absent_regions(cap, absent, reason)
    for k, m in enumerate(cap.mentions):
        if k not in absent and not m.negated:
            regions += _mention_regions(cap, k, by_mention.get(k, []), grounding, image_size)
    return regions + _relation_regions(cap, absent)


def _absent_regions(cap: Caption, absent: set[int], reason: dict[int, str]) -> list[Region]:
    """Absent objects go: from their list (repaired), the whole list as one phrase, or their own unit."""
    doc, regions, listed = cap.doc, [], set()
    for items in cap.lists:
        gone, why = set(), {}
        for n, (s, e) in enumerate(items):
            heads = [k for k in absent if cap.mentions[k].np_head == doc[s:e].root.i]
            if heads:
                gone.add(n)
                why[n] = reason[heads[0]]
                listed.update(heads)
        if gone and len(gone) < len(items):
            regions += list_regions(cap, items, gone, why)
        elif gone:                                       # the whole list goes, as one phrase
            regions.append(remove_unit(cap, doc[items[0][0]:items[0][1]].root.i, merge_reasons(*why.values())))
    for k in sorted(absent - listed):
        regions.append(remove_unit(cap, cap.mentions[k].np_head, reason[k]))
    return regions


def _mention_regions(cap: Caption, k: int, cs: list, grounding: bool, image_size) -> list[Region]:
    """A present mention: its contradicted attributes and count fixed, its verb agreeing, its boxes."""
    doc, m, regions = cap.doc, cap.mentions[k], []
    changes, why = {}, []
    for c in cs:
        if c.kind == "attribute" and c.verdict == "contradicted" and c.observed:
            i = doc.char_span(*c.span).root.i
            changes[i] = case_like(str(c.observed), doc[i].text)
            why.append(f"{c.attribute}: {c.value} claimed, {c.observed} seen")
    count = next((c for c in cs if c.kind == "count" and c.verdict == "contradicted"
                  and isinstance(c.observed, int) and c.observed >= 1), None)
    if count:
        changes |= _recount(cap, m, count.observed)
        why.append(f"count: {count.value} claimed, {count.observed} detected")
    if changes:
        regions.append(retoken(cap, changes, "; ".join(why), m.sentence))
    in_list = any(s <= m.np_head < e for items in cap.lists for s, e in items)
    if count and not in_list:                        # a list's verb agrees with the whole list
        r = agree(cap, doc[m.np_head], count.observed > 1, "agreement")
        if r:
            regions.append(r)
    if grounding and image_size:
        boxes = next((c.boxes for c in cs if c.kind in ("count", "attribute") and c.boxes
                      and all(b["box"] for b in c.boxes)), None) or \
            next((c.boxes for c in cs if c.kind == "existence" and c.verdict == "supported"), [])
        boxes = [b for b in boxes if b.get("box")]
        if boxes:
            e = m.span[1]
            regions.append(Region(e, e, grounding_text(boxes, image_size), "grounding", "ground", m.sentence))
    return regions


def _recount(cap: Caption, m, n: int) -> dict[int, str]:
    """Token changes that make a mention name ``n`` objects: the number word, and the noun's number."""
    doc = cap.doc
    a = doc.char_span(*m.count_span, alignment_mode="expand")
    first = a[0]
    changes = {first.i: case_like("a" if n == 1 else _NUMBER.get(n, str(n)), first.text)}
    for t in a[1:]:
        changes[t.i] = ""
    head = doc[m.head]
    one = singular(head.text, head.lemma_, cap.domain.nouns)
    changes[m.head] = one if n == 1 else plural(one)
    return changes


def _relation_regions(cap: Caption, absent: set[int]) -> list[Region]:
    regions = []
    for c in cap.claims:
        if c.kind != "relation" or c.verdict != "contradicted" or absent & set(c.mentions):
            continue
        if c.observed:
            words = cap.domain.relation_words.get(c.observed, c.observed)
            regions.append(Region(*c.span, words, f"relation: {c.value} claimed, {c.observed} holds", "fix",
                                  c.sentence))
        else:                                            # nothing to say instead: the relation goes
            regions.append(remove_unit(cap, cap.mentions[c.mentions[1]].np_head,
                                       f"relation: {c.value} not seen" + (f" ({c.reason})" if c.reason else "")))
    return regions


def _resolve(cap: Caption, regions: list[Region], must_go: list[tuple[tuple[int, int], int]]) -> list[Region]:
    """Non-overlapping regions; a conflict, or a contradicted object left standing, drops its sentence."""
    drops: dict[int, str] = {}
    while True:
        active = [r for r in regions if r.sentence not in drops] + [sentence_region(cap, k, why) for k, why in drops.items()]
        active.sort(key=lambda r: (r.start, r.end > r.start, -r.end))
        kept, conflict = _non_overlapping(active, drops)
        if conflict is not None:
            drops[conflict.sentence] = conflict.reason
            continue
        gone = [s for r in kept for s in r.removes]
        left = [(span, k) for span, k in must_go if not any(a <= span[0] and span[1] <= b for a, b in gone)
                and k not in drops]
        if not left:
            return _trim_ends(cap.text, kept)
        for span, k in left:
            drops.setdefault(k, f"no {cap.text[span[0]:span[1]]} detected")


def _non_overlapping(active: list[Region], drops: dict) -> tuple[list[Region], Region | None]:
    """One pass over sorted regions: nested deletions merge, overlapping deletions join, and the first
    region that cannot coexist with the ones kept is returned as the conflict."""
    kept: list[Region] = []
    for r in active:
        prev = kept[-1] if kept else None
        if prev is not None and r.start == r.end and not prev.new and prev.start < r.start <= prev.end:
            continue                                 # grounding of a word a deletion took
        if prev is None or r.start >= prev.end:
            kept.append(r)
        elif not prev.new and prev.start <= r.start and r.end <= prev.end:
            continue                                 # inside a deletion
        elif not r.new and r.start <= prev.start and prev.end <= r.end:
            while kept and r.start <= kept[-1].start and kept[-1].end <= r.end:
                kept.pop()
            kept.append(r)
        elif not r.new and not prev.new and r.end > r.start:     # overlapping deletions: one deletion
            kept[-1] = Region(prev.start, max(prev.end, r.end), "", merge_reasons(prev.reason, r.reason),
                              prev.kind, prev.sentence, prev.removes + r.removes, prev.sentences + r.sentences)
        elif r.sentence in drops:
            continue                                 # cannot happen after a drop; never loop on it
        else:
            return kept, r
    return kept, None


def _trim_ends(text: str, kept: list[Region]) -> list[Region]:
    """Deletions at the very start (end) of the text join the deletions that follow (precede) them
    across whitespace, and take that whitespace, so the text does not start (end) with a blank."""
    def deletion(r):
        return not r.new and r.end > r.start

    if kept and deletion(kept[0]) and kept[0].start == 0:
        first = kept[0]
        while True:
            while first.end < len(text) and text[first.end].isspace():
                first.end += 1
            if len(kept) > 1 and deletion(kept[1]) and kept[1].start <= first.end:
                nxt = kept.pop(1)
                first.end, first.reason = max(first.end, nxt.end), merge_reasons(first.reason, nxt.reason)
                first.removes, first.sentences = first.removes + nxt.removes, first.sentences + nxt.sentences
                continue
            break
    if kept and deletion(kept[-1]) and kept[-1].end == len(text):
        last = kept[-1]
        while True:
            while last.start > 0 and text[last.start - 1].isspace():
                last.start -= 1
            if len(kept) > 1 and deletion(kept[-2]) and kept[-2].end >= last.start:
                prv = kept.pop(-2)
                last.start, last.reason = min(last.start, prv.start), merge_reasons(prv.reason, last.reason)
                last.removes, last.sentences = prv.removes + last.removes, prv.sentences + last.sentences
                continue
            break
    return kept


def rewrite(cap: Caption, *, grounding: bool = False, image_size=None) -> tuple[str, list[dict], dict]:
    """(corrected text, edits, {"sentences_removed": n}) for a verified caption."""
    text = cap.text
    absent = [c for c in cap.claims if c.kind == "existence" and c.verdict == "contradicted" and c.mentions]
    must_go = [(cap.mentions[c.mentions[0]].span, c.sentence) for c in absent]
    regions = _resolve(cap, plan(cap, grounding=grounding, image_size=image_size), must_go)
    _recapitalise(cap, regions)
    pieces, pos = [], 0
    for r in regions:
        pieces += [text[pos:r.start], r.new]
        pos = r.end
    pieces.append(text[pos:])
    edits = [e for r in regions for e in _minimal(text, r)]
    return "".join(pieces), edits, {"sentences_removed": sum(r.sentences for r in regions)}


def _recapitalise(cap: Caption, regions: list[Region]) -> None:
    """A sentence whose first word was removed starts with a capital again."""
    text = cap.text
    for s, e in cap.sentences:
        if not text[s:s + 1].isupper():
            continue
        r = next((r for r in regions if r.start <= s < r.end or r.start == s), None)
        if r is None or r.kind == "sentence":
            continue
        if r.new:
            r.new = r.new[0].upper() + r.new[1:]
            continue
        nxt = next((q for q in regions if q.start == r.end and q.end > q.start), None)
        if nxt is not None and nxt.new:
            nxt.new = nxt.new[0].upper() + nxt.new[1:]
        elif r.end < len(text) and text[r.end].islower():
            r.new, r.end = text[r.end].upper(), r.end + 1


def _minimal(text: str, r: Region) -> list[dict]:
    """A region's change as word-level edits on the original text."""
    old = text[r.start:r.end]
    if not old or not r.new:
        return [{"op": "insert" if not old else "remove", "span": [r.start, r.end], "old": old, "new": r.new,
                 "reason": r.reason}]
    a, b = _TOKENS.findall(old), _TOKENS.findall(r.new)
    offs = [0]
    for t in a:
        offs.append(offs[-1] + len(t))
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        s, e = r.start + offs[i1], r.start + offs[i2]
        new = "".join(b[j1:j2])
        out.append({"op": "insert" if s == e else "remove" if not new else "replace", "span": [s, e],
                    "old": text[s:e], "new": new, "reason": r.reason})
    return out
