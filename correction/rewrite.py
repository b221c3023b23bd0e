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
from dataclasses import dataclass, field

from halluc.world.language import article

from correction.claims import COLOUR_WORDS, NUMBER_WORDS, Caption, phrase_top
from correction.inflect import case_like, plural, singular, third_person

_NUMBER = {n: w for w, n in NUMBER_WORDS.items() if w != "dozen"}
_TOKENS = re.compile(r"\w+|\s+|[^\w\s]")
_ENGLISH_RELATION = {"left of": "to the left of", "right of": "to the right of"}      # the world says "left of"


@dataclass
class Region:
    start: int
    end: int
    new: str
    reason: str
    kind: str                          # sentence | delete | list | fix | ground
    sentence: int
    removes: list[tuple[int, int]] = field(default_factory=list)     # original spans that disappear
    sentences: int = 0                 # whole sentences it removes


# ---------------------------------------------------------------- spans

def _chars(doc, a: int, b: int) -> tuple[int, int]:
    """Characters of tokens [a, b]."""
    return doc[a].idx, doc[b].idx + len(doc[b])


def _last(doc, a: int, b: int) -> int:
    """Token ``b`` or before it, leaving out what the parser hung on a phrase but belongs to its
    neighbours: the sentence's final punctuation, and a trailing comma or "and" of an outer list."""
    while b > a and (doc[b].is_space or doc[b].text == "," or doc[b].dep_ == "cc" or doc[b].text in (".", "!", "?")
                     and (b + 1 == len(doc) or doc[b + 1].is_sent_start or doc[b + 1].is_space)):
        b -= 1
    return b


def _merge_reasons(*reasons: str) -> str:
    return "; ".join(dict.fromkeys(p for r in reasons for p in r.split("; ") if p))


def _deletion(text: str, s: int, e: int) -> tuple[int, int]:
    """Grow a deleted span over the spaces and commas that would be left dangling."""
    l, r = s, e
    while l > 0 and text[l - 1] == " ":
        l -= 1
    while r < len(text) and text[r] == " ":
        r += 1
    before, after = text[l - 1:l], text[r:r + 1]
    if before == "," and after in (",", ";"):          # "the dog, sitting there, barks" -> "the dog barks"
        return l - 1, r + 1
    if before == "," and after in (".", "!", "?", ""):
        return l - 1, e
    if after == "," and (l == 0 or text[:l].rstrip()[-1:] in (".", "!", "?", "")):
        r += 1                                          # "On the table, there is" -> "There is"
        while r < len(text) and text[r] == " ":
            r += 1
        return s, r
    if l == 0 or text[l - 1] in "\n(":
        return s, r
    return l, e


def _sentence(cap: Caption, k: int, reason: str) -> Region:
    text = cap.text
    s, e = cap.sentences[k]
    if s == 0 or text[s - 1] == "\n":       # first on its line: take the whitespace after it,
        while e < len(text) and text[e].isspace():
            e += 1
        while e == len(text) and s > 0 and text[s - 1].isspace():     # or before it, at the very end
            s -= 1
    else:
        while s > 0 and text[s - 1] in " \t":
            s -= 1
    return Region(s, e, "", reason, "sentence", k, [(s, e)], 1)


def _retoken(cap: Caption, changes: dict[int, str], reason: str, sentence: int,
             removes: list | None = None) -> Region:
    """Replace tokens (``""`` deletes one) and re-choose "a"/"an" before whatever now follows it."""
    doc = cap.doc
    lo, hi = min(changes), max(changes)
    if lo > 0 and doc[lo - 1].lower_ in ("a", "an"):
        lo -= 1
    words = {i: changes.get(i, doc[i].text) for i in range(lo, hi + 1)}
    for i in range(lo, hi + 1):
        if words[i].lower() in ("a", "an"):
            nxt = next((words.get(j, doc[j].text) for j in range(i + 1, len(doc))
                        if words.get(j, doc[j].text)), None)
            if nxt:
                art = article(nxt.lower())
                words[i] = art.capitalize() if words[i][:1].isupper() else art
    out = "".join(words[i] + doc[i].whitespace_ for i in range(lo, hi + 1) if words[i])
    s, e = _chars(doc, lo, hi)
    if not out.strip():
        s, e = _deletion(cap.text, s, e)
        return Region(s, e, "", reason, "delete", sentence, removes or [(s, e)])
    return Region(s, e, out.rstrip(), reason, "fix", sentence, removes or [])


# ---------------------------------------------------------------- removing an object

def _is_predicate(top, attach) -> bool:
    """Is the phrase at ``top`` what its clause says ("the cup is on the table"), not an extra?"""
    if top.i == attach.i or top.dep_ in ("acomp", "attr", "oprd"):
        return True
    kids = list(attach.children)
    return (attach.lemma_ == "be" and top.dep_ == "prep" and any(c.dep_ in ("nsubj", "nsubjpass") for c in kids)
            and not any(c.dep_ in ("expl", "attr", "acomp") for c in kids))


def _clause(cap: Caption, tok, reason: str) -> Region:
    """Delete the clause ``tok`` belongs to, or its sentence when that is the main clause."""
    doc = cap.doc
    v = tok
    while v.pos_ not in ("VERB", "AUX") and v.dep_ != "ROOT" and v.head.i != v.i:
        v = v.head
    sent = _sent_index(cap, tok.i)
    if v.dep_ in ("relcl", "acl", "advcl") or (v.dep_ == "conj" and v.head.pos_ in ("VERB", "AUX")):
        a = v.left_edge.i
        while a > 0 and (doc[a - 1].dep_ == "cc" or doc[a - 1].text == ",") and doc[a - 1].head.i != v.i:
            a -= 1
        s, e = _deletion(cap.text, *_chars(doc, a, _last(doc, a, v.right_edge.i)))
        return Region(s, e, "", reason, "delete", sent, [(s, e)])
    return _sentence(cap, sent, reason)


def _sent_index(cap: Caption, i: int) -> int:
    idx = cap.doc[i].idx
    return next(k for k, (s, e) in enumerate(cap.sentences) if idx < e or k == len(cap.sentences) - 1)


def _remove_unit(cap: Caption, head: int, reason: str) -> Region:
    """Delete the noun phrase headed by token ``head`` with what depends on it."""
    doc = cap.doc
    t = doc[head]
    sent = _sent_index(cap, head)
    if t.dep_ in ("compound", "amod", "nmod") and t.head.i > t.i and t.head.pos_ in ("NOUN", "PROPN"):
        if t.pos_ != "ADJ" or t.lower_ in COLOUR_WORDS:
            # "a pizza box" without the pizza is still a box; "an orange shirt" is still a shirt
            return _retoken(cap, {i: "" for i in range(t.left_edge.i, t.i + 1)}, reason, sent,
                            [_chars(doc, t.left_edge.i, t.i)])
        t = t.head                                      # "a remote control" is the remote itself
    while t.dep_ == "pobj" and t.head.lower_ == "of" and t.head.head.pos_ == "NOUN" \
            and t.head.head.i not in _mention_heads(cap):
        t = t.head.head                                 # "the presence of these phones" goes whole
    if t.dep_ == "pobj":
        top = phrase_top(t.head)
        attach = top.head
        if _is_predicate(top, attach):
            return _clause(cap, attach, reason)
        s, e = _deletion(cap.text, *_chars(doc, top.left_edge.i, _last(doc, top.left_edge.i, top.right_edge.i)))
        return Region(s, e, "", reason, "delete", sent, [(s, e)])
    if t.dep_ in ("conj", "appos"):
        a = t.left_edge.i
        while a > 0 and (doc[a - 1].dep_ == "cc" or doc[a - 1].text == ","):
            a -= 1
        s, e = _deletion(cap.text, *_chars(doc, a, _last(doc, a, t.right_edge.i)))
        return Region(s, e, "", reason, "delete", sent, [(s, e)])
    return _clause(cap, t, reason)


def _mention_heads(cap: Caption) -> set[int]:
    return {m.np_head for m in cap.mentions} | {m.head for m in cap.mentions}


def _is_plural(cap: Caption, tok) -> bool:
    """Does this noun phrase name several things ("a couple of bowls", "two dogs", "cups"), once
    its count is corrected?"""
    for k, m in enumerate(cap.mentions):
        if m.np_head == tok.i:
            fixed = [c.observed for c in cap.claims if c.kind == "count" and c.mentions == [k]
                     and c.verdict == "contradicted" and isinstance(c.observed, int)]
            return fixed[0] > 1 if fixed else m.plural or m.count not in (None, 1)
    return tok.tag_ in ("NNS", "NNPS") or any(c.dep_ == "nummod" for c in tok.children)


def _verb_form(tok, now_plural: bool) -> str | None:
    """The finite verb ``tok`` agreeing with a subject that is now plural (or singular), or None."""
    w = tok.lower_
    if now_plural:
        if w in ("is", "was"):
            return {"is": "are", "was": "were"}[w]
        return tok.lemma_.lower() if tok.tag_ == "VBZ" else None
    if w in ("are", "were"):
        return {"are": "is", "were": "was"}[w]
    return third_person(tok.lemma_.lower()) if tok.tag_ == "VBP" else None


def _agree(cap: Caption, head, now_plural: bool, reason: str) -> Region | None:
    """Make the verb agree with a subject whose number changed ("a cat and a dog are" -> "a dog is",
    "two dogs sleep" -> "a dog sleeps", "there are two dogs" -> "there is a dog")."""
    if head.dep_ in ("nsubj", "nsubjpass"):
        v = head.head
    elif head.dep_ == "attr" and any(c.dep_ == "expl" for c in head.head.children):
        v = head.head
    else:
        return None
    for c in [*[c for c in v.children if c.dep_ in ("aux", "auxpass") and c.i < v.i], v]:
        if c.tag_ in ("VBP", "VBZ", "VBD", "MD"):          # the finite verb: only it agrees
            new = _verb_form(c, now_plural)
            return _retoken(cap, {c.i: case_like(new, c.text)}, reason, _sent_index(cap, c.i)) if new else None
    return None


def _list_regions(cap: Caption, items: list[tuple[int, int]], gone: set[int], reasons: dict[int, str]) -> list[Region]:
    """Delete list items ``gone`` (indexes), keeping "a, b and c" punctuation right."""
    doc, text = cap.doc, cap.text
    sent = _sent_index(cap, items[0][0])
    spans = [_chars(doc, s, e - 1) for s, e in items]
    seps = [(spans[i][1], spans[i + 1][0]) for i in range(len(spans) - 1)]
    out = []
    runs, i = [], 0
    while i < len(items):
        if i in gone:
            j = i
            while j + 1 < len(items) and j + 1 in gone:
                j += 1
            runs.append((i, j))
            i = j + 1
        else:
            i += 1
    for i, j in runs:
        s, e = (spans[0][0], spans[j + 1][0]) if i == 0 else (seps[i - 1][0], spans[j][1])
        why = _merge_reasons(*(reasons[k] for k in range(i, j + 1)))
        out.append(Region(s, e, "", why, "list", sent, [spans[k] for k in range(i, j + 1)]))
    keep = [i for i in range(len(items)) if i not in gone]
    last_sep = text[seps[-1][0]:seps[-1][1]]
    conj = next((w for w in re.findall(r"\w+", last_sep)), "and")
    comma = next((text[a:b] for a, b in seps if "," in text[a:b] and not re.search(r"\w", text[a:b])), ", ")
    for n, (a, b) in enumerate(zip(keep, keep[1:])):
        s, e = seps[b - 1]
        last = n == len(keep) - 2
        want = (f" {conj} " if len(keep) == 2 else last_sep) if last else comma
        if text[s:e] != want:
            out.append(Region(s, e, want, "list punctuation", "fix", sent))
    if len(keep) == 1:                                  # "a cat and a dog are" -> "a dog is"
        head = doc[items[0][0]:items[0][1]].root
        kept = doc[items[keep[0]][0]:items[keep[0]][1]].root
        if not _is_plural(cap, kept):
            r = _agree(cap, head, False, "agreement")
            if r:
                out.append(r)
    return out


# ---------------------------------------------------------------- the rewrite

def _grounding(boxes: list, size) -> str:
    w, h = size
    parts = []
    for b in boxes:
        x0, y0, x1, y1 = b["box"]
        vals = [min(max(v, 0.0), 1.0) for v in (x0 / w, y0 / h, x1 / w, y1 / h)]
        parts.append("[" + ", ".join(f"{v:.2f}" for v in vals) + "]")
    return "(" + ";".join(parts) + ")"


def plan(cap: Caption, *, grounding: bool = False, image_size=None) -> list[Region]:
    """Every edit the verdicts call for, before overlaps are resolved."""
    doc = cap.doc
    regions: list[Region] = []
    by_mention: dict[int, list] = {}
    for c in cap.claims:
        for k in c.mentions:
            by_mention.setdefault(k, []).append(c)
    absent = {k for k, cs in by_mention.items()
              if any(c.kind == "existence" and c.verdict == "contradicted" for c in cs)}
    reason = {k: next(c.reason for c in by_mention[k] if c.kind == "existence") for k in absent}
    listed: set[int] = set()
    for items in cap.lists:
        gone, why = set(), {}
        for n, (s, e) in enumerate(items):
            heads = [k for k in absent if cap.mentions[k].np_head == doc[s:e].root.i]
            if heads:
                gone.add(n)
                why[n] = reason[heads[0]]
                listed.update(heads)
        if gone and len(gone) < len(items):
            regions += _list_regions(cap, items, gone, why)
        elif gone:                                       # the whole list goes, as one phrase
            regions.append(_remove_unit(cap, doc[items[0][0]:items[0][1]].root.i, _merge_reasons(*why.values())))
    for k in sorted(absent - listed):
        regions.append(_remove_unit(cap, cap.mentions[k].np_head, reason[k]))
    for k, m in enumerate(cap.mentions):
        if k in absent or m.negated:
            continue
        cs = by_mention.get(k, [])
        changes, why = {}, []
        for c in cs:
            if c.kind == "attribute" and c.verdict == "contradicted" and c.observed:
                i = doc.char_span(*c.span).root.i
                changes[i] = case_like(str(c.observed), doc[i].text)
                why.append(f"{c.attribute}: {c.value} claimed, {c.observed} seen")
        count = next((c for c in cs if c.kind == "count" and c.verdict == "contradicted"
                      and isinstance(c.observed, int) and c.observed >= 1), None)
        if count:
            a = doc.char_span(*m.count_span, alignment_mode="expand")
            n = count.observed
            first = a[0]
            changes[first.i] = case_like("a" if n == 1 else _NUMBER.get(n, str(n)), first.text)
            for t in a[1:]:
                changes[t.i] = ""
            head = doc[m.head]
            changes[m.head] = singular(head.text, head.lemma_) if n == 1 else plural(singular(head.text, head.lemma_))
            why.append(f"count: {count.value} claimed, {n} detected")
        if changes:
            regions.append(_retoken(cap, changes, "; ".join(why), m.sentence))
        in_list = any(s <= m.np_head < e for items in cap.lists for s, e in items)
        if count and not in_list:                        # a list's verb agrees with the whole list
            r = _agree(cap, doc[m.np_head], count.observed > 1, "agreement")
            if r:
                regions.append(r)
        if grounding and image_size:
            boxes = next((c.boxes for c in cs if c.kind in ("count", "attribute") and c.boxes
                          and all(b["box"] for b in c.boxes)), None) or \
                next((c.boxes for c in cs if c.kind == "existence" and c.verdict == "supported"), [])
            boxes = [b for b in boxes if b.get("box")]
            if boxes:
                e = m.span[1]
                regions.append(Region(e, e, _grounding(boxes, image_size), "grounding", "ground", m.sentence))
    for c in cap.claims:
        if c.kind != "relation" or c.verdict != "contradicted" or absent & set(c.mentions):
            continue
        if c.observed:
            words = c.observed if cap.domain.world_grammar else _ENGLISH_RELATION.get(c.observed, c.observed)
            regions.append(Region(*c.span, words, f"relation: {c.value} claimed, {c.observed} holds", "fix",
                                  c.sentence))
        else:                                            # nothing to say instead: the relation goes
            regions.append(_remove_unit(cap, cap.mentions[c.mentions[1]].np_head,
                                        f"relation: {c.value} not seen" + (f" ({c.reason})" if c.reason else "")))
    return regions


def _resolve(cap: Caption, regions: list[Region], must_go: list[tuple[tuple[int, int], int]]) -> list[Region]:
    """Non-overlapping regions; a conflict, or a contradicted object left standing, drops its sentence."""
    drops: dict[int, str] = {}
    while True:
        active = [r for r in regions if r.sentence not in drops] + [_sentence(cap, k, why) for k, why in drops.items()]
        active.sort(key=lambda r: (r.start, r.end > r.start, -r.end))
        kept: list[Region] = []
        conflict = None
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
                kept[-1] = Region(prev.start, max(prev.end, r.end), "", _merge_reasons(prev.reason, r.reason),
                                  prev.kind, prev.sentence, prev.removes + r.removes, prev.sentences + r.sentences)
            elif r.sentence in drops:
                continue                                 # cannot happen after a drop; never loop on it
            else:
                conflict = r
                break
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
                first.end, first.reason = max(first.end, nxt.end), _merge_reasons(first.reason, nxt.reason)
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
                last.start, last.reason = min(last.start, prv.start), _merge_reasons(prv.reason, last.reason)
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
