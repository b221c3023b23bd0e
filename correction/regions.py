"""The units of an edit: a ``Region`` of the original text and what replaces it, and the ways one is made
from a parse (a list item, a phrase, a clause, a sentence, re-tokened words, verb agreement).

The rewriter (correction/rewrite.py) decides which regions the verdicts call for and resolves overlaps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from correction.claims import COLOUR_WORDS, Caption, phrase_top
from halluc.text.english import article, case_like, third_person


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


def merge_reasons(*reasons: str) -> str:
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


def sentence_region(cap: Caption, k: int, reason: str) -> Region:
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


def retoken(cap: Caption, changes: dict[int, str], reason: str, sentence: int,
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
    return sentence_region(cap, sent, reason)


def _sent_index(cap: Caption, i: int) -> int:
    idx = cap.doc[i].idx
    return next(k for k, (s, e) in enumerate(cap.sentences) if idx < e or k == len(cap.sentences) - 1)


def remove_unit(cap: Caption, head: int, reason: str) -> Region:
    """Delete the noun phrase headed by token ``head`` with what depends on it."""
    doc = cap.doc
    t = doc[head]
    sent = _sent_index(cap, head)
    if t.dep_ in ("compound", "amod", "nmod") and t.head.i > t.i and t.head.pos_ in ("NOUN", "PROPN"):
        if t.pos_ != "ADJ" or t.lower_ in COLOUR_WORDS:
            # "a pizza box" without the pizza is still a box; "an orange shirt" is still a shirt
            return retoken(cap, {i: "" for i in range(t.left_edge.i, t.i + 1)}, reason, sent,
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


def agree(cap: Caption, head, now_plural: bool, reason: str) -> Region | None:
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
            return retoken(cap, {c.i: case_like(new, c.text)}, reason, _sent_index(cap, c.i)) if new else None
    return None


def list_regions(cap: Caption, items: list[tuple[int, int]], gone: set[int], reasons: dict[int, str]) -> list[Region]:
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
        why = merge_reasons(*(reasons[k] for k in range(i, j + 1)))
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
            r = agree(cap, head, False, "agreement")
            if r:
                out.append(r)
    return out


# ---------------------------------------------------------------- the rewrite

def grounding_text(boxes: list, size) -> str:
    w, h = size
    parts = []
    for b in boxes:
        x0, y0, x1, y1 = b["box"]
        vals = [min(max(v, 0.0), 1.0) for v in (x0 / w, y0 / h, x1 / w, y1 / h)]
        parts.append("[" + ", ".join(f"{v:.2f}" for v in vals) + "]")
    return "(" + ";".join(parts) + ")"
