"""The builtin world's fixed splits, generated on first use into the cache and reused after.

    d = split_dir("world-bias")     # ~/.cache/halluc/world/<version>/bias-n300-s0/

Deterministic (fixed seeds), so every machine gets the same scenes; generation takes seconds.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from halluc.paths import cache_dir
from halluc.world.scene import WorldConfig

# name -> (split, default number of scenes)
DATASETS = {"world-train": ("train", 2000), "world-test": ("test", 300), "world-bias": ("bias", 300),
            "world-control": ("control", 300), "world-bias-hard": ("bias-hard", 300), "world-pope": ("pope", 300)}
POPE_DATASETS = {f"world-pope-{k}": k for k in ("random", "popular", "adversarial")}


def world_cache() -> Path:
    """The folder the builtin splits are generated into (``$HALLUC_CACHE/world``)."""
    return cache_dir() / "world"


def version(cfg: WorldConfig = WorldConfig()) -> str:
    return "v1-" + hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:8]


def split_dir(name: str, n: int | None = None, seed: int = 0, cfg: WorldConfig = WorldConfig()) -> Path:
    from halluc.world.generate import generate
    if name in POPE_DATASETS:
        name = "world-pope"
    if name not in DATASETS:
        raise ValueError(f"unknown world dataset {name!r}; valid: {', '.join([*DATASETS, *POPE_DATASETS])}")
    split, default_n = DATASETS[name]
    n = n or default_n
    d = world_cache() / version(cfg) / f"{split}-n{n}-s{seed}"
    if (d / "meta.json").exists():
        return d
    d.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{d.name}."))
    try:
        generate(tmp, split, n, seed, cfg)
        if not (d / "meta.json").exists():       # another process may have won the race
            shutil.rmtree(d, ignore_errors=True)
            tmp.rename(d)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return d


def dataset_items(name: str) -> dict:
    """A builtin world dataset (registry kind ``dataset``) as the decode pipeline reads it: caption
    splits as (id, image path, image id) with the world's prompt and caption length; POPE splits as
    their question file and image folder."""
    import json
    from halluc.world.language import PROMPT_DESCRIBE
    d = split_dir(name)                      # generated into the cache on first use
    if name in POPE_DATASETS:
        return {"kind": "question", "questions": d / f"pope_{POPE_DATASETS[name]}.jsonl", "images": d, "prefix": name,
                "dir": d}
    with open(d / "scenes.jsonl", encoding="utf-8") as f:
        scenes = [json.loads(line) for line in f]
    return {"kind": "caption", "prompt": PROMPT_DESCRIBE, "max_new_tokens": 96, "dir": d,
            "items": [(f"{name}/{s['image_id']}", d / s["image"], s["image_id"]) for s in scenes]}
