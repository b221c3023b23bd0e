"""Attribute checkers: is this box's object red, is it small? (Woodpecker asked BLIP-2 on each crop.)

    checker = PixelChecker()
    verdict, seen = checker.check(image, box, "star", "colour", "red", domain)   # ("contradicted", "blue")

Any object with ``check(image, box, name, attribute, value, domain) -> (verdict, observed)`` is a
checker; verdict is supported | contradicted | unverifiable and ``observed`` the value seen (or None).

``PixelChecker`` (the default) reads pixels:
- colour and size, a domain with an exact reader (``domain.attributes``: the controlled world's reads
  its rendered palette and size split, halluc/world/domain.py): that reader decides.
- colour, other images: the central half of the box, each pixel named by hue/saturation/value in a
  basic palette; the claim holds if its colour covers >= 20 % of those pixels, is contradicted if it
  covers < 5 % while one other colour covers >= 40 %, and is unverifiable in between (real objects
  are many-coloured and lit unevenly).
- size, other images: only extremes decide (< 1 % of the image is small, > 40 % is large).
- any other adjective: unverifiable.

``VQAChecker`` wraps a visual question answerer (the protocol ``VQAModel``: ``answer(image, question)
-> str``, e.g. BLIP-2 on the crop) for every attribute, as Woodpecker did; nothing here ships one.
"""
from __future__ import annotations

import colorsys
from typing import Protocol

import numpy as np

BASIC_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray")


class AttributeChecker(Protocol):
    def check(self, image, box, name: str, attribute: str, value: str, domain) -> tuple[str, object]:
        ...


class VQAModel(Protocol):
    def answer(self, image, question: str) -> str:
        """A short free-text answer about ``image`` (a PIL crop)."""
        ...


def crop_pixels(image, box, shrink: float = 0.0) -> np.ndarray:
    """Pixels (n, 3) of a box, optionally its central part (``shrink`` of each side cut away)."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * shrink / 2, (y1 - y0) * shrink / 2
    w, h = image.size
    l, t = max(0, int(round(x0 + dx))), max(0, int(round(y0 + dy)))
    r, b = min(w, int(round(x1 - dx))), min(h, int(round(y1 - dy)))
    if r <= l or b <= t:
        return np.zeros((0, 3), dtype=np.float32)
    return np.asarray(image.crop((l, t, r, b)).convert("RGB"), dtype=np.float32).reshape(-1, 3)


def basic_colour(rgb) -> str:
    """A basic colour name for one RGB pixel, by hue, saturation and value."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    if v < 0.18:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "gray"
    deg = h * 360
    if deg < 15 or deg >= 345:
        return "pink" if s < 0.5 and v > 0.7 else "brown" if v < 0.5 else "red"
    if deg < 40:
        return "brown" if v < 0.6 else "orange"
    if deg < 70:
        return "yellow"
    if deg < 170:
        return "green"
    if deg < 260:
        return "blue"
    if deg < 300:
        return "purple"
    return "pink"


def colour_shares(image, box) -> dict[str, float]:
    px = crop_pixels(image, box, shrink=0.5)
    if not len(px):
        return {}
    q = (px // 16).astype(int)                     # name each distinct 16-level colour once
    keys, counts = np.unique(q, axis=0, return_counts=True)
    tally: dict[str, float] = {}
    for k, n in zip(keys, counts):
        name = basic_colour(k * 16 + 8)
        tally[name] = tally.get(name, 0) + int(n)
    total = sum(tally.values())
    return {k: v / total for k, v in tally.items()}


class PixelChecker:
    name = "pixels"

    def check(self, image, box, name, attribute, value, domain) -> tuple[str, object]:
        if image is None or box is None:
            return "unverifiable", None
        exact = getattr(domain, "attributes", None)
        if attribute == "colour":
            return self._colour(image, box, value, exact)
        if attribute == "size":
            return self._size(image, box, value, exact)
        return "unverifiable", None

    def _colour(self, image, box, value, exact):
        if exact is not None:
            seen = exact.colour(image, box)
            if seen is None or value not in exact.palette:
                return "unverifiable", seen
            return ("supported" if seen == value else "contradicted"), seen
        shares = colour_shares(image, box)
        if not shares or value not in BASIC_COLOURS:
            return "unverifiable", None
        top = max(shares, key=shares.get)
        if shares.get(value, 0) >= 0.2:
            return "supported", value
        if shares.get(value, 0) < 0.05 and shares[top] >= 0.4:
            return "contradicted", top
        return "unverifiable", top

    def _size(self, image, box, value, exact):
        w, h = box[2] - box[0], box[3] - box[1]
        if exact is not None:
            seen = exact.size(image, box)
        else:
            frac = w * h / float(image.size[0] * image.size[1])
            seen = "small" if frac < 0.01 else "large" if frac > 0.4 else None
        if seen is None:
            return "unverifiable", None
        return ("supported" if seen == value else "contradicted"), seen


class VQAChecker:
    """Ask a VQA model about the crop: "what color is the dog?", "is the dog small?"."""
    name = "vqa"

    def __init__(self, model: VQAModel):
        self.model = model

    def check(self, image, box, name, attribute, value, domain) -> tuple[str, object]:
        if image is None or box is None:
            return "unverifiable", None
        crop = image.crop(tuple(int(round(v)) for v in box))
        if attribute == "colour":
            ans = self.model.answer(crop, f"what color is the {name}?").strip().lower()
            if not ans:
                return "unverifiable", None
            return ("supported" if value in ans.split() else "contradicted"), ans.split()[-1]
        ans = self.model.answer(crop, f"is the {name} {value}? answer yes or no.").strip().lower()
        if ans.startswith("yes"):
            return "supported", value
        if ans.startswith("no"):
            return "contradicted", None
        return "unverifiable", None
