"""``halluc ls``: everything registered, by kind (decoders, detectors, metrics, parsers, datasets, ...)."""
from __future__ import annotations

import sys

from halluc.command import guard, module_main


def add_parser(subparsers):
    p = subparsers.add_parser("ls", help="list registered decoders, detectors, metrics, parsers, datasets, domains",
                              description="Everything halluc.registry declares, with what each one is.")
    p.set_defaults(func=run)
    return p


def _run(args) -> int:
    from halluc.registry import REGISTRY
    for kind, table in REGISTRY.items():
        print(f"{kind}:")
        for name, e in table.items():
            print(f"  {name:<22} {e.title + ': ' if e.title else ''}{e.help}")
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    return module_main(add_parser, argv, command="ls")


if __name__ == "__main__":
    sys.exit(main())
