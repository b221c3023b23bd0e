"""What a decode run reads: one ``Item`` per input, from a registered dataset, a POPE-format question
file, the CHAIR-500 COCO images, or a folder of images; and where a record's image is.

    items, source, kind = load_items(args, errors)      # kind: caption | question
    image_path(rec, images_dir)                         # rec["image"], or COCO_val2014_<id>.jpg under it
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from halluc.paths import input_dir

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CAPTION_PROMPT = "Please describe this image in detail."   # the CHAIR prompt of LLaVA-1.5/VCD/OPERA runs
COCO_IMAGE = "COCO_val2014_{:012d}.jpg"
COCO_ID = re.compile(r"COCO_\w+?_(\d{12})")
DEFAULT_DATASET = "world-bias"


@dataclass
class Item:
    id: str
    image: Path
    prompt: str
    where: str                       # what to name in an error: file:line or the image path
    fields: dict = field(default_factory=dict)   # extra record fields: image_id, question_id


@dataclass
class Source:
    items: list[Item]
    name: str                        # for default output paths
    kind: str                        # caption | question
    max_new_tokens: int | None = None


def image_path(rec: dict, images: Path | None) -> str | None:
    """Where a record's image is: its ``image`` (relative ones under ``images``), else the COCO file
    name of its integer ``image_id`` under ``images``."""
    img = rec.get("image")
    if isinstance(img, str) and img:
        p = Path(img)
        return str(p if p.is_absolute() or images is None else images / p)
    iid = rec.get("image_id")
    if images is not None and isinstance(iid, int) and not isinstance(iid, bool):
        return str(images / COCO_IMAGE.format(iid))
    return None


def _image_id(name: str):
    m = COCO_ID.search(name)
    return int(m.group(1)) if m else Path(name).stem


def load_items(args, errors: list[str]) -> Source:
    """The inputs in order; bad question lines are added to ``errors``."""
    from halluc.registry import entry
    n_src = sum(x is not None and x is not False for x in (args.dataset, args.questions, args.coco_chair500 or None))
    with_images = bool(args.dataset) and entry("dataset", args.dataset).meta.get("needs_images", False)
    if n_src > 1 or (args.dataset and args.images and not with_images):
        raise ValueError("give one input: --dataset, --questions, --coco-chair500 or --images alone")
    if with_images and not args.images:
        raise ValueError(f"--dataset {args.dataset} needs --images DIR (its images are not shipped: the folder "
                         "holding them)")
    if (args.questions or args.coco_chair500) and not args.images:
        raise ValueError(f"{'--questions' if args.questions else '--coco-chair500'} needs --images DIR (where the images are)")
    if args.images is not None:
        input_dir(args.images, "--images")
    if args.questions:
        return Source(question_items(args.questions, args.images, args.prompt, errors), args.questions.stem, "question")
    if args.coco_chair500:
        return Source(chair500_items(args.images, args.prompt or CAPTION_PROMPT), "chair500", "caption")
    if args.images and not args.dataset:
        return Source(folder_items(args.images, args.prompt or CAPTION_PROMPT), args.images.name or "images", "caption")
    return dataset_items(args.dataset or DEFAULT_DATASET, args.prompt, errors, args.images)


def folder_items(folder: Path, prompt: str) -> list[Item]:
    if not folder.is_dir():
        raise FileNotFoundError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and not p.is_dir())
    if not files:
        raise FileNotFoundError(f"--images {folder}: no image files ({', '.join(sorted(IMAGE_EXTS))})")
    stems = [str(p.relative_to(folder).with_suffix("")) for p in files]
    dup = {s for s in stems if stems.count(s) > 1}          # a.jpg and a.png: keep the extension in the id
    return [Item(str(p.relative_to(folder)) if s in dup else s, p, prompt, str(p), {"image_id": _image_id(p.name)})
            for s, p in zip(stems, files)]


def chair500_items(folder: Path, prompt: str) -> list[Item]:
    from halluc.assets import asset_path
    ids = json.loads(asset_path("coco_chair/chair500_ids.json").read_text())["image_ids"]
    return [Item(f"chair500/{i}", folder / COCO_IMAGE.format(i), prompt, str(folder / COCO_IMAGE.format(i)),
                 {"image_id": i}) for i in ids]


def question_items(path: Path, folder: Path, prompt: str | None, errors: list[str]) -> list[Item]:
    from halluc.records import ReadReport, read_records
    report = ReadReport(echo=False)
    out = []
    for it in read_records(path, need_text=True, text_key="text", id_key="question_id",
                           required={"image": str}, report=report):
        fields = {"question_id": it.rec["question_id"], "image_id": it.rec.get("image_id", _image_id(it.rec["image"]))}
        out.append(Item(it.id, folder / it.rec["image"], (prompt or "{question}").replace("{question}", it.text),
                        f"{path}:{it.line}", fields))
    errors += [str(b) for b in report.bad]
    return out


def dataset_items(name: str, prompt: str | None, errors: list[str], images: Path | None = None) -> Source:
    """A registered dataset (the builtin world's splits are the plug-in's). A dataset whose images are
    the user's (AMBER) is given the ``--images`` folder and names its images relative to it."""
    from halluc.registry import entry, resolve
    ds = resolve("dataset", name)(name, images) if entry("dataset", name).meta.get("needs_images") \
        else resolve("dataset", name)(name)
    if ds["kind"] == "question":
        items = question_items(ds["questions"], ds["images"], prompt, errors)
        for it in items:
            it.id = f"{ds['prefix']}/{it.id}"
        return Source(items, name, "question")
    items = [Item(rid, img, prompt or ds["prompt"], str(img), {"image_id": iid}) for rid, img, iid in ds["items"]]
    return Source(items, name, "caption", ds.get("max_new_tokens"))
