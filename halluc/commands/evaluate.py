"""``halluc eval METRIC FILE``: score model outputs, a stage separate from inference.

    halluc eval chair captions.jsonl [--protocol chair|opera|halc] [--gt builtin|TABLE|COCO_DIR] [--short]
    halluc eval pope answers.jsonl --questions coco-random|aokvqa-popular|gqa-adversarial|...|FILE [--parser vcd|...]
    halluc eval pope answers_{split}.jsonl --questions gqa --split all      # the three splits, one table
    halluc eval world captions.jsonl [--world SPLIT_DIR]
    halluc eval amber responses.json [--parser amber|...] [--spacy-model en_core_web_lg]

One subcommand per registered metric (``halluc ls``); each writes results.json, scores.jsonl and run.json.
"""
from __future__ import annotations

import sys

from halluc.command import guard, module_main


def add_parser(subparsers):
    from halluc.pipelines.evaluate import add_options
    from halluc.registry import entry, names, resolve
    ev = subparsers.add_parser("eval", help="score outputs: " + ", ".join(names("metric")),
                               description="Score model outputs (a separate stage from inference).")
    evs = ev.add_subparsers(dest="metric", metavar="METRIC", required=True)
    for name in names("metric"):
        metric = resolve("metric", name)
        p = evs.add_parser(name, help=entry("metric", name).help, description=metric.description)
        add_options(p, metric)
        p.set_defaults(func=run)
    return ev


def _run(args) -> int:
    from halluc.pipelines.evaluate import format_table, run as evaluate
    s = evaluate(args)
    print(s["table"] if s.get("table") else format_table(s["title"], s["totals"], s["columns"]))
    print(f"wrote {s['out']}/results.json, scores.jsonl ({s['seconds']:.2f}s)")
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.evaluate chair FILE …``"""
    return module_main(add_parser, argv, command="eval")


if __name__ == "__main__":
    sys.exit(main())
