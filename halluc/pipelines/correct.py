"""The correction stage: find and fix hallucinated objects, counts, attributes and relations in captions.

    summary = run(args)          # args from add_options(parser)

Woodpecker's stages without an LLM (DESIGN.md §6): claims from a spaCy parse, one detector call per
image, verdicts from boxes and pixels, deterministic edits. Each output record is the input record plus
``claims``, ``evidence``, ``corrected_text``, ``edits`` and ``sentences_removed`` (DESIGN.md §2);
``halluc eval chair|world --text-key corrected_text`` scores the corrections. ``run.json`` goes next
to the output. A rerun skips ids already written (``--overwrite`` redoes them). A malformed input
line is reported and skipped; a record with a missing image, an empty or non-English caption keeps
its text and gets an ``error`` field; everything is counted in the summary. Records a plug-in domain
claims (the controlled world's) get its vocabulary, grammar and default detector.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from halluc.command import at_least, parse_assignments
from halluc.paths import input_dir, input_file, output_file
from halluc.pipelines.inputs import image_path


def add_options(p) -> None:
    from halluc.registry import names
    p.add_argument("file", type=Path, help="captions JSONL (text/caption/answer, image, image_id)")
    p.add_argument("--detector", help="a registered detector as NAME or NAME:ARG: world-yolo, hf-grounding-dino:PATH, "
                   "owlv2:PATH, yolo:DIR (safetensors, from halluc convert-yolo), oracle:coco, oracle:INSTANCES.json "
                   "or oracle:world:SPLIT_DIR (default: the plug-in domain's own, world-yolo on world records)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="det_options",
                   help="a detector option, e.g. --set box_threshold=0.3 --set device=cuda")
    p.add_argument("--images", type=Path, help="folder that relative image paths (or COCO image ids) refer to")
    p.add_argument("--out", type=Path, help="output JSONL (default <input>.corrected/corrected.jsonl beside the input)")
    p.add_argument("--batch-size", type=at_least(1), default=16)
    p.add_argument("--limit", type=at_least(1), help="only the first N records")
    p.add_argument("--overwrite", action="store_true", help="start the output afresh instead of resuming")
    p.add_argument("--grounding", action="store_true", help="attach boxes to objects: dog([x1, y1, x2, y2]), in [0, 1]")
    p.add_argument("--no-cache", action="store_true", help="do not use or fill the detection cache")
    p.add_argument("--synonyms", type=Path, help="object vocabulary of records no plug-in claims (default: COCO's "
                   "CHAIR table)")
    p.add_argument("--variant", choices=names("chair-variant"), default="singularize",
                   help="CHAIR word normaliser used to find object words (default %(default)s)")
    p.add_argument("--text-key", help="field holding the caption (default: text, caption or answer)")
    p.add_argument("--id-key", help="field holding the record id")
    p.add_argument("--trust-pickle", action="store_true", help="allow --detector yolo:FILE.pt. A .pt is a pickle: "
                   "loading it runs code from the file. Convert it once instead (halluc convert-yolo) and "
                   "pass yolo:FOLDER")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_detector(items, paths) -> str:
    """The detector of the plug-in domain that claims every record; else the user must name one."""
    from halluc.domains import plugin_for
    owners = {getattr(plugin_for(it.rec, p), "default_detector", None) for it, p in zip(items, paths)}
    if len(owners) != 1 or None in owners:
        raise ValueError("records that no plug-in domain claims need --detector (e.g. oracle:coco, "
                         "hf-grounding-dino:PATH, yolo:DIR)")
    return owners.pop()


def _read(args):
    from halluc.records import ReadReport, read_records
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
    return items, report


def run(args) -> dict:
    """Correct ``args.file``; returns the summary the command prints and run.json keeps."""
    import detectors
    from correction.claims import parser
    from correction.domain import Domain
    from correction.pipeline import Corrector, coco_domain
    from halluc.outputs import ResumableWriter
    t0 = time.perf_counter()
    options = parse_assignments(args.det_options)
    if args.trust_pickle:
        options["trust_pickle"] = True
    items, report = _read(args)
    paths = [image_path(it.rec, args.images) for it in items]
    spec = args.detector or default_detector(items, paths)
    default = Domain.from_synonyms(str(args.synonyms), args.variant) if args.synonyms else coco_domain(args.variant)
    out = output_file(args.out or args.file.parent / f"{args.file.name.removesuffix('.jsonl')}.corrected" /
                      "corrected.jsonl", "--out" if args.out else "output")
    detector = detectors.load(spec, cache=not args.no_cache, **options)   # a bad spec fails before any output
    writer = ResumableWriter(out, overwrite=args.overwrite)
    try:
        todo = [(it, p) for it, p in zip(items, paths) if it.id not in writer.done]
        module, nlp = parser()
        tally = _correct_all(args, Corrector(detector, grounding=args.grounding, nlp=nlp), todo, default, writer)
    finally:
        writer.close()
    summary = {"corrected": tally["records"], "resumed": len(items) - len(todo), "claims": tally["claims"],
               "supported": tally["verdict:supported"], "contradicted": tally["verdict:contradicted"],
               "unverifiable": tally["verdict:unverifiable"], "edits": tally["edits"],
               "captions_changed": tally["changed"], "sentences_removed": tally["sentences_removed"],
               "errors": tally["errors"], "bad_lines": len(report.bad),
               "correct_seconds": round(tally["seconds"], 3)}
    _manifest(args, out, spec, detector, module, nlp, summary)
    return {**summary, "out": out, "spec": spec, "parser": module, "seconds": time.perf_counter() - t0}


def _correct_all(args, corrector, todo, default, writer) -> Counter:
    from tqdm import tqdm
    from correction.pipeline import Job, domain_for
    bar = tqdm(total=len(todo), unit="cap", desc="correct", disable=args.no_progress, file=sys.stderr)
    tally = Counter()
    t_loop = time.perf_counter()          # correcting alone: spaCy and detector loading left out
    try:
        for i in range(0, len(todo), args.batch_size):
            chunk = todo[i:i + args.batch_size]
            jobs = [Job(it.rec, it.text, domain_for(it.rec, p, default, args.variant), image_path=p,
                        image_id=it.rec.get("image_id", it.id)) for it, p in chunk]
            for (it, _), rec in zip(chunk, corrector.correct(jobs)):
                writer.write(rec)
                _count(tally, rec, it.text)
                if rec.get("error"):
                    print(f"error: {args.file}:{it.line}: {it.id}: {rec['error']}", file=sys.stderr)
            bar.update(len(chunk))
    finally:
        bar.close()
    tally["seconds"] = time.perf_counter() - t_loop
    return tally


def _count(tally: Counter, rec: dict, text: str) -> None:
    tally["records"] += 1
    tally["claims"] += len(rec["claims"])
    tally.update(f"verdict:{c['verdict']}" for c in rec["claims"])
    tally["edits"] += len(rec["edits"])
    tally["sentences_removed"] += rec["sentences_removed"]
    tally["changed"] += rec["corrected_text"] != text
    tally["errors"] += bool(rec.get("error"))


def _manifest(args, out: Path, spec: str, detector, module: str, nlp, summary: dict) -> None:
    from halluc.provenance import args_config, write_manifest
    write_manifest(out.parent, command="correct", config=args_config(args),
                   extra={"output": str(out), "detector": {"spec": spec, "name": detector.name,
                                                           "fingerprint": detector.fingerprint()},
                          "parser": {"module": module, "version": nlp.meta["version"]},
                          "summary": summary})
