"""Ground truth behind the detector interface: the upper bound for ablations of the correction pipeline.

    det = detectors.load("oracle:coco")                        # bundled CHAIR tables: object sets, no boxes
    det.detect(None, ["man", "pizza", "dog"], image_id=226988)  # box=None, score 1.0, one per object
    det = detectors.load("oracle:/data/annotations/instances_val2014.json")   # COCO boxes
    det = detectors.load("oracle:world:/cache/halluc/world/.../bias-n300-s0")  # scenes.jsonl boxes

The image is ignored; ``image_id`` selects the annotations (an int, its string, a record id whose last
``/`` part is the image id such as "chair500/226988", or a world scene id such as "bias-00007").
Labels answer phrases through the synonym table (COCO's CHAIR table; a world split's own
synonyms.txt; ``synonyms=FILE`` overrides). Ground truth is not threshold- or area-filtered: it is
the answer the detectors are measured against. ``oracle:coco`` uses CHAIR's ground truth (instance
categories ∪ objects named in the reference captions), so "counts" there are always one.
"""
from __future__ import annotations

import json
from pathlib import Path

from detectors.base import BaseDetector, Detection, make_config
from detectors.labels import LabelMap, label_map


class Oracle(BaseDetector):
    name = "oracle"
    keyed_by = "image_id"

    def __init__(self, objects: dict[str, list[tuple[str, tuple | None]]], labels: LabelMap, source: str,
                 aliases: dict[str, str] | None = None, config=None):
        super().__init__(config)
        self.objects = objects
        self.labels = labels
        self.source = source
        self.aliases = aliases or {}

    def _key(self, image_id) -> str:
        if image_id is None:
            raise ValueError("the oracle detector needs image_id= (it looks annotations up, it does not see)")
        k = str(image_id)
        for cand in (k, self.aliases.get(k), k.rsplit("/", 1)[-1], self.aliases.get(k.rsplit("/", 1)[-1])):
            if cand is not None and cand in self.objects:
                return cand
        raise KeyError(f"oracle ({self.source}): no annotations for image {image_id!r} "
                       f"({len(self.objects)} images known, e.g. {next(iter(self.objects), None)!r})")

    def detect(self, image, phrases: list[str], *, image_id=None) -> list[Detection]:
        return self.labels.answer([(label, box, 1.0) for label, box in self.objects[self._key(image_id)]], phrases)

    def _fingerprint(self) -> dict:
        return {"source": self.source, "synonyms": self.labels.digest()}


def _coco_builtin(variant: str) -> Oracle:
    from halluc.metrics.chair import load_gt
    gt = load_gt("builtin", variant=variant)
    return Oracle({k: [(o, None) for o in sorted(v)] for k, v in gt.items()}, label_map("coco"),
                  f"coco-chair-builtin/{variant}")


def _coco_instances(files: list[Path], synonyms: str | None) -> Oracle:
    from detectors.cache import DetectionCache
    from halluc.metrics.chair import _read_json         # the CHAIR loader: .json or .json.gz
    objects: dict[str, list] = {}
    for f in files:
        data = _read_json(f)
        if "annotations" not in data or "categories" not in data:
            raise ValueError(f"{f}: not a COCO instances file (needs images, annotations, categories)")
        names = {c["id"]: c["name"] for c in data["categories"]}
        for img in data.get("images", []):
            objects.setdefault(str(img["id"]), [])
        for a in data["annotations"]:
            x, y, w, h = a["bbox"]
            objects.setdefault(str(a["image_id"]), []).append((names[a["category_id"]], (x, y, x + w, y + h)))
    cache = DetectionCache()
    source = "coco-instances/" + ",".join(cache.file_sha256(f)[:16] for f in files)
    return Oracle(objects, label_map(synonyms), source)


def _world(folder: Path, synonyms: str | None) -> Oracle:
    from detectors.cache import DetectionCache
    scenes = folder / "scenes.jsonl"
    if not scenes.is_file():
        raise FileNotFoundError(f"oracle:world:{folder}: no scenes.jsonl there (a world split folder has one; "
                                "see `halluc world generate`)")
    objects, aliases = {}, {}
    for line in scenes.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            k = str(rec["image_id"])
            objects[k] = [(o["cls"], tuple(o["box"])) for o in rec["objects"] if o.get("visible", True) and o["box"]]
            aliases[str(rec["id"])] = k
    syn = synonyms or (str(folder / "synonyms.txt") if (folder / "synonyms.txt").is_file() else None)
    return Oracle(objects, label_map(syn), f"world/{DetectionCache().file_sha256(scenes)[:16]}", aliases)


def load(arg: str | None, **options) -> Oracle:
    _, rest = make_config(options, ("variant", "synonyms"))
    synonyms, variant = rest.get("synonyms"), rest.get("variant", "singularize")
    if not arg:
        raise ValueError("oracle needs a source: 'oracle:coco', 'oracle:INSTANCES.json' or 'oracle:world:SPLIT_DIR'")
    if arg == "coco":
        return _coco_builtin(variant)
    if arg.startswith("world:"):
        return _world(Path(arg[len("world:"):]).expanduser(), synonyms)
    p = Path(arg).expanduser()
    if p.is_dir():
        if (p / "scenes.jsonl").is_file():
            return _world(p, synonyms)
        files = sorted(p.glob("instances_*.json")) + sorted(p.glob("instances_*.json.gz"))
        if files:
            return _coco_instances(files, synonyms)
        raise FileNotFoundError(f"oracle:{arg}: {p} has neither scenes.jsonl nor instances_*.json")
    if p.is_file():
        return _coco_instances([p], synonyms)
    raise FileNotFoundError(f"oracle:{arg}: no such file or folder {p.resolve()} "
                            "(expected 'coco', a COCO instances JSON, or 'world:SPLIT_DIR')")
