"""``halluc decode``: caption images or answer questions with a VLM and a decode method.

    halluc decode --method vcd                                   # builtin model, builtin world's bias split
    halluc decode --method vcd --set alpha=1 --set greedy=true --dataset world-test --out vcd.jsonl
    halluc decode --model llava-hf/llava-1.5-7b-hf --template llava_v1 --coco-chair500 --images val2014/
    halluc decode --questions coco_pope_adversarial.jsonl --images val2014/ --method vcd
    torchrun --nproc_per_node 2 -m halluc decode ...             # shards by rank, merges in input order

The stage itself is halluc/pipelines/decode.py.
"""
from __future__ import annotations

import sys

from halluc.command import add_stage, guard, module_main


def add_parser(subparsers):
    from halluc.pipelines.decode import add_options
    from halluc.registry import names
    return add_stage(subparsers, "decode", add_options, run,
                     help=f"caption images / answer questions with a VLM: {', '.join(names('decoder'))}",
                     description="Decode with a VLM and a decode method (DESIGN.md §5). With no input option it runs on the "
                                 "builtin world's bias split. Output records are scoreable by `halluc eval` directly.")


def _run(args) -> int:
    from halluc.pipelines.decode import run as decode
    s = decode(args)
    who = f"rank {s['rank']}/{s['world']}: " if s["world"] > 1 else ""
    where = s["out"] if s["world"] == 1 or s["rank"] == 0 else s["part"]
    print(f"{who}{s['decoded']} decoded, {s['resumed']} already done, {s['failed']} failed (kept with an error), "
          f"{s['bad_lines']} bad input lines skipped -> {where} ({s['seconds']:.1f}s)", file=sys.stderr)
    if "merged" in s:
        print(f"merged {s['world']} ranks: {s['merged']} records in {s['out']}", file=sys.stderr)
    return 2 if (s["failed"] or s["bad_lines"]) and s["decoded"] == 0 and s["resumed"] == 0 else 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.decode …`` (``halluc decode`` is the same)."""
    return module_main(add_parser, argv, command="decode")


if __name__ == "__main__":
    sys.exit(main())
