"""Write a split of the controlled world to a folder, deterministically from its seed.

    halluc world generate --out DIR --split bias --n 300 --seed 1

A split folder holds:
    images/<id>.png              the scenes
    scenes.jsonl                 exact ground truth: objects (class, colour, size, box, visible), relations
    instances_<split>.json       COCO-format instances (visible objects; colour and size as attributes)
    captions_<split>.json        COCO-format captions (what the model is trained on, hidden partners included)
    synonyms.txt                 the world's CHAIR vocabulary (first item = canonical name)
    qa.jsonl                     short questions and answers (train)
    pope_{random,popular,adversarial}.jsonl   POPE-format question files (pope split)
    meta.json                    config, seed, statistics (class frequencies, P(partner | trigger))

Splits: train (natural statistics, hidden partners), test (natural, nothing hidden), bias (a
trigger present, its partner absent), control (trigger and partner absent), bias-hard (bias with
weaker evidence: smaller, fainter, noisier objects), pope (natural scenes with >= 3 classes).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from halluc.outputs import atomic_write_json, atomic_write_text
from halluc.world.language import caption, questions
from halluc.geometry import dominant_relation
from halluc.world.scene import CLASSES, Scene, WorldConfig, render, sample_scene

SPLITS = ("train", "test", "bias", "control", "bias-hard", "pope")
# Seeds differ per split so that no evaluation scene repeats a training scene.
SPLIT_SEED_OFFSET = {s: 1000 * i for i, s in enumerate(SPLITS)}
HARD = dict(size_scale=0.8, contrast=0.55, noise=14.0)


def image_id(split: str, i: int) -> int:
    """COCO-style integer image ids, unique across splits (CHAIR joins captions to ground truth by them)."""
    return 100000 * SPLITS.index(split) + i + 1


def split_config(base: WorldConfig, split: str, hidden_partner: float = 0.25) -> WorldConfig:
    if split == "train":
        return replace(base, hidden_partner=hidden_partner)
    cfg = replace(base, hidden_partner=0.0)
    return replace(cfg, **HARD) if split == "bias-hard" else cfg


def synonyms_text() -> str:
    """CHAIR vocabulary. CHAIR's singularize maps "cross" to "cros" (pattern's rule for -ss words),
    so that form is a synonym too; everything else survives both normalisers."""
    lines = []
    for c in CLASSES:
        extra = {"cross": ["cros"]}.get(c, [])
        lines.append(", ".join([c, *extra]))
    return "\n".join(lines) + "\n"


def _scene_for(split: str, cfg: WorldConfig, rng: np.random.Generator, i: int) -> tuple[Scene, tuple | None]:
    sid = f"{split}-{i:05d}"
    if split in ("bias", "bias-hard", "control"):
        trig, partner = cfg.pairs[i % len(cfg.pairs)]
        force = {trig: split != "control", partner: False}
        return sample_scene(cfg, rng, sid, force=force), (trig, partner)
    while True:
        s = sample_scene(cfg, rng, sid)
        if split != "pope" or len({o.cls for o in s.visible()}) >= 3:
            return s, None


def pope_questions(scenes: list[Scene], cfg: WorldConfig, rng: np.random.Generator,
                   cooc: dict[str, Counter], freq: Counter, per_image: int = 3) -> dict[str, list[dict]]:
    """POPE's three samplings of absent objects, 3 yes + 3 no per image (balanced)."""
    out = {k: [] for k in ("random", "popular", "adversarial")}
    qid = 0
    for i, s in enumerate(scenes):
        present = sorted({o.cls for o in s.visible()})
        absent = [c for c in CLASSES if c not in present]
        yes = list(rng.permutation(present)[:per_image])
        picks = {
            "random": list(rng.permutation(absent)[:per_image]),
            "popular": sorted(absent, key=lambda c: (-freq[c], c))[:per_image],
            # absent objects that co-occur most with the present ones
            "adversarial": sorted(absent, key=lambda c: (-sum(cooc[p][c] for p in present), c))[:per_image],
        }
        for kind, no in picks.items():
            for c, label in [(c, "yes") for c in yes] + [(c, "no") for c in no]:
                qid += 1
                art = "an" if c[0] in "aeiou" else "a"
                out[kind].append({"question_id": qid, "image": f"images/{s.id}.png", "image_id": image_id("pope", i),
                                  "text": f"is there {art} {c} in the image ?", "label": label})
    return out


def generate(out: str | os.PathLike, split: str, n: int, seed: int = 0, base: WorldConfig | None = None,
             hidden_partner: float = 0.25, progress: bool = False) -> Path:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    base = base or WorldConfig()
    cfg = split_config(base, split, hidden_partner)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + SPLIT_SEED_OFFSET[split])
    scenes, recs, caps, qa = [], [], [], []
    it = range(n)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"world {split}", unit="scene")
    for i in it:
        s, pair = _scene_for(split, cfg, rng, i)
        render(s, cfg, rng).save(out / "images" / f"{s.id}.png", optimize=False)
        vis = s.visible()
        rels = [[a_i, dominant_relation(vis[a_i].box, vis[b_i].box), b_i] for a_i in range(len(vis)) for b_i in range(len(vis)) if a_i != b_i]
        cap = caption(s, cfg, rng)
        rec = {**s.to_json(), "image_id": image_id(split, i), "image": f"images/{s.id}.png", "caption": cap,
               "relations": rels}
        if pair:
            rec["pair"] = list(pair)
        recs.append(rec)
        scenes.append(s)
        caps.append(cap)
        if split == "train":
            qa += [{"id": f"{s.id}/q{j}", "image_id": s.id, "question": q, "answer": a}
                   for j, (q, a) in enumerate(questions(s, cfg, rng))]
    atomic_write_text(out / "scenes.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
    atomic_write_text(out / "synonyms.txt", synonyms_text())
    _write_coco(out, split, scenes, caps, cfg)
    if qa:
        atomic_write_text(out / "qa.jsonl", "".join(json.dumps(r) + "\n" for r in qa))
    stats = statistics(scenes, cfg)
    if split == "pope":
        for kind, qs in pope_questions(scenes, cfg, rng, stats.pop("_cooc"), stats.pop("_freq")).items():
            atomic_write_text(out / f"pope_{kind}.jsonl", "".join(json.dumps(q) + "\n" for q in qs))
    else:
        stats.pop("_cooc"), stats.pop("_freq")
    atomic_write_json(out / "meta.json", {"split": split, "n": n, "seed": seed, "config": asdict(cfg),
                                          "statistics": stats})
    return out


def statistics(scenes: list[Scene], cfg: WorldConfig) -> dict:
    """Scene frequency of each class and P(partner | trigger): the planted prior, measured."""
    freq, cooc = Counter(), {c: Counter() for c in CLASSES}
    for s in scenes:
        present = {o.cls for o in s.objects}
        freq.update(present)
        for a in present:
            cooc[a].update(present - {a})
    n = max(len(scenes), 1)
    pairs = {f"{t}->{p}": round(cooc[t][p] / freq[t], 3) if freq[t] else None for t, p in cfg.pairs}
    return {"class_frequency": {c: round(freq[c] / n, 3) for c in CLASSES}, "p_partner_given_trigger": pairs,
            "hidden_objects": sum(not o.visible for s in scenes for o in s.objects), "_cooc": cooc, "_freq": freq}


def _write_coco(out: Path, split: str, scenes: list[Scene], caps: list[str], cfg: WorldConfig) -> None:
    cats = [{"id": i + 1, "name": c, "supercategory": "shape"} for i, c in enumerate(CLASSES)]
    images, anns, cap_anns = [], [], []
    for i, (s, cap) in enumerate(zip(scenes, caps)):
        k = image_id(split, i)
        images.append({"id": k, "file_name": f"images/{s.id}.png", "width": cfg.image_size,
                       "height": cfg.image_size, "scene_id": s.id})
        for o in s.visible():
            x0, y0, x1, y1 = o.box
            anns.append({"id": len(anns) + 1, "image_id": k, "category_id": CLASSES.index(o.cls) + 1,
                         "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
                         "area": round((x1 - x0) * (y1 - y0), 2), "iscrowd": 0,
                         "attributes": {"colour": o.colour, "size": o.size}})
        cap_anns.append({"id": i + 1, "image_id": k, "caption": cap})
    info = {"description": f"halluc controlled world, split {split}"}
    atomic_write_json(out / f"instances_{split}.json", {"info": info, "images": images, "annotations": anns,
                                                         "categories": cats})
    atomic_write_json(out / f"captions_{split}.json", {"info": info, "images": images, "annotations": cap_anns})
