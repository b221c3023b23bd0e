"""``halluc correct``: find and fix hallucinated objects, counts, attributes and relations in captions.

    halluc correct runs/world-bias-greedy-s0/captions.jsonl            # world records: world-yolo, their images
    halluc correct captions.jsonl --detector hf-grounding-dino:/models/gdino-tiny --images val2014/
    halluc correct shield.jsonl --detector oracle:coco                # ground-truth objects, no image needed
    halluc correct captions.jsonl --detector yolo:/models/yolov8x --grounding --out fixed.jsonl   # convert-yolo'd

The stage itself is halluc/pipelines/correct.py.
"""
from __future__ import annotations

import sys

from halluc.command import add_stage, guard, module_main


def add_parser(subparsers):
    from halluc.pipelines.correct import add_options
    return add_stage(subparsers, "correct", add_options, run,
                     help="correct captions: claims -> detector -> verdicts -> edits (Woodpecker-style, local)",
                     description="Post-hoc correction (DESIGN.md §6). Records a plug-in domain claims (world records: ids "
                                 "world-*) default to its detector (world-yolo) and the images named in the records; other "
                                 "records need --detector.")


def _run(args) -> int:
    from halluc.pipelines.correct import run as correct
    s = correct(args)
    print(f"{s['corrected']} corrected, {s['resumed']} already done, {s['bad_lines']} bad lines skipped, "
          f"{s['errors']} with errors -> {s['out']} ({s['seconds']:.1f}s)\n"
          f"claims {s['claims']}: {s['supported']} supported, {s['contradicted']} contradicted, "
          f"{s['unverifiable']} unverifiable; {s['edits']} edits in {s['captions_changed']} captions, "
          f"{s['sentences_removed']} sentences removed (detector {s['spec']}, parser {s['parser']})", file=sys.stderr)
    return 2 if s["corrected"] == 0 and s["resumed"] == 0 else 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.correct FILE …`` (``halluc correct`` is the same)."""
    return module_main(add_parser, argv, command="correct")


if __name__ == "__main__":
    sys.exit(main())
