"""``halluc experiment run FILE``: every row of an experiment YAML over its seeds, then table.md,
results.json and plots (halluc/pipelines/experiment/).

    halluc experiment run experiments/world_table.yaml
    halluc experiment run experiments/demo.yaml --limit 5 --out /tmp/smoke
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from halluc.command import guard, module_main


def add_parser(subparsers):
    from halluc.pipelines.experiment import add_options
    p = subparsers.add_parser("experiment", help="run an experiment YAML: decode -> correct -> score, table and plots",
                              description="Run every row of an experiment file (experiments/*.yaml) over its seeds, "
                                          "skipping stages already done, and write table.md, results.json and plots.")
    sub = p.add_subparsers(dest="experiment_cmd", metavar="ACTION", required=True)
    add_options(sub.add_parser("run", help="run (or resume) an experiment"))
    p.set_defaults(func=run)
    return p


def _run(args) -> int:
    from halluc.pipelines.experiment import run as run_experiment
    from halluc.pipelines.experiment.runner import StageFailed
    try:
        results = run_experiment(args)
    except StageFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(results["markdown"])
    print(f"wrote {results['out']}/table.md, results.json" + "".join(f", {Path(p).name}" for p in results["plots"]))
    if results["view"]:
        print(f"open the outputs:  halluc view {' '.join(map(shlex.quote, results['view']))}")
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.experiment run FILE …``"""
    return module_main(add_parser, argv, command="experiment")


if __name__ == "__main__":
    sys.exit(main())
