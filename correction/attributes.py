"""Attribute checkers: is this box's object red, is it small? (Woodpecker asked BLIP-2 on each crop.)

    checker = PixelChecker()
    verdict, seen = checker.check(image, box, "star", "colour", "red", domain)   # ("contradicted", "blue")

Any object with ``check(image, box, name, attribute, value, domain) -> (verdict, observed)`` is a
checker; verdict is supported | contradicted | unverifiable and ``observed`` the value seen (or None).

``PixelChecker`` (the default) reads pixels:
- colour, controlled world (``domain.config`` set): every pixel of the box far enough from the
  background votes for the nearest world colour *as rendered* (pulled towards the background by the
  split's ``contrast``); the majority is the object's colour. Exact on world images.
- colour, other images: the central half of the box, each pixel named by hue/saturation/value in a
  basic palette; the claim holds if its colour covers >= 20 % of those pixels, is contradicted if it
  covers < 5 % while one other colour covers >= 40 %, and is unverifiable in between (real objects
  are many-coloured and lit unevenly).
- size, world: the box side against the midpoint between the world's small and large ranges (times
  the split's ``size_scale``); other images: only extremes decide (< 1 % of the image is small,
  > 40 % is large).
- any other adjective: unverifiable.

``VQAChecker`` wraps a visual question answerer (the protocol ``VQAModel``: ``answer(image, question)
-> str``, e.g. BLIP-2 on the crop) for every attribute, as Woodpecker did; nothing here ships one.
"""
from __future__ import annotations

import colorsys
from typing import Protocol

import numpy as np

from halluc.world.scene import BACKGROUND, COLOURS

# The world draws small objects at 0.45-0.6 of a cell and large ones at 0.75-0.9 (scene._place);
# the midpoint of the gap separates them whatever the jitter.
WORLD_SIZE_SPLIT = (0.6 + 0.75) / 2
BASIC_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray")


class AttributeChecker(Protocol):
    def check(self, image, box, name: str, attribute: str, value: str, domain) -> tuple[str, object]:
        ...


class VQAModel(Protocol):
    def answer(self, image, question: str) -> str:
        """A short free-text answer about ``image`` (a PIL crop)."""
        ...


def world_palette(cfg) -> dict[str, np.ndarray]:
    """The world's colours as ``render`` draws them at the split's contrast."""
    b = np.array(BACKGROUND, dtype=np.float32)
    return {n: b + cfg.contrast * (np.array(c, dtype=np.float32) - b) for n, c in COLOURS.items()}


def _crop(image, box, shrink: float = 0.0) -> np.ndarray:
    """Pixels (n, 3) of a box, optionally its central part (``shrink`` of each side cut away)."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * shrink / 2, (y1 - y0) * shrink / 2
    w, h = image.size
    l, t = max(0, int(round(x0 + dx))), max(0, int(round(y0 + dy)))
    r, b = min(w, int(round(x1 - dx))), min(h, int(round(y1 - dy)))
    if r <= l or b <= t:
        return np.zeros((0, 3), dtype=np.float32)
    return np.asarray(image.crop((l, t, r, b)).convert("RGB"), dtype=np.float32).reshape(-1, 3)


def world_colour(image, box, cfg) -> str | None:
    """Majority nearest rendered world colour among the box's object pixels (None: no object pixels)."""
    pal = world_palette(cfg)
    names, cols = list(pal), np.stack(list(pal.values()))
    px = _crop(image, box)
    bg = np.array(BACKGROUND, dtype=np.float32)
    # Anti-aliased edges and noise sit near the background; keep pixels well away from it.
    far = 0.6 * min(np.linalg.norm(c - bg) for c in cols)
    px = px[np.linalg.norm(px - bg, axis=1) >= far]
    if not len(px):
        return None
    near = np.argmin(((px[:, None, :] - cols[None]) ** 2).sum(-1), axis=1)
    return names[int(np.bincount(near, minlength=len(names)).argmax())]


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
    px = _crop(image, box, shrink=0.5)
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
        cfg = getattr(domain, "config", None)
        if attribute == "colour":
            return self._colour(image, box, value, cfg)
        if attribute == "size":
            return self._size(image, box, value, cfg)
        return "unverifiable", None

    def _colour(self, image, box, value, cfg):
        if cfg is not None:
            seen = world_colour(image, box, cfg)
            if seen is None or value not in COLOURS:
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

    def _size(self, image, box, value, cfg):
        w, h = box[2] - box[0], box[3] - box[1]
        if cfg is not None:
            cell = cfg.cell * image.size[0] / cfg.image_size
            seen = "small" if max(w, h) < WORLD_SIZE_SPLIT * cell * cfg.size_scale else "large"
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
