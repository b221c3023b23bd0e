"""The annotations ``halluc negatives`` reads, in one data model, and the COCO and Visual-Genome loaders.

    src = load_coco("instances_train2014.json", "captions_train2014.json", images="train2014/")
    src = load_vg("vg.json", images="vg/", min_images=2)
    src.annotations[0].objects, src.bad      # good images with their objects; what was skipped, and why

A world split has its own loader (``halluc.world.lrv:load_world``, the ``negatives-source`` entry
``world``); it returns the same ``Source``, with its own phrasing as ``lang``.

An annotation that is malformed or names an image that is missing or unusable is reported as
``file: record: message``, skipped with its image (so that a negative never asks about an object that
was dropped) and kept in ``Source.bad``.
"""
from __future__ import annotations

import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from halluc.images import image_problem
from halluc.paths import read_json

# Visual Genome's free-form attributes: the ones read as a colour or a size (and a size's opposite).
COLOURS_EN = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "grey",
              "silver", "gold", "tan")
SIZES_EN = {"small": "large", "large": "small", "big": "small", "little": "large", "tiny": "large", "huge": "small",
            "tall": "short", "short": "tall"}


@dataclass
class Instance:
    name: str
    colour: str | None = None
    size: str | None = None
    attributes: tuple[str, ...] = ()
    box: tuple[float, float, float, float] | None = None    # absolute xyxy
    crowd: bool = False


@dataclass
class Annotation:
    image_id: int | str
    image: str                                    # path to the image file
    objects: list[Instance]
    relations: list[tuple[int, str, int]] = field(default_factory=list)   # explicit (VG): indices into objects
    captions: list[str] = field(default_factory=list)

    def names(self) -> set[str]:
        return {o.name for o in self.objects}

    def count(self, name: str) -> int:
        return sum(o.name == name for o in self.objects)

    def singles(self) -> list[int]:
        """Indices of objects whose class occurs once (an attribute or relation of "the X" is unambiguous)."""
        c = Counter(o.name for o in self.objects)
        return [i for i, o in enumerate(self.objects) if c[o.name] == 1]


@dataclass
class Bad:
    path: str
    record: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.record}: {self.message}"


@dataclass
class Source:
    """Good annotations, what was skipped, and what the phrasing and sampling need to know."""
    kind: str                                      # world | coco | vg
    annotations: list[Annotation]
    bad: list[Bad] = field(default_factory=list)
    pairs: tuple[tuple[str, str], ...] = ()        # planted co-occurrences (world)
    supercategory: dict[str, str] = field(default_factory=dict)   # COCO
    vocabulary: tuple[str, ...] = ()               # object classes that may be asked about
    name: str = ""
    cell: float = 16.0                             # world: grid cell in pixels ("next to")
    grid: int = 4                                  # world: cells per side
    lang: object | None = None                     # the source's own phrasing (the world's); None: English


def report(bad: list[Bad], b: Bad, echo: bool) -> None:
    bad.append(b)
    if echo:
        print(f"error: {b}", file=sys.stderr)


def finite_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def source_name(path) -> str:
    """The file or folder name that starts every record id: ids carry no path, so they survive a move."""
    return re.sub(r"\.jsonl?(\.gz)?$", "", Path(os.path.abspath(path)).name) or "source"


def _resolve_image(images: Path | None, name: str, base: Path) -> Path:
    p = Path(name)
    if p.is_absolute():
        return p
    return (images or base) / p


# ---------------------------------------------------------------- COCO

def load_coco(instances: str | Path, captions: str | Path | None = None, images: str | Path | None = None,
              echo: bool = True) -> Source:
    """COCO instances (+ captions). Crowd annotations mark a class present but uncountable. Optional
    ``attributes`` {colour, size} on an annotation (the world's COCO export has them) are used."""
    ipath = Path(instances)
    data = read_json(ipath)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError(f"{ipath}: not a COCO instances file (needs images, annotations and categories lists)")
    src = Source("coco", [], name=source_name(ipath))
    cats = _coco_categories(data["categories"], ipath, src, echo)
    imgs, dropped, label = _coco_images(data["images"], ipath, Path(images) if images else None, src, echo)
    _coco_objects(data["annotations"], ipath, cats, imgs, dropped, label, src, echo)
    if captions:
        _coco_captions(Path(captions), imgs, src, echo)
    src.annotations = [a for a in imgs.values() if a.objects]
    src.vocabulary = tuple(sorted(set(cats.values())))
    return src


def _coco_categories(categories: list, ipath: Path, src: Source, echo: bool) -> dict:
    """Category id -> lower-case name; each name's supercategory goes into ``src``."""
    cats = {}
    for k, c in enumerate(categories):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            report(src.bad, Bad(str(ipath), f"categories[{k}]", "needs an integer id and a name"), echo)
            continue
        cats[c["id"]] = c["name"].lower()
        if isinstance(c.get("supercategory"), str):
            src.supercategory[c["name"].lower()] = c["supercategory"].lower()
    return cats


def _coco_images(images: list, ipath: Path, img_dir: Path | None, src: Source, echo: bool):
    """The usable images (id -> an Annotation without objects yet), the dropped ids, and each image's label."""
    imgs, dropped, label = {}, set(), {}
    for k, im in enumerate(images):
        if not isinstance(im, dict) or isinstance(im.get("id"), bool) or not isinstance(im.get("id"), (int, str)) \
                or not isinstance(im.get("file_name"), str):
            report(src.bad, Bad(str(ipath), f"images[{k}]", "needs an id and a file_name"), echo)
            continue
        p = _resolve_image(img_dir, im["file_name"], ipath.parent)
        problem = image_problem(p)
        if problem:
            report(src.bad, Bad(str(ipath), f"images[{k}] (id {im['id']})", problem), echo)
            dropped.add(im["id"])
            continue
        label[im["id"]] = f"images[{k}] (id {im['id']})"
        imgs[im["id"]] = Annotation(im["id"], str(p), [])
    return imgs, dropped, label


def _coco_problem(a: dict, cats: dict, imgs: dict) -> str | None:
    iid = a.get("image_id")
    if isinstance(iid, bool) or not isinstance(iid, (int, str)) or iid not in imgs:
        return f"image_id {iid!r} is not among the images"
    if a.get("category_id") not in cats:
        return f"category_id {a.get('category_id')!r} is not among the categories"
    if not (isinstance(a.get("bbox"), list) and len(a["bbox"]) == 4 and all(map(finite_number, a["bbox"]))
            and a["bbox"][2] > 0 and a["bbox"][3] > 0):
        return f"bbox: expected [x, y, w, h] with w, h > 0, got {a.get('bbox')!r}"
    return None


def _coco_objects(annotations: list, ipath: Path, cats: dict, imgs: dict, dropped: set, label: dict,
                  src: Source, echo: bool) -> None:
    """Each annotation becomes an object of its image; a malformed one drops its image."""
    for k, a in enumerate(annotations):
        rec = f"annotations[{k}]" + (f" (id {a.get('id')})" if isinstance(a, dict) and "id" in a else "")
        if not isinstance(a, dict):
            report(src.bad, Bad(str(ipath), rec, "expected an object"), echo)
            continue
        iid = a.get("image_id")
        if iid in dropped:
            continue
        problem = _coco_problem(a, cats, imgs)
        if problem:
            report(src.bad, Bad(str(ipath), rec, problem), echo)
            if iid in imgs:                        # its objects are no longer known: drop the image
                report(src.bad, Bad(str(ipath), label[iid], f"image dropped: {rec} is malformed"), echo)
                del imgs[iid]
                dropped.add(iid)
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        attrs = a.get("attributes") if isinstance(a.get("attributes"), dict) else {}
        imgs[iid].objects.append(Instance(cats[a["category_id"]], attrs.get("colour") or attrs.get("color"),
                                          attrs.get("size"), box=(x, y, x + w, y + h), crowd=bool(a.get("iscrowd"))))


def _coco_captions(cpath: Path, imgs: dict, src: Source, echo: bool) -> None:
    cdata = read_json(cpath)
    if not isinstance(cdata, dict) or not isinstance(cdata.get("annotations"), list):
        raise ValueError(f"{cpath}: not a COCO captions file (needs an annotations list)")
    for k, a in enumerate(cdata["annotations"]):
        if not isinstance(a, dict) or not isinstance(a.get("caption"), str) or not a["caption"].strip():
            report(src.bad, Bad(str(cpath), f"annotations[{k}]", "needs an image_id and a caption"), echo)
            continue
        if a.get("image_id") in imgs:
            imgs[a["image_id"]].captions.append(" ".join(a["caption"].split()))


# ---------------------------------------------------------------- Visual Genome

def load_vg(path: str | Path, images: str | Path | None = None, min_images: int = 1, echo: bool = True) -> Source:
    """A Visual-Genome-like JSON: a list of images (or {"images": [...]}) with objects, attributes, relations."""
    vpath = Path(path)
    data = read_json(vpath)
    if isinstance(data, dict):
        data = data.get("images")
    if not isinstance(data, list):
        raise ValueError(f"{vpath}: expected a list of images (or {{\"images\": [...]}})")
    img_dir = Path(images) if images else None
    src = Source("vg", [], name=source_name(vpath))
    for k, im in enumerate(data):
        rec = f"[{k}]" + (f" (image_id {im.get('image_id', im.get('id'))})" if isinstance(im, dict) else "")
        if not isinstance(im, dict):
            report(src.bad, Bad(str(vpath), rec, "expected an object"), echo)
            continue
        ann, problem = _vg_image(im, img_dir, vpath)
        if problem:
            report(src.bad, Bad(str(vpath), rec, problem), echo)
            continue
        src.annotations.append(ann)
    freq = Counter(n for a in src.annotations for n in a.names())
    src.vocabulary = tuple(sorted(n for n, c in freq.items() if c >= min_images))
    return src


def _vg_image(im: dict, img_dir: Path | None, vpath: Path) -> tuple[Annotation | None, str | None]:
    """One image's annotation, or what is wrong with it."""
    iid = im.get("image_id", im.get("id"))
    fname = im.get("image") or im.get("file_name") or (Path(str(im["url"])).name if im.get("url") else None) \
        or (f"{iid}.jpg" if iid is not None else None)
    if isinstance(iid, bool) or not isinstance(iid, (int, str)):
        return None, "needs an image_id"
    if not isinstance(im.get("objects"), list) or not im["objects"]:
        return None, "objects: expected a non-empty list"
    objs, by_id, problem = _vg_objects(im["objects"])
    numbered = enumerate(im.get("relationships") or [])
    rels, problem = _vg_relations(numbered, by_id) if problem is None else ([], problem)
    if problem is None:
        p = _resolve_image(img_dir, str(fname), vpath.parent)
        problem = image_problem(p)
    if problem:
        return None, problem
    caps = [" ".join(r["phrase"].split()) for r in im.get("regions") or []
            if isinstance(r, dict) and isinstance(r.get("phrase"), str) and r["phrase"].strip()]
    return Annotation(iid, str(p), objs, rels, caps), None


def _vg_objects(objects: list) -> tuple[list[Instance], dict, str | None]:
    """The objects (a colour or size attribute when exactly one is given), object id -> index, a problem."""
    objs, by_id = [], {}
    for j, o in enumerate(objects):
        names = None
        if isinstance(o, dict):
            names = o.get("names") or ([o["name"]] if o.get("name") else None)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            return objs, by_id, f"objects[{j}]: needs names (a list) or name"
        box = None
        if all(k2 in o for k2 in ("x", "y", "w", "h")):
            if not all(finite_number(o[k2]) for k2 in ("x", "y", "w", "h")) or o["w"] <= 0 or o["h"] <= 0:
                return objs, by_id, f"objects[{j}]: x, y, w, h must be numbers with w, h > 0"
            box = (float(o["x"]), float(o["y"]), float(o["x"] + o["w"]), float(o["y"] + o["h"]))
        attrs = o.get("attributes") or []
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            return objs, by_id, f"objects[{j}].attributes: expected a list of strings"
        attrs = tuple(" ".join(a.lower().split()) for a in attrs)
        colours = [a for a in attrs if a in COLOURS_EN]
        sizes = [a for a in attrs if a in SIZES_EN]
        by_id[o.get("object_id", o.get("id", f"#{j}"))] = len(objs)
        objs.append(Instance(" ".join(names[0].lower().split()), colours[0] if len(colours) == 1 else None,
                             sizes[0] if len(sizes) == 1 else None, attrs, box))
    return objs, by_id, None


def _vg_relations(numbered, by_id: dict) -> tuple[list[tuple[int, str, int]], str | None]:
    """(subject index, predicate, object index) from the numbered relationships, or a problem."""
    rels = []
    for j, r in numbered:
        if not isinstance(r, dict) or not isinstance(r.get("predicate"), str):
            return rels, f"relationships[{j}]: needs subject, predicate and object"
        ends = []
        for end in ("subject", "object"):
            ref = r.get(f"{end}_id")
            if ref is None and isinstance(r.get(end), dict):
                ref = r[end].get("object_id", r[end].get("id"))
            ends.append(by_id.get(ref))
        if None in ends:
            return rels, f"relationships[{j}]: subject/object not among the image's objects"
        rels.append((ends[0], " ".join(r["predicate"].lower().split()), ends[1]))
    return rels, None


def cooccurrence(annotations: list[Annotation]) -> tuple[Counter, dict[str, Counter]]:
    """Image frequency of each class and, per class, how often each other class is in the same image."""
    freq, cooc = Counter(), {}
    for a in annotations:
        present = a.names()
        freq.update(present)
        for c in present:
            cooc.setdefault(c, Counter()).update(present - {c})
    return freq, cooc
