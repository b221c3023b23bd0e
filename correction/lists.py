"""Lists in a caption: coordinated noun phrases ("a , b and c"), which the rewriter repairs when it
removes an item. Read from the parse, kept only where nothing but separators stands between items.
"""
from __future__ import annotations

_SEPARATORS = {",", "and", "or", ";"}
_MODIFIER_DEPS = {"compound", "amod", "nmod", "poss"}


def _right_end(doc, h) -> int:
    """End (exclusive) of a noun's prepositional modifiers ("a vase with a flower"); a participle
    ("a knife placed on the left") may describe the whole list, so it is not the item's own."""
    end = h.i + 1
    for c in h.rights:
        if c.dep_ == "prep":
            end = max(end, c.right_edge.i + 1)
    return end


def coordinated_lists(doc, mentions: list) -> list[list[tuple[int, int]]]:
    """Coordinated noun phrases: token spans [start, end) of the items of each list of two or more.

    Items are chains of conj/appos links between noun phrases in the parse, kept only where nothing
    but separators ("," "and" "or") stands between one item (with its prepositional modifiers) and
    the next: the parser's links alone turn "a star , a moon and a ring" into an apposition.
    """
    nps: dict[int, tuple[int, int]] = {}             # np head -> core span
    for ch in doc.noun_chunks:
        nps[ch.root.i] = (ch.start, ch.end)
    phrase_of: dict[int, int] = {}                   # "broccoli" in "pieces of broccoli" -> pieces
    for m in mentions:
        if doc[m.np_head].dep_ in _MODIFIER_DEPS:      # "pizza" in "a pizza box" is inside another phrase
            continue
        for h in [h for h, (s, e) in nps.items() if s <= m.head < e or s <= m.np_head < e]:
            del nps[h]
        nps[m.np_head] = (m.np_start, m.head + 1)
        phrase_of[m.head] = m.np_head
    phrase_of |= {h: h for h in nps}

    def chain(h: int) -> list[int]:                  # the parser hangs conjuncts on either noun
        out = [h]
        for t in {h, *(k for k, v in phrase_of.items() if v == h)}:
            for c in doc[t].children:
                if c.dep_ in ("conj", "appos") and phrase_of.get(c.i) in nps:
                    out += chain(phrase_of[c.i])
        return out

    lists = []
    for h in sorted(nps):
        if doc[h].dep_ in ("conj", "appos") and phrase_of.get(doc[h].head.i) in nps:
            continue                                   # not the first item of its chain
        heads = sorted(chain(h))
        items = []
        for k, g in enumerate(heads):
            s, e = nps[g]
            nxt = nps[heads[k + 1]][0] if k + 1 < len(heads) else None
            ext = _right_end(doc, doc[g])
            e = max(e, ext) if nxt is None or ext <= nxt else e
            if items and not (doc[items[-1][1]:s] and all(t.lower_ in _SEPARATORS for t in doc[items[-1][1]:s])):
                if len(items) > 1:
                    lists.append(items)
                items = []
            items.append((s, e))
        if len(items) > 1:
            lists.append(items)
    return sorted(lists)
