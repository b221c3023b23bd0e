"""The controlled world as a plug-in domain: it recognises its records and hands the corrector, the
metrics and the viewer what it knows (vocabulary, grammar, palette, size split, grid).

    PLUGIN.recognises({"id": "world-bias/200001"})        # True: ids world-*, or images inside a split
    dom = world_domain("~/.cache/halluc/world/v1-.../bias-n300-s0")   # the split's config and synonyms
    vocabulary()                                           # CHAIR's table for the world's classes

Registered in ``halluc.registry`` (kind ``domain``); the general code reaches it only through
``halluc.domains``.
"""
from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from correction.attributes import crop_pixels
from correction.domain import Domain
from halluc.world.language import SINGULAR
from halluc.world.scene import BACKGROUND, COLOURS, WorldConfig

# The world draws small objects at 0.45-0.6 of a cell and large ones at 0.75-0.9 (scene._place);
# the midpoint of the gap separates them whatever the jitter.
SIZE_SPLIT = (0.6 + 0.75) / 2


def vocabulary():
    """The world's builtin CHAIR table (every generated split's ``synonyms.txt``), no compounds."""
    from halluc.metrics.chair import Vocabulary
    from halluc.world.generate import synonyms_text
    return Vocabulary(Vocabulary.parse_synonyms(synonyms_text()), {}, name="world")


class WorldAttributes:
    """Colour and size read exactly off a world image, for one split's config."""

    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        self.palette = tuple(COLOURS)
        b = np.array(BACKGROUND, dtype=np.float32)
        # The colours as ``render`` draws them at the split's contrast (pulled towards the background).
        self.rendered = {n: b + cfg.contrast * (np.array(c, dtype=np.float32) - b) for n, c in COLOURS.items()}

    def colour(self, image, box) -> str | None:
        """Majority nearest rendered colour among the box's object pixels (None: no object pixels)."""
        names, cols = list(self.rendered), np.stack(list(self.rendered.values()))
        px = crop_pixels(image, box)
        bg = np.array(BACKGROUND, dtype=np.float32)
        # Anti-aliased edges and noise sit near the background; keep pixels well away from it.
        far = 0.6 * min(np.linalg.norm(c - bg) for c in cols)
        px = px[np.linalg.norm(px - bg, axis=1) >= far]
        if not len(px):
            return None
        near = np.argmin(((px[:, None, :] - cols[None]) ** 2).sum(-1), axis=1)
        return names[int(np.bincount(near, minlength=len(names)).argmax())]

    def size(self, image, box) -> str:
        """The box side against the midpoint between the small and large ranges (times size_scale)."""
        w, h = box[2] - box[0], box[3] - box[1]
        return "small" if max(w, h) < SIZE_SPLIT * self.cell(image) * self.cfg.size_scale else "large"

    def cell(self, image) -> float:
        return self.cfg.cell * image.size[0] / self.cfg.image_size


def domain(config: WorldConfig | None = None, synonyms: str | None = None, variant: str = "singularize") -> Domain:
    """The corrector's view of the world: its vocabulary (a split's synonyms.txt, or the builtin classes),
    its closed grammar, and with a config, its exact palette, size split and grid."""
    from halluc.metrics.chair import Chair, Vocabulary
    vocab = Vocabulary.from_file(synonyms) if synonyms else vocabulary()
    attrs = WorldAttributes(config) if config is not None else None
    return Domain("world", Chair(vocab, variant), exact_grammar=True, nouns=SINGULAR, relation_words={},
                  attributes=attrs, cell=attrs.cell if attrs else None)


@lru_cache(maxsize=64)
def world_domain(split_dir: str | None = None, variant: str = "singularize") -> Domain:
    """The world's domain with a split folder's config (contrast, size scale, grid) and synonyms."""
    if split_dir is None:
        return domain(WorldConfig(), variant=variant)
    from halluc.errors import BadInput
    from halluc.paths import read_json
    d = Path(split_dir)
    meta = read_json(d / "meta.json", "world split meta") if (d / "meta.json").exists() else {}
    if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
        raise BadInput(f"{d / 'meta.json'}: expected an object with a 'config' object")
    known = {f.name for f in fields(WorldConfig)}
    cfg = {k: v for k, v in meta.get("config", {}).items() if k in known}
    if "pairs" in cfg:
        cfg["pairs"] = tuple(tuple(p) for p in cfg["pairs"])
    syn = d / "synonyms.txt"
    return domain(WorldConfig(**cfg), str(syn) if syn.exists() else None, variant)


def split_of(image_path: str | None) -> Path | None:
    """The world split folder an image lives in (``<split>/images/<id>.png`` next to scenes.jsonl)."""
    if not image_path:
        return None
    p = Path(image_path)
    return p.parent.parent if p.parent.name == "images" and (p.parent.parent / "scenes.jsonl").exists() else None


class WorldPlugin:
    name, label = "world", "controlled-world"
    default_detector = "world-yolo"

    def recognises(self, rec: dict, image_path: str | None = None) -> bool:
        return str(rec.get("id", "")).startswith("world-") or split_of(image_path) is not None

    def correction_domain(self, rec: dict, image_path: str | None, variant: str = "singularize") -> Domain:
        split = split_of(image_path)
        return world_domain(str(split) if split else None, variant)

    def image_roots(self) -> list[Path]:
        from halluc.world.builtin import world_cache
        return [world_cache()]


PLUGIN = WorldPlugin()
