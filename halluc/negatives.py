"""``halluc negatives``: LRV-style instruction data from annotations (DESIGN.md §6).

    halluc negatives --world world-train --out data/lrv/train.jsonl                  # the controlled world
    halluc negatives --world world-train --neg-ratio 0 --out data/pos/train.jsonl    # positives only (a control)
    halluc negatives --coco-instances instances_train2014.json --coco-captions captions_train2014.json \\
                     --images train2014/ --out coco_lrv.jsonl
    halluc negatives --vg vg.json --images vg/ --families nonexistent=2,existent=1 --out vg_lrv.jsonl

Sources: a controlled-world split (``world-train`` or any folder with ``scenes.jsonl``), COCO
instances (+ captions), or a Visual-Genome-like JSON (a list of images, each with ``objects``
(``names``/``name``, ``attributes``, ``x y w h``) and ``relationships`` (``subject_id``,
``predicate``, ``object_id``)). Every image gets ``--per-image`` instructions:

- positives: existence (yes), attributes, counts, relations, short descriptions;
- negatives, LRV's three families:
  ``nonexistent``: ask about an absent object (sampled at random, by frequency, or -- the
  adversarial case -- because it co-occurs with the objects present: the world's planted pairs,
  else co-occurrence counted from the annotations) and answer that it is absent;
  ``existent``: a present object with a wrong attribute, count or relation; the answer corrects it;
  ``knowledge``: a false premise (an absent object or a wrong attribute/relation presupposed, or a
  wrong category for a COCO object); the answer rejects it.

``--neg-ratio`` is the share of negatives among all records and ``--caption-share`` the share of
descriptions; both hold exactly (largest remainder; a negative that an image cannot give moves to
the next image that can). Each record has LRV's fields ``image_id``, ``question``, ``answer``, ``task``,
plus ``id``, ``image``, ``polarity``, ``family``, ``subtype``, the structured ``claim`` it makes (the
object, the claimed value, the truth; negatives' claims contradict the annotation), and ``messages`` +
``images``, the conversational form TRL's ``SFTTrainer`` takes. World questions and answers use only the
builtin model's word-level vocabulary; existence questions are POPE's ("is there a moon in the image ?")
answered "yes"/"no".

An annotation that is malformed or names an image that is missing or unusable (not a regular file,
corrupt, over the pixel cap: every image is decoded once, ``halluc.images.verify_image``) is reported as
``file: record: message``, skipped (with its image, so that a negative never asks about an object that
was dropped) and counted. Image paths are written relative to the output file's folder, and ids are
``SOURCE/IMAGE_ID/INDEX`` (the source's file or folder name, never a path), so the data set can be moved.
``run.json`` goes next to the output. The output is deterministic in its inputs, configuration and seed;
a rerun with the same configuration does nothing (``--overwrite`` regenerates).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from halluc.images import image_problem
from halluc.command import at_least, guard, module_main, number, seed
from halluc.errors import BadInput
from halluc.paths import input_dir, input_file, output_file, read_json

FAMILIES = ("nonexistent", "existent", "knowledge")
SAMPLINGS = ("random", "popular", "adversarial")
TASKS = {"nonexistent": "nonexistent_object", "existent": "existent_object", "knowledge": "knowledge_manipulation"}
POSITIVE_KINDS = ("existence", "attribute", "count", "relation")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above", "on": "under",
            "under": "on", "on top of": "under", "in front of": "behind", "behind": "in front of",
            "to the left of": "to the right of", "to the right of": "to the left of"}
COLOURS_EN = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "grey",
              "silver", "gold", "tan")
SIZES_EN = {"small": "large", "large": "small", "big": "small", "little": "large", "tiny": "large", "huge": "small",
            "tall": "short", "short": "tall"}


# ---------------------------------------------------------------- annotations

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


def _report(bad: list[Bad], b: Bad, echo: bool) -> None:
    bad.append(b)
    if echo:
        print(f"error: {b}", file=sys.stderr)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def load_world(split: str | Path, echo: bool = True) -> Source:
    """A world split: a builtin name (``world-train``...) or a folder with ``scenes.jsonl``.

    Only drawn objects count: a training scene's hidden partner (named by its caption, not drawn) is absent
    from the image, so asking about it is a nonexistent-object negative -- the adversarial case itself.
    """
    from halluc.records import ReadReport, read_records
    from halluc.world.scene import CLASSES, COLOURS, SIZES, WorldConfig
    d = _world_dir(split)
    wc = WorldConfig()
    pairs, cell, grid = wc.pairs, float(wc.cell), wc.grid
    meta = d / "meta.json"
    if meta.exists():
        try:
            cfg = read_json(meta, "--world")["config"]
            pairs = tuple(tuple(p) for p in cfg.get("pairs", pairs))
            grid = int(cfg.get("grid", grid))
            cell = float(cfg.get("image_size", wc.image_size)) / grid
        except (KeyError, TypeError, ValueError):      # an older layout: the defaults (malformed JSON is an error)
            pass
    path = d / "scenes.jsonl"
    src = Source("world", [], pairs=pairs, vocabulary=CLASSES, name=_source_name(split), cell=cell, grid=grid)
    report = ReadReport(echo=False)
    for it in read_records(path, id_key="image_id", required={"objects": list, "image": str}, report=report):
        where = f"line {it.line} (image_id {it.id})"
        objs, problem = [], None
        for k, o in enumerate(it.rec["objects"]):
            if not isinstance(o, dict):
                problem = f"objects[{k}]: expected an object"
            elif o.get("cls") not in CLASSES:
                problem = f"objects[{k}].cls: {o.get('cls')!r} is not a world class"
            elif o.get("colour") not in COLOURS or o.get("size") not in SIZES:
                problem = f"objects[{k}]: colour/size {o.get('colour')!r}/{o.get('size')!r} not in the world's"
            elif not o.get("visible", True):
                continue                                   # hidden partner: not in the image
            elif not (isinstance(o.get("box"), list) and len(o["box"]) == 4 and all(map(_num, o["box"]))
                      and o["box"][0] < o["box"][2] and o["box"][1] < o["box"][3]):
                problem = f"objects[{k}].box: expected [x0, y0, x1, y1] with x0 < x1, y0 < y1, got {o.get('box')!r}"
            else:
                objs.append(Instance(o["cls"], o["colour"], o["size"], box=tuple(float(v) for v in o["box"])))
            if problem:
                break
        img = d / it.rec["image"]
        if problem is None and not objs:
            problem = "no visible object"
        if problem is None:
            problem = image_problem(img)
        if problem:
            _report(src.bad, Bad(str(path), where, problem), echo)
            continue
        src.annotations.append(Annotation(it.rec["image_id"], str(img), objs))
    for b in report.bad:
        _report(src.bad, Bad(b.path, f"line {b.line}", f"{b.field}: {b.message}" if b.field else b.message), echo)
    return src


def _world_dir(split) -> Path:
    """A folder with scenes.jsonl, else a builtin split's (generated on first use; a folder of that name
    without scenes.jsonl, an output folder say, does not hide it)."""
    from halluc.world.builtin import DATASETS, split_dir
    d = Path(split)
    if not (d / "scenes.jsonl").exists() and str(split) in DATASETS:
        return split_dir(str(split))
    if not d.exists():
        raise BadInput(f"--world {split}: neither a folder with scenes.jsonl nor a builtin split ({', '.join(DATASETS)})")
    input_dir(d, "--world")
    input_file(d / "scenes.jsonl", "--world")
    return d


def _source_name(path) -> str:
    """The file or folder name that starts every record id: ids carry no path, so they survive a move."""
    return re.sub(r"\.jsonl?(\.gz)?$", "", Path(os.path.abspath(path)).name) or "source"


def _resolve_image(images: Path | None, name: str, base: Path) -> Path:
    p = Path(name)
    if p.is_absolute():
        return p
    return (images or base) / p


def load_coco(instances: str | Path, captions: str | Path | None = None, images: str | Path | None = None,
              echo: bool = True) -> Source:
    """COCO instances (+ captions). Crowd annotations mark a class present but uncountable. Optional
    ``attributes`` {colour, size} on an annotation (the world's COCO export has them) are used."""
    ipath = Path(instances)
    data = read_json(ipath)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise ValueError(f"{ipath}: not a COCO instances file (needs images, annotations and categories lists)")
    img_dir = Path(images) if images else None
    src = Source("coco", [], name=_source_name(ipath))
    cats, dropped, label = {}, set(), {}
    for k, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            _report(src.bad, Bad(str(ipath), f"categories[{k}]", "needs an integer id and a name"), echo)
            continue
        cats[c["id"]] = c["name"].lower()
        if isinstance(c.get("supercategory"), str):
            src.supercategory[c["name"].lower()] = c["supercategory"].lower()
    imgs: dict = {}
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or isinstance(im.get("id"), bool) or not isinstance(im.get("id"), (int, str)) \
                or not isinstance(im.get("file_name"), str):
            _report(src.bad, Bad(str(ipath), f"images[{k}]", "needs an id and a file_name"), echo)
            continue
        p = _resolve_image(img_dir, im["file_name"], ipath.parent)
        problem = image_problem(p)
        if problem:
            _report(src.bad, Bad(str(ipath), f"images[{k}] (id {im['id']})", problem), echo)
            dropped.add(im["id"])
            continue
        label[im["id"]] = f"images[{k}] (id {im['id']})"
        imgs[im["id"]] = Annotation(im["id"], str(p), [])
    for k, a in enumerate(data["annotations"]):
        rec = f"annotations[{k}]" + (f" (id {a.get('id')})" if isinstance(a, dict) and "id" in a else "")
        if not isinstance(a, dict):
            _report(src.bad, Bad(str(ipath), rec, "expected an object"), echo)
            continue
        iid = a.get("image_id")
        if iid in dropped:
            continue
        problem = None
        if isinstance(iid, bool) or not isinstance(iid, (int, str)) or iid not in imgs:
            problem = f"image_id {iid!r} is not among the images"
        elif a.get("category_id") not in cats:
            problem = f"category_id {a.get('category_id')!r} is not among the categories"
        elif not (isinstance(a.get("bbox"), list) and len(a["bbox"]) == 4 and all(map(_num, a["bbox"]))
                  and a["bbox"][2] > 0 and a["bbox"][3] > 0):
            problem = f"bbox: expected [x, y, w, h] with w, h > 0, got {a.get('bbox')!r}"
        if problem:
            _report(src.bad, Bad(str(ipath), rec, problem), echo)
            if iid in imgs:                        # its objects are no longer known: drop the image
                _report(src.bad, Bad(str(ipath), label[iid], f"image dropped: {rec} is malformed"), echo)
                del imgs[iid]
                dropped.add(iid)
            continue
        x, y, w, h = (float(v) for v in a["bbox"])
        attrs = a.get("attributes") if isinstance(a.get("attributes"), dict) else {}
        imgs[iid].objects.append(Instance(cats[a["category_id"]], attrs.get("colour") or attrs.get("color"),
                                          attrs.get("size"), box=(x, y, x + w, y + h), crowd=bool(a.get("iscrowd"))))
    if captions:
        cpath = Path(captions)
        cdata = read_json(cpath)
        if not isinstance(cdata, dict) or not isinstance(cdata.get("annotations"), list):
            raise ValueError(f"{cpath}: not a COCO captions file (needs an annotations list)")
        for k, a in enumerate(cdata["annotations"]):
            if not isinstance(a, dict) or not isinstance(a.get("caption"), str) or not a["caption"].strip():
                _report(src.bad, Bad(str(cpath), f"annotations[{k}]", "needs an image_id and a caption"), echo)
                continue
            if a.get("image_id") in imgs:
                imgs[a["image_id"]].captions.append(" ".join(a["caption"].split()))
    src.annotations = [a for a in imgs.values() if a.objects]
    src.vocabulary = tuple(sorted(set(cats.values())))
    return src


def load_vg(path: str | Path, images: str | Path | None = None, min_images: int = 1, echo: bool = True) -> Source:
    """A Visual-Genome-like JSON: a list of images (or {"images": [...]}) with objects, attributes, relations."""
    vpath = Path(path)
    data = read_json(vpath)
    if isinstance(data, dict):
        data = data.get("images")
    if not isinstance(data, list):
        raise ValueError(f"{vpath}: expected a list of images (or {{\"images\": [...]}})")
    img_dir = Path(images) if images else None
    src = Source("vg", [], name=_source_name(vpath))
    for k, im in enumerate(data):
        rec = f"[{k}]" + (f" (image_id {im.get('image_id', im.get('id'))})" if isinstance(im, dict) else "")
        if not isinstance(im, dict):
            _report(src.bad, Bad(str(vpath), rec, "expected an object"), echo)
            continue
        iid = im.get("image_id", im.get("id"))
        fname = im.get("image") or im.get("file_name") or (Path(str(im["url"])).name if im.get("url") else None) \
            or (f"{iid}.jpg" if iid is not None else None)
        problem, objs, by_id, rels = None, [], {}, []
        if isinstance(iid, bool) or not isinstance(iid, (int, str)):
            problem = "needs an image_id"
        elif not isinstance(im.get("objects"), list) or not im["objects"]:
            problem = "objects: expected a non-empty list"
        else:
            for j, o in enumerate(im["objects"]):
                names = None
                if isinstance(o, dict):
                    names = o.get("names") or ([o["name"]] if o.get("name") else None)
                if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
                    problem = f"objects[{j}]: needs names (a list) or name"
                    break
                box = None
                if all(k2 in o for k2 in ("x", "y", "w", "h")):
                    if not all(_num(o[k2]) for k2 in ("x", "y", "w", "h")) or o["w"] <= 0 or o["h"] <= 0:
                        problem = f"objects[{j}]: x, y, w, h must be numbers with w, h > 0"
                        break
                    box = (float(o["x"]), float(o["y"]), float(o["x"] + o["w"]), float(o["y"] + o["h"]))
                attrs = o.get("attributes") or []
                if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
                    problem = f"objects[{j}].attributes: expected a list of strings"
                    break
                attrs = tuple(" ".join(a.lower().split()) for a in attrs)
                colours = [a for a in attrs if a in COLOURS_EN]
                sizes = [a for a in attrs if a in SIZES_EN]
                by_id[o.get("object_id", o.get("id", f"#{j}"))] = len(objs)
                objs.append(Instance(" ".join(names[0].lower().split()), colours[0] if len(colours) == 1 else None,
                                     sizes[0] if len(sizes) == 1 else None, attrs, box))
            for j, r in enumerate(im.get("relationships") or []):
                if problem:
                    break
                if not isinstance(r, dict) or not isinstance(r.get("predicate"), str):
                    problem = f"relationships[{j}]: needs subject, predicate and object"
                    break
                ends = []
                for end in ("subject", "object"):
                    ref = r.get(f"{end}_id")
                    if ref is None and isinstance(r.get(end), dict):
                        ref = r[end].get("object_id", r[end].get("id"))
                    ends.append(by_id.get(ref))
                if None in ends:
                    problem = f"relationships[{j}]: subject/object not among the image's objects"
                    break
                rels.append((ends[0], " ".join(r["predicate"].lower().split()), ends[1]))
        if problem is None:
            p = _resolve_image(img_dir, str(fname), vpath.parent)
            problem = image_problem(p)
        if problem:
            _report(src.bad, Bad(str(vpath), rec, problem), echo)
            continue
        caps = [" ".join(r["phrase"].split()) for r in im.get("regions") or []
                if isinstance(r, dict) and isinstance(r.get("phrase"), str) and r["phrase"].strip()]
        src.annotations.append(Annotation(iid, str(p), objs, rels, caps))
    freq = Counter(n for a in src.annotations for n in a.names())
    src.vocabulary = tuple(sorted(n for n, c in freq.items() if c >= min_images))
    return src


# ---------------------------------------------------------------- statistics

def cooccurrence(annotations: list[Annotation]) -> tuple[Counter, dict[str, Counter]]:
    """Image frequency of each class and, per class, how often each other class is in the same image."""
    freq, cooc = Counter(), {}
    for a in annotations:
        present = a.names()
        freq.update(present)
        for c in present:
            cooc.setdefault(c, Counter()).update(present - {c})
    return freq, cooc


def box_relation(a, b) -> str | None:
    """``a REL b`` from boxes when unambiguous: a entirely left of / right of / above / below b along the
    dominant axis of the centre offset; None when they overlap along it."""
    ax, ay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bx, by = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    if abs(bx - ax) >= abs(by - ay):
        return "left of" if a[2] <= b[0] else "right of" if b[2] <= a[0] else None
    return "above" if a[3] <= b[1] else "below" if b[3] <= a[1] else None


# ---------------------------------------------------------------- phrasing

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_IRREGULAR = {"person": "people", "mouse": "mice", "sheep": "sheep", "skis": "skis", "scissors": "scissors",
              "man": "men", "woman": "women", "child": "children", "foot": "feet", "tooth": "teeth",
              "glasses": "glasses", "knife": "knives", "leaf": "leaves", "shelf": "shelves", "fish": "fish",
              "deer": "deer", "bus": "buses", "skateboard": "skateboards"}


def plural(word: str) -> str:
    head, _, last = word.rpartition(" ")
    if last in _IRREGULAR:
        p = _IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        p = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


class WorldLang:
    """The controlled world's grammar and word-level vocabulary (lower case, spaced punctuation)."""

    def __init__(self):
        from halluc.world.language import NUMBERS, PLURAL, PROMPT_DESCRIBE
        self.numbers, self.plurals, self.describe = NUMBERS, PLURAL, PROMPT_DESCRIBE

    def pl(self, c):
        return self.plurals[c]

    def num(self, n):
        return self.numbers[n] if n < len(self.numbers) else None

    def exist_q(self, c, rng):
        return f"is there {article(c)} {c} in the image ?"

    def exist_a(self, c, present):
        return "yes" if present else "no"

    def attr_q(self, c, value, rng):
        return f"is the {c} {value} ?"

    def attr_a(self, c, claimed, truth):
        return "yes" if claimed == truth else f"no , the {c} is {truth} ."

    def colour_q(self, c, rng):
        return f"what color is the {c} ?"

    def colour_a(self, c, colour):
        return colour

    def count_q(self, c, rng):
        return f"how many {self.pl(c)} are there ?"

    def count_a(self, c, n):
        return self.num(n)

    def count_claim_q(self, c, n, rng):
        return f"is there one {c} in the image ?" if n == 1 else f"are there {self.num(n)} {self.pl(c)} in the image ?"

    def count_claim_a(self, c, claimed, truth):
        if claimed == truth:
            return "yes"
        return f"no , there is one {c} ." if truth == 1 else f"no , there are {self.num(truth)} {self.pl(c)} ."

    def rel_q(self, a, rel, b, rng):
        return f"is the {a} {rel} the {b} ?"

    def rel_a(self, a, claimed, truth, b):
        return "yes" if claimed == truth else f"no , the {a} is {truth} the {b} ."

    def premise_absent_q(self, c, rng):
        return f"what color is the {c} ?"

    def premise_absent_a(self, c):
        return f"there is no {c} ."

    def premise_attr_q(self, c, value, kind, rng):
        return f"what color is the {value} {c} ?" if kind == "size" else f"how many {value} {self.pl(c)} are there ?"

    def premise_attr_a(self, c, value, truth, kind):
        if kind == "size":
            return f"there is no {value} {c} , the {c} is {truth} ."
        return f"there are no {value} {self.pl(c)} , the {c} is {truth} ."

    def premise_rel_q(self, a, rel, b, rng):
        return f"what color is the {a} {rel} the {b} ?"

    def premise_rel_a(self, a, rel, truth, b):
        return f"the {a} is not {rel} the {b} , the {a} is {truth} the {b} ."

    def premise_category_q(self, c, wrong, rng):
        return None

    def premise_category_a(self, c, wrong, truth):
        return None


class EnglishLang:
    """Plain English for COCO and Visual Genome (LRV's answers are sentences)."""
    describe = "Describe the image briefly."

    def pl(self, c):
        return plural(c)

    def num(self, n):
        return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)

    @staticmethod
    def _pick(rng, options):
        return options[int(rng.integers(len(options)))]

    def exist_q(self, c, rng):
        return self._pick(rng, (f"Is there {article(c)} {c} in the image?", f"Can you see {article(c)} {c} in this image?",
                                f"Does the image contain {article(c)} {c}?"))

    def exist_a(self, c, present):
        return f"Yes, there is {article(c)} {c} in the image." if present else f"No, there is no {c} in the image."

    def attr_q(self, c, value, rng):
        return f"Is the {c} {value}?"

    def attr_a(self, c, claimed, truth):
        return f"Yes, the {c} is {truth}." if claimed == truth else f"No, the {c} is not {claimed}; it is {truth}."

    def colour_q(self, c, rng):
        return f"What color is the {c}?"

    def colour_a(self, c, colour):
        return f"The {c} is {colour}."

    def count_q(self, c, rng):
        return f"How many {self.pl(c)} are there in the image?"

    def count_a(self, c, n):
        return f"There is one {c}." if n == 1 else f"There are {self.num(n)} {self.pl(c)}."

    def count_claim_q(self, c, n, rng):
        return f"Is there one {c} in the image?" if n == 1 else f"Are there {self.num(n)} {self.pl(c)} in the image?"

    def count_claim_a(self, c, claimed, truth):
        if claimed == truth:
            return f"Yes, {'there is one ' + c if truth == 1 else 'there are ' + self.num(truth) + ' ' + self.pl(c)}."
        return f"No, there {'is one ' + c if truth == 1 else 'are ' + self.num(truth) + ' ' + self.pl(c)}, not {self.num(claimed)}."

    def rel_q(self, a, rel, b, rng):
        return f"Is the {a} {rel} the {b}?"

    def rel_a(self, a, claimed, truth, b):
        return f"Yes, the {a} is {truth} the {b}." if claimed == truth else f"No, the {a} is {truth} the {b}."

    def premise_absent_q(self, c, rng):
        return self._pick(rng, (f"What color is the {c} in the image?", f"What is the {c} in the image doing?",
                                f"Where is the {c} in this image?"))

    def premise_absent_a(self, c):
        return f"There is no {c} in the image, so the question does not apply."

    def premise_attr_q(self, c, value, kind, rng):
        return f"Why is the {c} {value}?"

    def premise_attr_a(self, c, value, truth, kind):
        return f"The {c} is not {value}; it is {truth}."

    def premise_rel_q(self, a, rel, b, rng):
        return f"Why is the {a} {rel} the {b}?"

    def premise_rel_a(self, a, rel, truth, b):
        return f"The {a} is not {rel} the {b}; it is {truth} the {b}."

    def premise_category_q(self, c, wrong, rng):
        return f"What kind of {wrong} is the {c} in the image?"

    def premise_category_a(self, c, wrong, truth):
        return f"The {c} is not a kind of {wrong}; it is a kind of {truth}."


# ---------------------------------------------------------------- generation

@dataclass(frozen=True)
class NegConfig:
    neg_ratio: float = 0.5                 # negatives / all records
    caption_share: float = 0.2             # descriptions / all records (positives)
    per_image: int = 4                     # records per image
    families: tuple[tuple[str, float], ...] = (("nonexistent", 1.0), ("existent", 1.0), ("knowledge", 1.0))
    sampling: tuple[tuple[str, float], ...] = (("random", 1.0), ("popular", 1.0), ("adversarial", 1.0))
    positives: tuple[tuple[str, float], ...] = (("existence", 1.0), ("attribute", 1.0), ("count", 1.0),
                                                ("relation", 1.0))
    seed: int = 0
    limit: int | None = None               # only the first N images

    def __post_init__(self):
        if not 0 <= self.neg_ratio <= 1 or not 0 <= self.caption_share <= 1 or self.neg_ratio + self.caption_share > 1:
            raise ValueError(f"neg_ratio {self.neg_ratio} and caption_share {self.caption_share}: each in [0, 1], "
                             "summing to at most 1")
        if self.per_image < 1:
            raise ValueError(f"per_image {self.per_image}: must be >= 1")
        for what, table, valid in (("families", self.families, FAMILIES), ("sampling", self.sampling, SAMPLINGS),
                                   ("positives", self.positives, POSITIVE_KINDS)):
            for k, w in table:
                if k not in valid:
                    raise ValueError(f"{what}: unknown {k!r}; valid: {', '.join(valid)}")
                if w < 0:
                    raise ValueError(f"{what}: weight of {k} is negative")
            if not any(w > 0 for _, w in table):
                raise ValueError(f"{what}: at least one needs a positive weight")


def parse_weights(spec: str, valid: tuple[str, ...], what: str) -> tuple[tuple[str, float], ...]:
    """"a,b" or "a=2,b=1" -> ((a, w), ...); unknown names are an error naming the valid ones."""
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        k, _, w = part.partition("=")
        k = k.strip()
        if k not in valid:
            raise ValueError(f"--{what} {spec}: unknown {k!r}; valid: {', '.join(valid)}")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ValueError(f"--{what} {spec}: weight of {k} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"--{what} {spec}: weight of {k} must be a finite number >= 0")
        out.append((k, weight))
    if not out:
        raise ValueError(f"--{what}: give at least one of {', '.join(valid)}")
    return tuple(out)


def _quota(total: int, weights: list[tuple[str, float]]) -> list[str]:
    """Largest-remainder apportionment of ``total`` slots to weighted names."""
    ws = [(k, w) for k, w in weights if w > 0]
    s = sum(w for _, w in ws)
    exact = [(k, total * w / s) for k, w in ws]
    n = {k: int(math.floor(x)) for k, x in exact}
    rest = total - sum(n.values())
    for k, x in sorted(exact, key=lambda kx: (-(kx[1] - math.floor(kx[1])), [a for a, _ in ws].index(kx[0])))[:rest]:
        n[k] += 1
    return [k for k, _ in ws for _ in range(n[k])]


class _Maker:
    """Makes one instruction of a kind for one image, or None when the image cannot give it."""

    def __init__(self, src: Source, lang, rng):
        self.src, self.lang, self.rng = src, lang, rng
        self.freq, self.cooc = cooccurrence(src.annotations)
        self.partners: dict[str, list[str]] = {}
        for t, p in src.pairs:
            self.partners.setdefault(t, []).append(p)
        self.vocab = [c for c in src.vocabulary if self.freq[c] > 0] or list(src.vocabulary)

    def choice(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    def _rec(self, ann, q, a, polarity, family, subtype, claim):
        task = TASKS[family] if polarity == "negative" else ("description" if family == "description" else family)
        return {"image_id": ann.image_id, "image": ann.image, "question": q, "answer": a, "task": task,
                "polarity": polarity, "family": family, "subtype": subtype, "claim": claim}

    # ------------------------------------------------------------ objects and relations

    def _relations(self, ann) -> list[tuple[int, str, int]]:
        """Unambiguous (a, rel, b) facts between single-instance classes."""
        singles = set(ann.singles())
        if ann.relations:                                    # explicit (VG)
            return [(a, r, b) for a, r, b in ann.relations if a in singles and b in singles
                    and ann.objects[a].name != ann.objects[b].name]
        out = []
        for i in singles:
            for j in singles:
                if i == j or ann.objects[i].box is None or ann.objects[j].box is None:
                    continue
                if self.src.kind == "world":
                    from halluc.world.scene import Obj, relation
                    oi, oj = (Obj(ann.objects[k].name, "", "", list(ann.objects[k].box)) for k in (i, j))
                    out.append((i, relation(oi, oj), j))
                else:
                    r = box_relation(ann.objects[i].box, ann.objects[j].box)
                    if r:
                        out.append((i, r, j))
        return out

    def _wrong_relation(self, ann, i, truth, j) -> str | None:
        if self.src.kind == "world":
            from halluc.world.language import RELATIONS
            from halluc.world.scene import relation_holds
            a, b = list(ann.objects[i].box), list(ann.objects[j].box)
            options = [r for r in RELATIONS if not relation_holds(r, a, b, self.src.cell)]
            return self.choice(options) if options else None
        if ann.relations:                                    # VG: only a known opposite contradicts
            opp = OPPOSITE.get(truth)
            return opp if opp and (i, opp, j) not in ann.relations else None
        return OPPOSITE[truth]                               # boxes: the opposite side cannot hold

    def _attr_values(self, kind: str) -> tuple[str, ...]:
        if self.src.kind == "world":
            from halluc.world.scene import COLOURS, SIZES
            return tuple(COLOURS) if kind == "colour" else SIZES
        return tuple(c for c in COLOURS_EN if c != "grey") if kind == "colour" else tuple(SIZES_EN)

    def _wrong_attr(self, inst: Instance, kind: str) -> str | None:
        truth = getattr(inst, kind)
        if truth is None:
            return None
        if kind == "size" and self.src.kind != "world":
            return SIZES_EN.get(truth)
        have = set(inst.attributes) | {truth}
        options = [v for v in self._attr_values(kind) if v not in have]
        return self.choice(options) if options else None

    def _absent(self, ann, sampling: str) -> tuple[str, str] | None:
        present = ann.names()
        absent = [c for c in self.vocab if c not in present]
        if not absent:
            return None
        if sampling == "random":
            return self.choice(absent), "random"
        if sampling == "popular":
            top = sorted(absent, key=lambda c: (-self.freq[c], c))[:3]
            return self.choice(top), "popular"
        planted = sorted({p for c in present for p in self.partners.get(c, []) if p not in present})
        if planted:
            return self.choice(planted), "adversarial"
        score = {c: sum(self.cooc.get(p, Counter())[c] for p in present) for c in absent}
        top = [c for c in sorted(absent, key=lambda c: (-score[c], c))[:3] if score[c] > 0]
        return (self.choice(top), "adversarial") if top else None

    # ------------------------------------------------------------ positives

    def positive(self, ann, kind):
        L, rng = self.lang, self.rng
        if kind == "existence":
            c = self.choice(sorted(ann.names()))
            return self._rec(ann, L.exist_q(c, rng), L.exist_a(c, True), "positive", "existence", "existence",
                             {"kind": "existence", "object": c, "claimed": True, "truth": True})
        if kind == "attribute":
            options = [(i, k) for i in ann.singles() for k in ("colour", "size") if getattr(ann.objects[i], k)]
            if not options:
                return None
            i, k = self.choice(options)
            o = ann.objects[i]
            v = getattr(o, k)
            if k == "colour" and rng.random() < 0.5:
                q, a = L.colour_q(o.name, rng), L.colour_a(o.name, v)
            else:
                q, a = L.attr_q(o.name, v, rng), L.attr_a(o.name, v, v)
            return self._rec(ann, q, a, "positive", "attribute", k,
                             {"kind": "attribute", "object": o.name, "attribute": k, "claimed": v, "truth": v})
        if kind == "count":
            options = [c for c in sorted(ann.names()) if not any(o.crowd for o in ann.objects if o.name == c)
                       and L.num(ann.count(c)) is not None]
            if not options:
                return None
            c = self.choice(options)
            n = ann.count(c)
            if rng.random() < 0.5:
                q, a = L.count_q(c, rng), L.count_a(c, n)
            else:
                q, a = L.count_claim_q(c, n, rng), L.count_claim_a(c, n, n)
            return self._rec(ann, q, a, "positive", "count", "count",
                             {"kind": "count", "object": c, "claimed": n, "truth": n})
        if kind == "relation":
            rels = self._relations(ann)
            if not rels:
                return None
            i, r, j = self.choice(rels)
            a, b = ann.objects[i].name, ann.objects[j].name
            return self._rec(ann, L.rel_q(a, r, b, rng), L.rel_a(a, r, r, b), "positive", "relation", "relation",
                             {"kind": "relation", "object": a, "other": b, "claimed": r, "truth": r})
        raise ValueError(kind)

    def description(self, ann):
        if self.src.kind == "world":
            from halluc.world.language import caption
            from halluc.world.scene import Obj, Scene, WorldConfig
            cell, g = self.src.cell, self.src.grid
            objs = [Obj(o.name, o.colour, o.size, list(o.box),        # cell index: the caption's reading order
                        int((o.box[1] + o.box[3]) / 2 // cell) * g + int((o.box[0] + o.box[2]) / 2 // cell))
                    for o in ann.objects]
            text = caption(Scene(str(ann.image_id), objs), WorldConfig(), self.rng)
        elif ann.captions:
            text = self.choice(ann.captions)
        else:                                                # VG without regions: list the objects
            counts = Counter(o.name for o in ann.objects)
            items = [f"{article(c)} {c}" if n == 1 else f"{self.lang.num(n)} {plural(c)}" for c, n in sorted(counts.items())]
            text = "The image shows " + (items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]) + "."
        return self._rec(ann, self.lang.describe, text, "positive", "description", "description",
                         {"kind": "description", "objects": sorted(ann.names())})

    # ------------------------------------------------------------ negatives

    def negative(self, ann, family, sampling):
        L, rng = self.lang, self.rng
        if family == "nonexistent":
            got = self._absent(ann, sampling)
            if got is None:
                return None
            c, sub = got
            return self._rec(ann, L.exist_q(c, rng), L.exist_a(c, False), "negative", "nonexistent", sub,
                             {"kind": "existence", "object": c, "claimed": True, "truth": False})
        if family == "existent":
            kinds = ["attribute", "count", "relation"]
            for k in [kinds[int(i)] for i in rng.permutation(3)]:
                rec = self._existent(ann, k)
                if rec:
                    return rec
            return None
        if family == "knowledge":
            kinds = ["absent", "attribute", "relation", "category"]
            for k in [kinds[int(i)] for i in rng.permutation(4)]:
                rec = self._knowledge(ann, k, sampling)
                if rec:
                    return rec
            return None
        raise ValueError(family)

    def _existent(self, ann, kind):
        L, rng = self.lang, self.rng
        if kind == "attribute":
            options = [(i, k) for i in ann.singles() for k in ("colour", "size") if self._wrong_attr(ann.objects[i], k)]
            if not options:
                return None
            i, k = self.choice(options)
            o = ann.objects[i]
            v, truth = self._wrong_attr(o, k), getattr(o, k)
            return self._rec(ann, L.attr_q(o.name, v, rng), L.attr_a(o.name, v, truth), "negative", "existent", k,
                             {"kind": "attribute", "object": o.name, "attribute": k, "claimed": v, "truth": truth})
        if kind == "count":
            options = [c for c in sorted(ann.names()) if not any(o.crowd for o in ann.objects if o.name == c)
                       and L.num(ann.count(c)) is not None]
            if not options:
                return None
            c = self.choice(options)
            n = ann.count(c)
            wrong = [m for m in (n - 2, n - 1, n + 1, n + 2) if m >= 1 and L.num(m) is not None]
            if not wrong:
                return None
            m = self.choice(wrong)
            return self._rec(ann, L.count_claim_q(c, m, rng), L.count_claim_a(c, m, n), "negative", "existent", "count",
                             {"kind": "count", "object": c, "claimed": m, "truth": n})
        rels = [(i, r, j, self._wrong_relation(ann, i, r, j)) for i, r, j in self._relations(ann)]
        rels = [x for x in rels if x[3]]
        if not rels:
            return None
        i, r, j, w = self.choice(rels)
        a, b = ann.objects[i].name, ann.objects[j].name
        return self._rec(ann, L.rel_q(a, w, b, rng), L.rel_a(a, w, r, b), "negative", "existent", "relation",
                         {"kind": "relation", "object": a, "other": b, "claimed": w, "truth": r})

    def _knowledge(self, ann, kind, sampling):
        L, rng = self.lang, self.rng
        if kind == "absent":
            got = self._absent(ann, sampling)
            if got is None:
                return None
            c, sub = got
            return self._rec(ann, L.premise_absent_q(c, rng), L.premise_absent_a(c), "negative", "knowledge",
                             f"premise_absent_{sub}", {"kind": "existence", "object": c, "claimed": True, "truth": False})
        if kind == "attribute":
            # the world asks "what color is the large star ?" (size presupposed); English "why is the car red?"
            k = "size" if self.src.kind == "world" else None
            options = [(i, kk) for i in ann.singles() for kk in ((k,) if k else ("colour", "size"))
                       if self._wrong_attr(ann.objects[i], kk)]
            if not options:
                return None
            i, kk = self.choice(options)
            o = ann.objects[i]
            v, truth = self._wrong_attr(o, kk), getattr(o, kk)
            return self._rec(ann, L.premise_attr_q(o.name, v, kk, rng), L.premise_attr_a(o.name, v, truth, kk),
                             "negative", "knowledge", "premise_attribute",
                             {"kind": "attribute", "object": o.name, "attribute": kk, "claimed": v, "truth": truth})
        if kind == "relation":
            rels = [(i, r, j, self._wrong_relation(ann, i, r, j)) for i, r, j in self._relations(ann)]
            rels = [x for x in rels if x[3]]
            if not rels:
                return None
            i, r, j, w = self.choice(rels)
            a, b = ann.objects[i].name, ann.objects[j].name
            return self._rec(ann, L.premise_rel_q(a, w, b, rng), L.premise_rel_a(a, w, r, b), "negative", "knowledge",
                             "premise_relation", {"kind": "relation", "object": a, "other": b, "claimed": w, "truth": r})
        # category: a COCO object put in the wrong supercategory
        sup = self.src.supercategory
        options = [c for c in sorted(ann.names()) if c in sup]
        supers = sorted(set(sup.values()))
        if not options or len(supers) < 2:
            return None
        c = self.choice(options)
        wrong = self.choice([s for s in supers if s != sup[c]])
        q = L.premise_category_q(c, wrong, rng)
        if q is None:
            return None
        return self._rec(ann, q, L.premise_category_a(c, wrong, sup[c]), "negative", "knowledge", "premise_category",
                         {"kind": "category", "object": c, "claimed": wrong, "truth": sup[c]})


def _messages(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]},
            {"role": "assistant", "content": [{"type": "text", "text": a}]}]


@lru_cache(maxsize=None)
def _world_vocabulary() -> frozenset[str]:
    from halluc.world.vlm import vocabulary
    return frozenset(vocabulary())


def check_world_vocabulary(rec: dict) -> None:
    """World records must stay inside the builtin model's word-level vocabulary (else words become <unk>)."""
    from halluc.world.language import tokens
    vocab = _world_vocabulary()
    bad = sorted({t for t in tokens(rec["question"]) + tokens(rec["answer"]) if t not in vocab})
    if bad:
        raise AssertionError(f"world record outside the vocabulary ({', '.join(bad)}): {rec['question']!r} -> {rec['answer']!r}")


def generate(src: Source, cfg: NegConfig = NegConfig()) -> tuple[list[dict], dict]:
    """Records and a summary. Slots (negative / description / positive) are apportioned over all
    images x per_image exactly, shuffled with the seed; families and absent-object samplings likewise."""
    import numpy as np
    rng = np.random.default_rng(cfg.seed)
    anns = src.annotations[:cfg.limit] if cfg.limit is not None else list(src.annotations)
    lang = WorldLang() if src.kind == "world" else EnglishLang()
    mk = _Maker(src, lang, rng)
    total = len(anns) * cfg.per_image
    n_neg = round(cfg.neg_ratio * total)
    n_cap = round(cfg.caption_share * total)
    slots = ["negative"] * n_neg + ["description"] * n_cap + ["positive"] * (total - n_neg - n_cap)
    rng.shuffle(slots)
    fam = _quota(n_neg, list(cfg.families))
    rng.shuffle(fam)
    samp = _quota(n_neg, list(cfg.sampling))
    rng.shuffle(samp)
    records: list[dict] = []
    owed: list[tuple[str, str]] = []    # negatives an image could not give: a later positive slot takes them
    fallbacks = Counter()
    k_neg = 0

    def fresh(make, seen, tries=4):
        for _ in range(tries):
            rec = make()
            if rec is None or (rec["question"], rec["answer"]) not in seen:
                return rec
        return None

    def negative(ann, f, s, seen):
        for ff in [f] + [x for x, w in cfg.families if x != f and w > 0]:
            rec = fresh(lambda: mk.negative(ann, ff, s), seen)
            if rec is not None:
                fallbacks[f"{f}->{ff}"] += ff != f
                return rec
        return None

    pk = [k for k, w in cfg.positives if w > 0]
    pw = np.array([w for _, w in cfg.positives if w > 0], dtype=float)

    def positive(ann, seen):
        # kinds in a weighted random order (without replacement): the first one the image can give wins
        keys = rng.random(len(pk)) ** (1.0 / pw)
        kinds = [pk[int(i)] for i in np.argsort(-keys)]
        for k in kinds:
            rec = fresh(lambda: mk.positive(ann, k), seen, 3)
            if rec is not None:
                return rec
        for k in kinds:                                 # every positive asked already: repeat one
            rec = mk.positive(ann, k)
            if rec is not None:
                return rec
        return mk.description(ann)

    for n_img, ann in enumerate(anns):
        seen: set[tuple[str, str]] = set()
        for slot in slots[n_img * cfg.per_image:(n_img + 1) * cfg.per_image]:
            rec = None
            if slot == "negative":
                f, s = fam[k_neg], samp[k_neg]
                k_neg += 1
                rec = negative(ann, f, s, seen)
                if rec is None:
                    owed.append((f, s))
                    rec = positive(ann, seen)
            elif slot == "description":
                rec = fresh(lambda: mk.description(ann), seen, 2) or mk.description(ann)
            else:
                if owed:
                    rec = negative(ann, *owed[0], seen)
                    if rec is not None:
                        owed.pop(0)
                rec = rec or positive(ann, seen)
            seen.add((rec["question"], rec["answer"]))
            records.append(rec)
    for i, r in enumerate(records):
        if src.kind == "world":
            check_world_vocabulary(r)
        iid = re.split(r"[\\/]", str(r["image_id"]))[-1]        # an image id that is a path: no path in the id
        r["id"] = f"{src.name}/{iid}/{i}"
        r["messages"] = _messages(r["question"], r["answer"])
        r["images"] = [r["image"]]
        r["source"] = src.kind
    by = lambda key: dict(sorted(Counter(r[key] for r in records).items()))
    negs = sum(r["polarity"] == "negative" for r in records)
    summary = {"images": len(anns), "records": len(records), "negatives": negs,
               "neg_ratio": round(negs / len(records), 4) if records else 0.0,
               "descriptions": sum(r["family"] == "description" for r in records),
               "by_task": by("task"), "by_subtype": by("subtype"),
               "unfilled_negatives": len(owed), "family_fallbacks": dict(fallbacks),
               "skipped_annotations": len(src.bad)}
    return records, summary


# ---------------------------------------------------------------- CLI

def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "negatives", help="LRV-style instruction data from annotations: positives + nonexistent/existent/knowledge negatives",
        description="Generate LRV-style positive and negative instructions (DESIGN.md §6) from controlled-world scenes, "
                    "COCO instances + captions, or a Visual-Genome-like JSON. Output JSONL: image_id, question, answer, "
                    "task (LRV's fields), claim, messages + images (TRL's conversational form).")
    src = p.add_argument_group("annotations (one of)")
    src.add_argument("--world", help="a world split: world-train (builtin) or a folder with scenes.jsonl")
    src.add_argument("--coco-instances", type=Path, help="COCO instances_*.json")
    src.add_argument("--vg", type=Path, help="Visual-Genome-like JSON: images with objects, attributes, relationships")
    p.add_argument("--coco-captions", type=Path, help="COCO captions_*.json for descriptions (with --coco-instances)")
    p.add_argument("--images", type=Path, help="folder the annotations' image file names are relative to "
                   "(default: the annotation file's folder)")
    p.add_argument("--out", type=Path, required=True, help="output JSONL; run.json goes next to it; image paths "
                   "in it are relative to its folder")
    p.add_argument("--neg-ratio", type=number(0, 1), default=NegConfig.neg_ratio,
                   help="share of negatives among all records, in [0, 1] (default %(default)s)")
    p.add_argument("--caption-share", type=number(0, 1), default=NegConfig.caption_share,
                   help="share of descriptions among all records, in [0, 1]; with --neg-ratio at most 1 "
                        "(default %(default)s)")
    p.add_argument("--per-image", type=at_least(1), default=NegConfig.per_image,
                   help="records per image (default %(default)s)")
    p.add_argument("--families", default="nonexistent,existent,knowledge",
                   help="negative families, optionally weighted: nonexistent=2,existent=1,knowledge=1 (default %(default)s)")
    p.add_argument("--sampling", default="random,popular,adversarial",
                   help="how absent objects are chosen, optionally weighted (default %(default)s)")
    p.add_argument("--positives", default="existence,attribute,count,relation",
                   help="positive question kinds, optionally weighted: existence=2,attribute=1 (default %(default)s)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--limit", type=at_least(1), help="only the first N good images")
    p.add_argument("--min-images", type=at_least(1), default=1,
                   help="Visual Genome: ask about absent names seen in at least N images (default %(default)s)")
    p.add_argument("--strict", action="store_true", help="any malformed annotation is fatal (exit code 2)")
    p.add_argument("--overwrite", action="store_true", help="regenerate even if the output is up to date")
    p.set_defaults(func=run)
    return p


def check_inputs(args) -> None:
    """Every path option, before any work: a FIFO, a folder or a missing file is one line naming the option."""
    output_file(args.out, "--out")
    given = [x for x in (args.world, args.coco_instances, args.vg) if x]
    if len(given) != 1:
        raise ValueError("give one source: --world, --coco-instances or --vg")
    if args.coco_captions and not args.coco_instances:
        raise ValueError("--coco-captions goes with --coco-instances")
    for opt in ("coco_instances", "coco_captions", "vg"):
        if getattr(args, opt):
            input_file(getattr(args, opt), "--" + opt.replace("_", "-"))
    if args.images:
        input_dir(args.images, "--images")


def load_source(args, echo: bool = True) -> Source:
    """The one source the arguments name (after ``check_inputs``)."""
    if args.world:
        return load_world(args.world, echo=echo)
    if args.coco_instances:
        return load_coco(args.coco_instances, args.coco_captions, args.images, echo=echo)
    return load_vg(args.vg, args.images, args.min_images, echo=echo)


def _input_stamps(args) -> dict:
    """Size and modification time of the annotation files: an output is up to date only for the same inputs."""
    files = [args.coco_instances, args.coco_captions, args.vg]
    if args.world:
        d = Path(args.world)
        files.append(d / "scenes.jsonl" if d.is_dir() else None)
    out = {}
    for f in files:
        if f is not None and Path(f).exists():
            st = Path(f).stat()
            out[str(f)] = [st.st_size, st.st_mtime_ns]
    return out


def relative_images(records: list[dict], out: Path) -> None:
    """Image paths relative to the output's folder (real paths, so that ``..`` means what the kernel
    reads): the data set and its images move together."""
    base = os.path.realpath(out.parent)
    for r in records:
        r["image"] = os.path.relpath(os.path.realpath(r["image"]), base)
        r["images"] = [r["image"]]


def _run(args) -> int:
    from halluc.images import max_pixels
    from halluc.records import atomic_write_jsonl, write_manifest
    t0 = time.perf_counter()
    check_inputs(args)
    max_pixels()                        # a bad HALLUC_MAX_IMAGE_PIXELS: one error, not one per image
    cfg = NegConfig(neg_ratio=args.neg_ratio, caption_share=args.caption_share, per_image=args.per_image,
                    families=parse_weights(args.families, FAMILIES, "families"),
                    sampling=parse_weights(args.sampling, SAMPLINGS, "sampling"),
                    positives=parse_weights(args.positives, POSITIVE_KINDS, "positives"), seed=args.seed, limit=args.limit)
    from halluc.records import args_config
    config = {k: v for k, v in args_config(args).items() if k not in ("overwrite", "strict")}
    config["inputs"] = _input_stamps(args)
    man = args.out.parent / "run.json"
    if args.out.exists() and man.exists() and not (args.overwrite or args.strict):
        try:
            old = read_json(man)
        except BadInput:                # unreadable or corrupt: regenerate (it is replaced below)
            old = {}
        if old.get("command") == "negatives" and old.get("config") == config:
            print(f"{args.out} is up to date ({old.get('summary', {}).get('records', '?')} records); "
                  f"--overwrite regenerates it", file=sys.stderr)
            return 0
    src = load_source(args)
    if args.strict and src.bad:
        print(f"error: {len(src.bad)} malformed annotation(s) under --strict; first: {src.bad[0]}", file=sys.stderr)
        return 2
    if not src.annotations:
        print(f"error: no usable annotation ({len(src.bad)} skipped)", file=sys.stderr)
        return 2
    records, summary = generate(src, cfg)
    relative_images(records, args.out)
    atomic_write_jsonl(args.out, records)
    summary["skipped"] = [str(b) for b in src.bad[:100]]
    write_manifest(args.out.parent, command="negatives", config=config, seed=args.seed,
                   extra={"output": str(args.out), "source": src.kind, "neg_config": asdict(cfg), "summary": summary})
    dt = time.perf_counter() - t0
    print(f"{summary['records']} records from {summary['images']} images: {summary['negatives']} negatives "
          f"(ratio {summary['neg_ratio']:.3f}), {summary['descriptions']} descriptions; "
          f"{len(src.bad)} annotation(s) skipped; {summary['unfilled_negatives']} negatives unfilled -> {args.out} "
          f"({dt:.1f}s)", file=sys.stderr)
    print("by task: " + ", ".join(f"{k} {v}" for k, v in summary["by_task"].items()), file=sys.stderr)
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    return module_main(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
