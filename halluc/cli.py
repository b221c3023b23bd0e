"""The ``halluc`` command line: the table of commands. Each command module parses its arguments, calls one
pipeline function and prints (halluc/commands/, and a plug-in's own: halluc/world/command.py).

    halluc eval chair captions.jsonl          halluc decode --method vcd        halluc correct captions.jsonl
    halluc negatives ...   halluc finetune ...   halluc experiment run FILE   halluc view FILE   halluc ls

Only argparse and the standard library are imported at start-up; each command imports what it needs
when it runs, so ``--help`` and ``ls`` stay fast and never import torch. Exit codes: 0 success, 1 a
failure that is not the input's fault, 2 bad input, 130 interrupted (the same command resumes).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from halluc.command import Parser, guard

# In the order ``halluc --help`` lists them.
COMMANDS = (
    "halluc.commands.evaluate",
    "halluc.world.command",
    "halluc.commands.decode",
    "halluc.commands.correct",
    "halluc.commands.negatives",
    "halluc.commands.finetune",
    "halluc.commands.view",
    "halluc.commands.experiment",
    "halluc.commands.convert_yolo",
    "halluc.commands.ls",
)


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="halluc", description=(
        "Measure and mitigate hallucination in vision-language models. "
        "Each stage reads and writes JSONL records joined by id. Bad input: one line on stderr, exit 2; "
        "Ctrl-C: exit 130, and the same command resumes."))
    ap.add_argument("--version", action="version", version=f"%(prog)s {__import__('halluc').__version__}")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error (also HALLUC_DEBUG=1)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    lead = int(argv[:1] == ["--debug"])
    if argv[lead:lead + 2] == ["world", "train-detector"]:    # its own parser owns every option, --help included
        from halluc.world.command import train_detector
        return guard(lambda _: train_detector(argv[lead + 2:]))(argparse.Namespace(debug=bool(lead)))
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
