"""``halluc correct``: find and fix hallucinated objects, counts, attributes and relations in captions.

    halluc correct runs/world-bias-greedy-s0/captions.jsonl            # world records: world-yolo, their images
    halluc correct captions.jsonl --detector hf-grounding-dino:/models/gdino-tiny --images val2014/
    halluc correct shield.jsonl --detector oracle:coco                # ground-truth objects, no image needed
    halluc correct captions.jsonl --detector yolo:/models/yolov8x --grounding --out fixed.jsonl   # convert-yolo'd

Woodpecker's stages without an LLM (DESIGN.md §6): claims from a spaCy parse, one detector call per
image, verdicts from boxes and pixels, deterministic edits. Each output record is the input record plus
``claims``, ``evidence``, ``corrected_text``, ``edits`` and ``sentences_removed`` (DESIGN.md §2);
``halluc eval chair|world --text-key corrected_text`` scores the corrections. ``run.json`` goes next
to the output. A rerun skips ids already written (``--overwrite`` redoes them). A malformed input
line is reported and skipped; a record with a missing image, an empty or non-English caption keeps
its text and gets an ``error`` field; everything is counted in the summary.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from halluc.command import at_least, guard, module_main

WORLD_DETECTOR = "world-yolo"
COCO_IMAGE = "COCO_val2014_{:012d}.jpg"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "correct", help="correct captions: claims -> detector -> verdicts -> edits (Woodpecker-style, local)",
        description="Post-hoc correction (DESIGN.md §6). World records (ids world-*) default to the world-yolo "
                    "detector and the images named in the records; other records need --detector.")
    p.add_argument("file", type=Path, help="captions JSONL (text/caption/answer, image, image_id)")
    p.add_argument("--detector", help="world-yolo, hf-grounding-dino:PATH, owlv2:PATH, yolo:DIR (safetensors, from "
                   "halluc convert-yolo), oracle:coco, "
                   "oracle:INSTANCES.json or oracle:world:SPLIT_DIR (default: world-yolo on world records)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="det_options",
                   help="a detector option, e.g. --set box_threshold=0.3 --set device=cuda")
    p.add_argument("--images", type=Path, help="folder that relative image paths (or COCO image ids) refer to")
    p.add_argument("--out", type=Path, help="output JSONL (default <input>.corrected/corrected.jsonl beside the input)")
    p.add_argument("--batch-size", type=at_least(1), default=16)
    p.add_argument("--limit", type=at_least(1), help="only the first N records")
    p.add_argument("--overwrite", action="store_true", help="start the output afresh instead of resuming")
    p.add_argument("--grounding", action="store_true", help="attach boxes to objects: dog([x1, y1, x2, y2]), in [0, 1]")
    p.add_argument("--no-cache", action="store_true", help="do not use or fill the detection cache")
    p.add_argument("--synonyms", type=Path, help="object vocabulary of non-world records (default: COCO's CHAIR table)")
    p.add_argument("--variant", choices=["singularize", "lemma"], default="singularize",
                   help="CHAIR word normaliser used to find object words (default %(default)s)")
    p.add_argument("--text-key", help="field holding the caption (default: text, caption or answer)")
    p.add_argument("--id-key", help="field holding the record id")
    p.add_argument("--trust-pickle", action="store_true", help="allow --detector yolo:FILE.pt. A .pt is a pickle: "
                   "loading it runs code from the file. Convert it once instead (halluc convert-yolo) and "
                   "pass yolo:FOLDER")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _image_path(rec: dict, images: Path | None) -> str | None:
    img = rec.get("image")
    if isinstance(img, str) and img:
        p = Path(img)
        return str(p if p.is_absolute() or images is None else images / p)
    iid = rec.get("image_id")
    if images is not None and isinstance(iid, int) and not isinstance(iid, bool):
        return str(images / COCO_IMAGE.format(iid))
    return None


def _run(args) -> int:
    from decoding.params import parse_assignments
    from halluc.records import ReadReport, ResumableWriter, args_config, read_records, write_manifest

    from halluc.paths import input_dir, input_file, output_file
    t0 = time.perf_counter()
    options = parse_assignments(args.det_options)
    if args.trust_pickle:
        options["trust_pickle"] = True
    if args.images is not None:
        input_dir(args.images, "--images")
    if args.synonyms is not None:
        input_file(args.synonyms, "--synonyms")
    report = ReadReport()
    items = list(read_records(args.file, need_text=True, text_key=args.text_key, id_key=args.id_key, report=report))
    if args.limit is not None:
        items = items[:args.limit]
    if not items:
        raise ValueError(f"{args.file}: no record to correct ({report.summary()})")

    from correction.pipeline import Job, coco_domain, domain_for, is_world
    from correction.claims import Domain
    paths = [_image_path(it.rec, args.images) for it in items]
    spec = args.detector
    if spec is None:
        if not all(is_world(it.rec, p) for it, p in zip(items, paths)):
            raise ValueError("records other than controlled-world ones need --detector (e.g. oracle:coco, "
                             "hf-grounding-dino:PATH, yolo:DIR)")
        spec = WORLD_DETECTOR
    default = Domain.from_synonyms(str(args.synonyms), args.variant) if args.synonyms else coco_domain(args.variant)

    out = output_file(args.out or args.file.parent / f"{args.file.name.removesuffix('.jsonl')}.corrected" /
                      "corrected.jsonl", "--out" if args.out else "output")
    import detectors
    from correction.claims import parser
    from correction.pipeline import Corrector
    detector = detectors.load(spec, cache=not args.no_cache, **options)   # a bad spec fails before any output
    writer = ResumableWriter(out, overwrite=args.overwrite)
    todo = [(it, p) for it, p in zip(items, paths) if it.id not in writer.done]
    n_resumed = len(items) - len(todo)
    module, nlp = parser()
    corrector = Corrector(detector, grounding=args.grounding, nlp=nlp)

    from tqdm import tqdm
    bar = tqdm(total=len(todo), unit="cap", desc="correct", disable=args.no_progress, file=sys.stderr)
    tally = Counter()
    errors = [str(b) for b in report.bad]
    t_loop = time.perf_counter()          # correcting alone: spaCy and detector loading left out
    try:
        for i in range(0, len(todo), args.batch_size):
            chunk = todo[i:i + args.batch_size]
            jobs = [Job(it.rec, it.text, domain_for(it.rec, p, default, args.variant), image_path=p,
                        image_id=it.rec.get("image_id", it.id)) for it, p in chunk]
            for (it, _), rec in zip(chunk, corrector.correct(jobs)):
                writer.write(rec)
                tally["records"] += 1
                tally["claims"] += len(rec["claims"])
                tally.update(f"verdict:{c['verdict']}" for c in rec["claims"])
                tally["edits"] += len(rec["edits"])
                tally["sentences_removed"] += rec["sentences_removed"]
                tally["changed"] += rec["corrected_text"] != it.text
                if rec.get("error"):
                    errors.append(f"{args.file}:{it.line}: {rec['error']}")
                    print(f"error: {args.file}:{it.line}: {it.id}: {rec['error']}", file=sys.stderr)
            bar.update(len(chunk))
    finally:
        writer.close()
        bar.close()

    summary = {"corrected": tally["records"], "resumed": n_resumed, "claims": tally["claims"],
               "supported": tally["verdict:supported"], "contradicted": tally["verdict:contradicted"],
               "unverifiable": tally["verdict:unverifiable"], "edits": tally["edits"],
               "captions_changed": tally["changed"], "sentences_removed": tally["sentences_removed"],
               "errors": len(errors) - len(report.bad), "bad_lines": len(report.bad),
               "correct_seconds": round(time.perf_counter() - t_loop, 3)}
    write_manifest(out.parent, command="correct", config=args_config(args),
        extra={"output": str(out), "detector": {"spec": spec, "name": detector.name,
                                                "fingerprint": detector.fingerprint()},
               "parser": {"module": module, "version": nlp.meta["version"]},
               "summary": summary})
    dt = time.perf_counter() - t0
    s = summary
    print(f"{s['corrected']} corrected, {s['resumed']} already done, {s['bad_lines']} bad lines skipped, "
          f"{s['errors']} with errors -> {out} ({dt:.1f}s)\n"
          f"claims {s['claims']}: {s['supported']} supported, {s['contradicted']} contradicted, "
          f"{s['unverifiable']} unverifiable; {s['edits']} edits in {s['captions_changed']} captions, "
          f"{s['sentences_removed']} sentences removed (detector {spec}, parser {module})", file=sys.stderr)
    return 2 if tally["records"] == 0 and n_resumed == 0 else 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.correct FILE …`` (``halluc correct`` once wired into halluc.cli)."""
    return module_main(add_parser, argv, command="correct")


if __name__ == "__main__":
    sys.exit(main())
