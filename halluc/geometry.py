"""Spatial relations between boxes (x0, y0, x1, y1; y grows downwards): the one definition the world's
captions, the corrector's verdicts and the negative instructions share.

    dominant_relation(a, b)            # "left of" ...: the dominant axis of the centres' offset
    relation_holds("next to", a, b, cell=16)
    separated_relation(a, b)           # the same, but None unless the boxes do not overlap along it
"""
from __future__ import annotations

import math

AXIS_RELATIONS = ("left of", "right of", "above", "below", "next to")


def centre_offset(a, b) -> tuple[float, float]:
    """(dx, dy) from a's centre to b's."""
    return (b[0] + b[2]) / 2 - (a[0] + a[2]) / 2, (b[1] + b[3]) / 2 - (a[1] + a[3]) / 2


def dominant_relation(a, b) -> str:
    """``a REL b`` along the dominant axis of the centres' offset (ties count as horizontal)."""
    dx, dy = centre_offset(a, b)
    if abs(dx) >= abs(dy):
        return "left of" if dx > 0 else "right of"
    return "above" if dy > 0 else "below"


def relation_holds(rel: str, a, b, cell: float) -> bool:
    """Does ``a REL b`` hold? "next to" means neighbouring cells: centres within 1.5 ``cell``."""
    dx, dy = centre_offset(a, b)
    if rel == "next to":
        return math.hypot(dx, dy) <= 1.5 * cell
    horiz = abs(dx) >= abs(dy)
    return {"left of": horiz and dx > 0, "right of": horiz and dx < 0,
            "above": not horiz and dy > 0, "below": not horiz and dy < 0}.get(rel, False)


def separated_relation(a, b) -> str | None:
    """The dominant relation when a lies entirely on that side of b; None when they overlap along it
    (an instruction should only claim what nobody could dispute)."""
    dx, dy = centre_offset(a, b)
    if abs(dx) >= abs(dy):
        return "left of" if a[2] <= b[0] else "right of" if b[2] <= a[0] else None
    return "above" if a[3] <= b[1] else "below" if b[3] <= a[1] else None
