"""``halluc negatives``: LRV-style instruction data from annotations (DESIGN.md §6).

    halluc negatives --world world-train --out data/lrv/train.jsonl                  # the controlled world
    halluc negatives --world world-train --neg-ratio 0 --out data/pos/train.jsonl    # positives only (a control)
    halluc negatives --coco-instances instances_train2014.json --coco-captions captions_train2014.json \\
                     --images train2014/ --out coco_lrv.jsonl
    halluc negatives --vg vg.json --images vg/ --families nonexistent=2,existent=1 --out vg_lrv.jsonl

    add_options(parser); summary = run(parser.parse_args(argv))       # what the command and the runner do

Sources: a controlled-world split (``world-train`` or any folder with ``scenes.jsonl``; the registry's
``negatives-source`` entry ``world``, a plug-in), COCO instances (+ captions), or a Visual-Genome-like
JSON (a list of images, each with ``objects`` (``names``/``name``, ``attributes``, ``x y w h``) and
``relationships`` (``subject_id``, ``predicate``, ``object_id``)). Every image gets ``--per-image``
instructions:

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

Modules: ``sources`` (the data model, the COCO and VG loaders), ``phrasing`` (English), ``sampler``
(configuration, shares, absent objects), ``maker`` (one instruction), ``build`` (``generate``).
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

from halluc.command import at_least, number, seed
from halluc.errors import BadInput
from halluc.paths import input_dir, input_file, output_file, read_json
from halluc.pipelines.negatives.build import generate
from halluc.pipelines.negatives.phrasing import EnglishLang
from halluc.pipelines.negatives.sampler import FAMILIES, POSITIVE_KINDS, SAMPLINGS, TASKS, NegConfig, parse_weights
from halluc.pipelines.negatives.sources import Annotation, Bad, Instance, Source, cooccurrence, load_coco, load_vg

__all__ = ["FAMILIES", "POSITIVE_KINDS", "SAMPLINGS", "TASKS", "Annotation", "Bad", "EnglishLang", "Instance",
           "NegConfig", "Source", "add_options", "check_inputs", "cooccurrence", "generate", "load_coco",
           "load_source", "load_vg", "parse_weights", "relative_images", "run"]


def add_options(p) -> None:
    """The options of ``halluc negatives`` (the command's and the experiment runner's parser)."""
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
    """The one source the arguments name (after ``check_inputs``); the world's through the registry."""
    if args.world:
        from halluc.registry import resolve
        return resolve("negatives-source", "world")(args.world, echo=echo)
    if args.coco_instances:
        return load_coco(args.coco_instances, args.coco_captions, args.images, echo=echo)
    return load_vg(args.vg, args.images, args.min_images, echo=echo)


def input_stamps(args) -> dict:
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


def _config(args) -> NegConfig:
    return NegConfig(neg_ratio=args.neg_ratio, caption_share=args.caption_share, per_image=args.per_image,
                     families=parse_weights(args.families, FAMILIES, "families"),
                     sampling=parse_weights(args.sampling, SAMPLINGS, "sampling"),
                     positives=parse_weights(args.positives, POSITIVE_KINDS, "positives"), seed=args.seed,
                     limit=args.limit)


def _up_to_date(args, config: dict) -> dict | None:
    """The summary of an earlier run with the same configuration and inputs, if its output is there."""
    man = args.out.parent / "run.json"
    if args.out.exists() and man.exists() and not (args.overwrite or args.strict):
        try:
            old = read_json(man)
        except BadInput:                # unreadable or corrupt: regenerate (it is replaced below)
            old = {}
        if old.get("command") == "negatives" and old.get("config") == config:
            return old
    return None


def run(args) -> dict:
    """Generate the data set the arguments describe; the summary written to run.json (with
    ``up_to_date`` instead when an earlier run already made it). Bad input raises (one line, exit 2)."""
    from halluc.images import max_pixels
    from halluc.outputs import atomic_write_jsonl
    from halluc.provenance import args_config, write_manifest
    check_inputs(args)
    max_pixels()                        # a bad HALLUC_MAX_IMAGE_PIXELS: one error, not one per image
    cfg = _config(args)
    config = {k: v for k, v in args_config(args).items() if k not in ("overwrite", "strict")}
    config["inputs"] = input_stamps(args)
    old = _up_to_date(args, config)
    if old is not None:
        records = old.get("summary", {}).get("records", "?")
        print(f"{args.out} is up to date ({records} records); --overwrite regenerates it", file=sys.stderr)
        return {"up_to_date": True, "records": records, "output": str(args.out)}
    src = load_source(args)
    if args.strict and src.bad:
        raise BadInput(f"{len(src.bad)} malformed annotation(s) under --strict; first: {src.bad[0]}")
    if not src.annotations:
        raise BadInput(f"no usable annotation ({len(src.bad)} skipped)")
    records, summary = generate(src, cfg)
    relative_images(records, args.out)
    atomic_write_jsonl(args.out, records)
    summary["skipped"] = [str(b) for b in src.bad[:100]]
    write_manifest(args.out.parent, command="negatives", config=config, seed=args.seed,
                   extra={"output": str(args.out), "source": src.kind, "neg_config": asdict(cfg), "summary": summary})
    return summary
