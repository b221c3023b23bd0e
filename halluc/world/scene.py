"""The controlled world: procedurally drawn scenes whose every object, attribute and relation is known.

    cfg = WorldConfig()                       # 64 px, 4x4 grid, 12 shapes, 6 colours, star->moon, cross->ring
    rng = np.random.default_rng(0)
    scene = sample_scene(cfg, rng)            # a Scene: objects with class, colour, size, box
    img = render(scene, cfg, rng)             # a PIL image

Why a grid: a tiny ViT with 16 px patches learns to see one object per patch cell in about a
minute on a CPU, while objects placed anywhere left the prototype tower blind (DESIGN.md §7,
issue notes). Each object sits inside one cell with some jitter, so boxes and relations still vary.

Why hidden partners (the hallucination mechanism): in the training split, a partner that the
co-occurrence rule adds (a moon next to a star) is, with probability ``hidden_partner``, *not
drawn* though the caption and answers still name it — like web captions that mention a
co-occurring object outside the frame or covered. A captioner trained on such data learns
P(moon | star visible, no moon visible) > 0 from language alone, and says "moon" on scenes where a
star is visible and no moon is: object hallucination by co-occurrence, for the reason real VLMs
have it. Evaluation splits never hide anything: their ground truth is exactly what is drawn.

Class frequencies stay equal: the partner rule would make partners the most frequent classes (the
prototype's "hallucinations" were then class frequency, not co-occurrence), so the i.i.d. class
draw is re-weighted (``class_weights``) until every class appears in the same share of scenes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star", "moon", "cross", "ring", "heart", "diamond",
           "hexagon", "arrow", "pentagon")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 230), "yellow": (235, 210, 40),
           "purple": (150, 60, 200), "orange": (245, 140, 30)}
SIZES = ("small", "large")
BACKGROUND = (40, 40, 40)


@dataclass(frozen=True)
class WorldConfig:
    image_size: int = 64
    grid: int = 4                       # grid x grid cells; with 16 px patches one cell = one patch
    min_objects: int = 1
    max_objects: int = 5
    pairs: tuple[tuple[str, str], ...] = (("star", "moon"), ("cross", "ring"))
    pair_prob: float = 0.9              # P(partner added | trigger present)
    hidden_partner: float = 0.0         # P(an added partner is not drawn but still named); train only
    repeat_prob: float = 0.15           # P(an extra copy of a class already present): count claims
    size_scale: float = 1.0             # difficulty knobs: smaller objects,
    contrast: float = 1.0               # colours pulled towards the background,
    noise: float = 0.0                  # and Gaussian pixel noise (std, in 0..255 units)

    @property
    def cell(self) -> int:
        return self.image_size // self.grid

    def partner_of(self) -> dict[str, str]:
        return dict(self.pairs)


@dataclass
class Obj:
    cls: str
    colour: str
    size: str
    box: list[float] | None             # absolute xyxy in pixels; None when hidden
    cell: int | None = None
    visible: bool = True


@dataclass
class Scene:
    id: str
    objects: list[Obj] = field(default_factory=list)

    def visible(self) -> list[Obj]:
        return [o for o in self.objects if o.visible]

    def to_json(self) -> dict:
        return {"id": self.id, "objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_json(cls, d: dict) -> "Scene":
        return cls(d["id"], [Obj(**o) for o in d["objects"]])


# ---------------------------------------------------------------- sampling

def _draw_classes(cfg: WorldConfig, rng: np.random.Generator, weights: np.ndarray) -> list[str]:
    k = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    classes: list[str] = []
    while len(classes) < k:
        if classes and rng.random() < cfg.repeat_prob:
            classes.append(classes[int(rng.integers(len(classes)))])
        else:
            c = CLASSES[int(rng.choice(len(CLASSES), p=weights))]
            if c not in classes:
                classes.append(c)
    return classes


def _apply_pairs(cfg: WorldConfig, rng: np.random.Generator, classes: list[str]) -> list[tuple[str, bool]]:
    """Add partners of triggers (keeping at most max_objects visible); returns (class, added_by_rule)."""
    out = [(c, False) for c in classes]
    for trig, partner in cfg.pairs:
        if trig in classes and partner not in classes and rng.random() < cfg.pair_prob:
            if len(out) >= cfg.max_objects:       # make room: drop an object outside every pair
                free = [i for i, (c, _) in enumerate(out) if all(c not in p for p in cfg.pairs)]
                if not free:
                    continue
                out.pop(free[int(rng.integers(len(free)))])
            out.append((partner, True))
    return out


@lru_cache(maxsize=16)
def class_weights(cfg: WorldConfig, n: int = 4000, iters: int = 6) -> np.ndarray:
    """Draw weights that give every class the same scene frequency after the partner rule.

    Fixed-point iteration on a Monte Carlo estimate with a fixed internal seed: deterministic, and
    independent of the seed that draws a split.
    """
    w = np.full(len(CLASSES), 1.0 / len(CLASSES))
    for _ in range(iters):
        rng = np.random.default_rng(12345)
        counts = np.zeros(len(CLASSES))
        for _ in range(n):
            present = {c for c, _ in _apply_pairs(cfg, rng, _draw_classes(cfg, rng, w))}
            for c in present:
                counts[CLASSES.index(c)] += 1
        freq = counts / n
        w = w * (freq.mean() / np.maximum(freq, 1e-6))
        w /= w.sum()
    return w


def _place(cfg: WorldConfig, rng: np.random.Generator, objs: list[tuple[str, bool]], hidden: list[bool],
           scene_id: str) -> Scene:
    n_vis = sum(not h for h in hidden)
    cells = rng.permutation(cfg.grid * cfg.grid)[:n_vis]
    scene, ci = Scene(scene_id), 0
    for (c, _), hid in zip(objs, hidden):
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        size = SIZES[int(rng.integers(2))]
        if hid:
            scene.objects.append(Obj(c, colour, size, None, None, False))
            continue
        cell = int(cells[ci]); ci += 1
        s = cfg.cell * (rng.uniform(0.45, 0.6) if size == "small" else rng.uniform(0.75, 0.9)) * cfg.size_scale
        r, col = divmod(cell, cfg.grid)
        x0 = col * cfg.cell + rng.uniform(0, cfg.cell - s)
        y0 = r * cfg.cell + rng.uniform(0, cfg.cell - s)
        box = [round(float(v), 2) for v in (x0, y0, x0 + s, y0 + s)]
        scene.objects.append(Obj(c, colour, size, box, cell, True))
    return scene


def sample_scene(cfg: WorldConfig, rng: np.random.Generator, scene_id: str = "0",
                 force: dict[str, bool] | None = None) -> Scene:
    """A natural scene, or one conditioned by ``force`` ({class: must be present (True) / absent (False)})."""
    weights = class_weights(cfg)
    while True:
        objs = _apply_pairs(cfg, rng, _draw_classes(cfg, rng, weights))
        if force:
            objs = _force(cfg, rng, objs, force, weights)
            if objs is None:
                continue
        hidden = [added and rng.random() < cfg.hidden_partner for _, added in objs]
        if sum(not h for h in hidden) == 0:
            continue
        return _place(cfg, rng, objs, hidden, scene_id)


def _force(cfg, rng, objs, force, weights):
    absent = {c for c, keep in force.items() if not keep}
    allowed = [c for c in CLASSES if c not in absent]
    out = []
    for c, added in objs:                    # replace forbidden classes by allowed ones
        if c in absent:
            p = np.array([weights[CLASSES.index(a)] for a in allowed]); p /= p.sum()
            c, added = allowed[int(rng.choice(len(allowed), p=p))], False
        out.append((c, added))
    for c, keep in force.items():
        if keep and c not in [o for o, _ in out]:
            if len(out) >= cfg.max_objects:
                out.pop(int(rng.integers(len(out))))
            out.insert(int(rng.integers(len(out) + 1)), (c, False))
    if any(c in absent for c, _ in out) or not all(c in [o for o, _ in out] for c, k in force.items() if k):
        return None
    return out


# ---------------------------------------------------------------- drawing

def _shape_polygons(cls: str, x0: float, y0: float, s: float) -> list[tuple[str, list]]:
    """Primitives (kind, coords) for a shape in the square (x0, y0, s). Kinds: poly, ellipse, hole."""
    cx, cy, r = x0 + s / 2, y0 + s / 2, s / 2

    def reg(n, rad, rot=-math.pi / 2):
        return [(cx + rad * math.cos(rot + 2 * math.pi * i / n), cy + rad * math.sin(rot + 2 * math.pi * i / n))
                for i in range(n)]
    if cls == "circle":
        return [("ellipse", [x0, y0, x0 + s, y0 + s])]
    if cls == "square":
        m = s * 0.08
        return [("poly", [(x0 + m, y0 + m), (x0 + s - m, y0 + m), (x0 + s - m, y0 + s - m), (x0 + m, y0 + s - m)])]
    if cls == "triangle":
        return [("poly", [(cx, y0), (x0 + s, y0 + s), (x0, y0 + s)])]
    if cls == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.42
            a = -math.pi / 2 + math.pi * i / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return [("poly", pts)]
    if cls == "moon":
        return [("ellipse", [x0, y0, x0 + s, y0 + s]), ("hole", [x0 + s * 0.35, y0 - s * 0.05, x0 + s * 1.2, y0 + s * 0.85])]
    if cls == "cross":
        t = s * 0.17
        return [("poly", [(cx - t, y0), (cx + t, y0), (cx + t, y0 + s), (cx - t, y0 + s)]),
                ("poly", [(x0, cy - t), (x0 + s, cy - t), (x0 + s, cy + t), (x0, cy + t)])]
    if cls == "ring":
        t = s * 0.27
        return [("ellipse", [x0, y0, x0 + s, y0 + s]), ("hole", [x0 + t, y0 + t, x0 + s - t, y0 + s - t])]
    if cls == "heart":
        q = s / 4
        return [("ellipse", [x0, y0 + q * 0.2, cx + q * 0.1, cy + q * 0.4]),
                ("ellipse", [cx - q * 0.1, y0 + q * 0.2, x0 + s, cy + q * 0.4]),
                ("poly", [(x0 + s * 0.04, cy - q * 0.1), (x0 + s * 0.96, cy - q * 0.1), (cx, y0 + s)])]
    if cls == "diamond":
        return [("poly", [(cx, y0), (x0 + s * 0.8, cy), (cx, y0 + s), (x0 + s * 0.2, cy)])]
    if cls == "hexagon":
        return [("poly", reg(6, r, 0))]
    if cls == "pentagon":
        return [("poly", reg(5, r))]
    if cls == "arrow":
        t = s * 0.15
        return [("poly", [(x0, cy - t), (cx, cy - t), (cx, y0 + s * 0.15), (x0 + s, cy), (cx, y0 + s * 0.85),
                          (cx, cy + t), (x0, cy + t)])]
    raise ValueError(f"unknown shape {cls!r}; valid: {', '.join(CLASSES)}")


def render(scene: Scene, cfg: WorldConfig, rng: np.random.Generator | None = None, scale: int = 4) -> Image.Image:
    """Draw at ``scale``x and downsample, so that small shapes keep recognisable anti-aliased edges."""
    S = cfg.image_size * scale
    img = Image.new("RGB", (S, S), BACKGROUND)
    for o in scene.visible():
        rgb = tuple(int(round(b + cfg.contrast * (c - b))) for c, b in zip(COLOURS[o.colour], BACKGROUND))
        x0, y0, x1, _ = (v * scale for v in o.box)
        # One mask per object, so that a cut-out (moon, ring) never erases a neighbour.
        mask = Image.new("L", (S, S), 0)
        d = ImageDraw.Draw(mask)
        for kind, coords in _shape_polygons(o.cls, x0, y0, x1 - x0):
            if kind == "poly":
                d.polygon(coords, fill=255)
            else:
                d.ellipse(coords, fill=0 if kind == "hole" else 255)
        img.paste(rgb, mask=mask)
    img = img.resize((cfg.image_size, cfg.image_size), Image.Resampling.LANCZOS)
    if cfg.noise > 0:
        rng = rng or np.random.default_rng(0)
        a = np.asarray(img, dtype=np.float32) + rng.normal(0, cfg.noise, (cfg.image_size, cfg.image_size, 3))
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return img
