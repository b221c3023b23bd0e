"""``halluc negatives``: LRV-style positive and negative instructions from annotations (the pipeline:
``halluc.pipelines.negatives``).

    halluc negatives --world world-train --out data/lrv/train.jsonl
    python -m halluc.commands.negatives negatives --vg vg.json --images vg/ --out vg_lrv.jsonl
"""
from __future__ import annotations

import sys
import time

from halluc.command import add_stage, guard, module_main
from halluc.pipelines import negatives


def add_parser(subparsers):
    return add_stage(subparsers, "negatives", negatives.add_options, run,
                     help="LRV-style instruction data from annotations: positives + nonexistent/existent/knowledge negatives",
                     description="Generate LRV-style positive and negative instructions (DESIGN.md §6) from controlled-world scenes, "
                                 "COCO instances + captions, or a Visual-Genome-like JSON. Output JSONL: image_id, question, answer, "
                                 "task (LRV's fields), claim, messages + images (TRL's conversational form).")


def _run(args) -> int:
    t0 = time.perf_counter()
    summary = negatives.run(args)
    if summary.get("up_to_date"):       # the pipeline said so already
        return 0
    dt = time.perf_counter() - t0
    print(f"{summary['records']} records from {summary['images']} images: {summary['negatives']} negatives "
          f"(ratio {summary['neg_ratio']:.3f}), {summary['descriptions']} descriptions; "
          f"{summary['skipped_annotations']} annotation(s) skipped; {summary['unfilled_negatives']} negatives "
          f"unfilled -> {args.out} ({dt:.1f}s)", file=sys.stderr)
    print("by task: " + ", ".join(f"{k} {v}" for k, v in summary["by_task"].items()), file=sys.stderr)
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    return module_main(add_parser, argv, command="negatives")


if __name__ == "__main__":
    sys.exit(main())
