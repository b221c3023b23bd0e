"""What every ``halluc`` command module shares: the error boundary and the ``python -m`` entry.

    run = guard(_run)                                      # bad input -> "error: ..." and exit 2
    def main(argv=None):                                   # python -m halluc.decode decode ...
        return module_main(add_parser, argv)
    def main(argv=None):                                   # python -m halluc.correct FILE ...
        return module_main(add_parser, argv, command="correct")

``torchrun -m`` / ``accelerate launch -m`` need a module entry; ``halluc.cli.main`` is the same
commands behind one parser and uses the same boundary.
"""
from __future__ import annotations

import argparse
import functools
import sys

from halluc.records import BadInput

# What a user can cause (a wrong path, a bad value, a malformed file): reported in one line, exit 2.
USER_ERRORS = (FileNotFoundError, ValueError, BadInput)


def guard(fn):
    @functools.wraps(fn)
    def run(args) -> int:
        try:
            return fn(args)
        except USER_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run


def module_main(add_parser, argv: list[str] | None = None, command: str | None = None) -> int:
    """Parse ``argv`` with one command's parser and run it. With ``command`` the argv holds only
    that command's arguments; without, it starts with the command's name."""
    ap = argparse.ArgumentParser(prog="halluc")
    add_parser(ap.add_subparsers(dest="command", metavar="COMMAND", required=True))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args([command, *argv] if command else argv)
    return args.func(args)
