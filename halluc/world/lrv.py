"""The controlled world as a source of LRV-style instructions (``halluc negatives --world``): its
scenes read into the negatives' data model, and its grammar (the builtin model's word-level
vocabulary) as the phrasing. Registered as the ``negatives-source`` entry ``world``.

    src = load_world("world-train")          # or a folder with scenes.jsonl
    records, summary = generate(src, NegConfig())   # halluc.pipelines.negatives: src.lang is WorldLang
    check_world_vocabulary(records[0])       # raises when a word is outside the builtin model's vocabulary

Only drawn objects count: a training scene's hidden partner (named by its caption, not drawn) is absent
from the image, so asking about it is a nonexistent-object negative -- the adversarial case itself.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from halluc.errors import BadInput
from halluc.geometry import dominant_relation, relation_holds
from halluc.images import image_problem
from halluc.paths import input_dir, input_file, read_json
from halluc.pipelines.negatives.sources import Annotation, Bad, Instance, Source, finite_number, report, source_name
from halluc.text.english import article
from halluc.world.language import NUMBERS, PLURAL, PROMPT_DESCRIBE, RELATIONS, caption, tokens
from halluc.world.scene import CLASSES, COLOURS, SIZES, Obj, Scene, WorldConfig


def load_world(split: str | Path, echo: bool = True) -> Source:
    """A world split: a builtin name (``world-train``...) or a folder with ``scenes.jsonl``."""
    from halluc.records import ReadReport, read_records
    d = _world_dir(split)
    pairs, cell, grid = _layout(d)
    path = d / "scenes.jsonl"
    src = Source("world", [], pairs=pairs, vocabulary=CLASSES, name=source_name(split), cell=cell, grid=grid,
                 lang=WorldLang(cell, grid))
    rep = ReadReport(echo=False)
    for it in read_records(path, id_key="image_id", required={"objects": list, "image": str}, report=rep):
        where = f"line {it.line} (image_id {it.id})"
        objs, problem = _objects(it.rec["objects"])
        img = d / it.rec["image"]
        if problem is None and not objs:
            problem = "no visible object"
        if problem is None:
            problem = image_problem(img)
        if problem:
            report(src.bad, Bad(str(path), where, problem), echo)
            continue
        src.annotations.append(Annotation(it.rec["image_id"], str(img), objs))
    for b in rep.bad:
        report(src.bad, Bad(b.path, f"line {b.line}", f"{b.field}: {b.message}" if b.field else b.message), echo)
    return src


def _layout(d: Path) -> tuple[tuple, float, int]:
    """The split's planted pairs, grid cell in pixels and cells per side (meta.json, else the defaults)."""
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
    return pairs, cell, grid


def _objects(objects: list) -> tuple[list[Instance], str | None]:
    """A scene's drawn objects, or the first problem with one."""
    objs = []
    for k, o in enumerate(objects):
        if not isinstance(o, dict):
            return objs, f"objects[{k}]: expected an object"
        if o.get("cls") not in CLASSES:
            return objs, f"objects[{k}].cls: {o.get('cls')!r} is not a world class"
        if o.get("colour") not in COLOURS or o.get("size") not in SIZES:
            return objs, f"objects[{k}]: colour/size {o.get('colour')!r}/{o.get('size')!r} not in the world's"
        if not o.get("visible", True):
            continue                                   # hidden partner: not in the image
        if not (isinstance(o.get("box"), list) and len(o["box"]) == 4 and all(map(finite_number, o["box"]))
                and o["box"][0] < o["box"][2] and o["box"][1] < o["box"][3]):
            return objs, f"objects[{k}].box: expected [x0, y0, x1, y1] with x0 < x1, y0 < y1, got {o.get('box')!r}"
        objs.append(Instance(o["cls"], o["colour"], o["size"], box=tuple(float(v) for v in o["box"])))
    return objs, None


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


@lru_cache(maxsize=None)
def _world_vocabulary() -> frozenset[str]:
    from halluc.world.vlm import vocabulary
    return frozenset(vocabulary())


def check_world_vocabulary(rec: dict) -> None:
    """World records must stay inside the builtin model's word-level vocabulary (else words become <unk>)."""
    vocab = _world_vocabulary()
    bad = sorted({t for t in tokens(rec["question"]) + tokens(rec["answer"]) if t not in vocab})
    if bad:
        raise AssertionError(f"world record outside the vocabulary ({', '.join(bad)}): {rec['question']!r} -> {rec['answer']!r}")


class WorldLang:
    """The controlled world's grammar and word-level vocabulary (lower case, spaced punctuation), and its
    rules: relations on its grid, its palette and sizes, its caption grammar."""
    premise_attributes = ("size",)          # "what color is the large star ?": a size is presupposed
    size_opposites = None                   # a wrong size is any other of the world's

    def __init__(self, cell: float = 16.0, grid: int = 4):
        self.numbers, self.plurals, self.describe = NUMBERS, PLURAL, PROMPT_DESCRIBE
        self.cell, self.grid = cell, grid

    # ------------------------------------------------------------ the world's rules

    def relation(self, a, b) -> str:
        return dominant_relation(list(a), list(b))

    def wrong_relation(self, a, truth: str, b, rng) -> str | None:
        """Any relation that does not hold between the two boxes on the world's grid."""
        options = [r for r in RELATIONS if not relation_holds(r, list(a), list(b), self.cell)]
        return options[int(rng.integers(len(options)))] if options else None

    def attr_values(self, kind: str) -> tuple[str, ...]:
        return tuple(COLOURS) if kind == "colour" else SIZES

    def description(self, ann, rng) -> str:
        """The world's own caption of the drawn objects."""
        cell, g = self.cell, self.grid
        objs = [Obj(o.name, o.colour, o.size, list(o.box),        # cell index: the caption's reading order
                    int((o.box[1] + o.box[3]) / 2 // cell) * g + int((o.box[0] + o.box[2]) / 2 // cell))
                for o in ann.objects]
        return caption(Scene(str(ann.image_id), objs), WorldConfig(), rng)

    def check(self, rec: dict) -> None:
        check_world_vocabulary(rec)

    # ------------------------------------------------------------ words

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
