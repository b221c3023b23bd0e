"""What every ``halluc`` command module shares: the error boundary, the parser, option types, the
``python -m`` entry.

    run = guard(_run)                                      # bad input -> "error: ..." and exit 2
    p.add_argument("--limit", type=at_least(1))            # bounds checked at parse time, option named
    def main(argv=None):                                   # python -m halluc.commands.decode --method vcd ...
        return module_main(add_parser, argv, command="decode")

The boundary's promises: a user's mistake (a bad path or value, a malformed file, an OS error on a
file they named) is one line on stderr, ``error: <file>[:<line>]: <what>``, exit status 2; Ctrl-C
(or SIGTERM) says how many records reached which file and exits 130; anything else is a bug, one
line and exit 1. ``--debug`` or ``HALLUC_DEBUG=1`` adds the traceback. ``torchrun -m halluc`` and
``accelerate launch -m halluc`` run the CLI table (halluc/__main__.py); each command module also
has a ``main`` of its own.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import signal
import sys
import traceback

from halluc.errors import BadInput

# What a user can cause (a wrong path, a bad value, a malformed file): reported in one line, exit 2.
USER_ERRORS = (BadInput, ValueError, OSError)
EXIT_BAD_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 2, 1, 130


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``halluc decode: error: argument --limit: ...; see --help``."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def debugging(args=None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("HALLUC_DEBUG", "") not in ("", "0")


def describe(e: BaseException) -> str:
    """One line for a user error: OS errors name their file, others carry their own message."""
    if isinstance(e, OSError) and not isinstance(e, BadInput) and (e.filename or e.strerror):
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where}: {e.strerror or e}" if e.filename else str(e.strerror)
    if isinstance(e, UnicodeDecodeError):
        return f"not valid UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    msg = str(e) or type(e).__name__
    return " ".join(msg.split()) if "\n" in msg else msg


def _on_term(signum, frame):
    raise KeyboardInterrupt


def guard(fn):
    @functools.wraps(fn)
    def run(args) -> int:
        from halluc.outputs import interrupted_summary, start_run
        start_run()
        old = None
        try:
            old = signal.signal(signal.SIGTERM, _on_term)   # a kill resumes like Ctrl-C
        except ValueError:                                  # not the main thread
            pass
        try:
            return fn(args)
        except KeyboardInterrupt:
            print(f"interrupted: {interrupted_summary()}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:                             # `halluc ls | head`: the reader left
            sys.stderr.close()
            return 0
        except USER_ERRORS as e:
            if debugging(args):
                traceback.print_exc()
            print(f"error: {describe(e)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except MemoryError:
            print("error: out of memory (a smaller --batch-size or input helps)", file=sys.stderr)
            return EXIT_BUG
        except Exception as e:                              # noqa: BLE001 - the last line of defence
            if debugging(args):
                raise
            first = (str(e).strip().splitlines() or [""])[0]
            print(f"error: unexpected {type(e).__name__}: {first} (a bug: HALLUC_DEBUG=1 or --debug "
                  "shows the traceback)", file=sys.stderr)
            return EXIT_BUG
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
    return run


def add_stage(subparsers, name: str, add_options, run, *, help: str, description: str):
    """A subcommand whose options are a pipeline stage's own (``add_options``), run by ``run``."""
    p = subparsers.add_parser(name, help=help, description=description)
    add_options(p)
    p.set_defaults(func=run)
    return p


def module_main(add_parser, argv: list[str] | None = None, command: str | None = None) -> int:
    """Parse ``argv`` with one command's parser and run it. With ``command`` the argv holds only
    that command's arguments; without, it starts with the command's name."""
    ap = Parser(prog="halluc")
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error")
    add_parser(ap.add_subparsers(dest="command", metavar="COMMAND", required=True))
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args([command, *argv] if command else argv)
    return args.func(args)


# ---------------------------------------------------------------- option types (checked at parse time)

SEED_MAX = 2**32 - 1      # numpy's and Python's generators take any; torch's manual_seed wants < 2**64


def at_least(lo: int):
    """An integer option >= ``lo``: ``type=at_least(1)``."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {s!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v
    parse.__name__ = f"integer >= {lo}"
    return parse


def seed(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {s!r}") from None
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0..{SEED_MAX} (2**32 - 1), got {v}")
    return v


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """A finite float option in [lo, hi] (``lo_open``: lo excluded): ``type=number(0, 1)``."""
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {s!r}")
        if lo is not None and (v <= lo if lo_open else v < lo) or hi is not None and v > hi:
            rng = f"{'(' if lo_open else '['}{'' if lo is None else f'{lo:g}'}, {'' if hi is None else f'{hi:g}'}]"
            raise argparse.ArgumentTypeError(f"must be in {rng}, got {s}")
        return v
    parse.__name__ = "number"
    return parse


def parse_assignments(items: list[str], option: str = "--set") -> dict[str, str]:
    """``["alpha=1", "greedy=true"]`` -> ``{"alpha": "1", "greedy": "true"}`` (the one ``--set`` parser)."""
    out = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq or not k.strip():
            raise ValueError(f"{option} {it!r}: expected KEY=VALUE, e.g. {option} alpha=1")
        out[k.strip()] = v
    return out
