"""``halluc experiment run``: one YAML file -> a results table on the controlled world.

    halluc experiment run experiments/world_table.yaml [--out DIR] [--seeds 0 1 2] [--limit N] [--threads N]

``config.py`` reads and checks the YAML, ``runner.py`` runs its rows' stages (each a pipeline, called
directly, resumable), ``report.py`` writes the table and plots.
"""
from __future__ import annotations

from pathlib import Path

from halluc.command import at_least
from halluc.command import seed as seed_type


def add_options(r) -> None:
    r.add_argument("file", type=Path, help="experiment YAML")
    r.add_argument("--out", type=Path, help="run folder (default runs/<name>)")
    r.add_argument("--seeds", type=seed_type, nargs="+", help="override the file's seeds")
    r.add_argument("--limit", type=at_least(1), help="at most N captions and N POPE questions per split (a smoke run)")
    r.add_argument("--threads", type=at_least(1), help="torch CPU threads (default: the file's, else torch's)")
    r.add_argument("--overwrite", action="store_true", help="redo every stage")


def run(args) -> dict:
    from halluc.pipelines.experiment.config import load_config
    from halluc.pipelines.experiment.runner import run_experiment
    return run_experiment(load_config(args.file), args)
