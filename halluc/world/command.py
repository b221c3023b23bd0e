"""``halluc world``: the controlled world's own command (the plug-in's, listed in the CLI table).

    halluc world generate --out DIR --split bias --n 300 --seed 1
    halluc world train --out ckpt/ [--quick] [--set lm_steps=3000]
    halluc world train-detector [--help]            # its own options: halluc/world/detector_train.py
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from halluc.command import at_least, guard, module_main, number, parse_assignments, seed

MAX_SCENES = 99999          # image ids are 100000 x split index + n


def add_parser(subparsers):
    w = subparsers.add_parser("world", help="the controlled world: generate splits, train the builtin VLM",
                              description="Procedurally drawn scenes with exact ground truth (DESIGN.md §7).")
    ws = w.add_subparsers(dest="world_cmd", metavar="ACTION", required=True)
    g = ws.add_parser("generate", help="write a split: images, scenes.jsonl, COCO files, synonyms, POPE questions")
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--split", default="test", choices=["train", "test", "bias", "control", "bias-hard", "pope", "all"])
    g.add_argument("--n", type=at_least(1), default=300, help="scenes per split (default %(default)s)")
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--hidden-partner", type=number(0, 1), default=0.25,
                   help="train split: P(a co-occurrence partner is hidden but still named) (default %(default)s)")
    g.add_argument("--pair", action="append", metavar="TRIGGER:PARTNER",
                   help="planted co-occurrence (repeatable; default star:moon and cross:ring)")
    g.add_argument("--pair-prob", type=number(0, 1), default=0.9, help="P(partner | trigger) (default %(default)s)")
    g.add_argument("--size-scale", type=number(0, 1.1, lo_open=True), default=1.0,
                   help="difficulty: object size factor in (0, 1.1] (above, objects outgrow their cells)")
    g.add_argument("--contrast", type=number(0, 1), default=1.0, help="difficulty: colour contrast to the background (0..1)")
    g.add_argument("--noise", type=number(0, 255), default=0.0, help="difficulty: pixel noise std (0..255)")
    t = ws.add_parser("train", help="train the builtin world VLM on the CPU (staged recipe, ~20 min)")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--quick", action="store_true", help="a few steps on a few scenes (a smoke test)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a TrainConfig field, e.g. --set lm_steps=3000 --set look_named=1,1")
    td = ws.add_parser("train-detector", add_help=False,
                       help="train the world-yolo detector (ultralytics, from yolov8n.yaml, CPU, ~11 min); "
                            "options: halluc world train-detector --help")
    td.add_argument("rest", nargs=argparse.REMAINDER)
    w.set_defaults(func=run)
    return w


def generate(args) -> int:
    from dataclasses import replace
    from halluc.paths import output_dir
    from halluc.world.generate import SPLITS, generate as write_split
    from halluc.world.scene import CLASSES, WorldConfig
    output_dir(args.out, "--out")
    if args.n > MAX_SCENES:
        raise ValueError(f"--n {args.n}: at most {MAX_SCENES} scenes per split (image ids are "
                         "100000 x split + index)")
    pairs = tuple(tuple(p.split(":")) for p in args.pair) if args.pair else WorldConfig().pairs
    for p in pairs:
        if len(p) != 2 or not all(c in CLASSES for c in p) or p[0] == p[1]:
            raise ValueError(f"--pair {':'.join(p)}: want TRIGGER:PARTNER, two different classes from "
                             f"{', '.join(CLASSES)}")
    base = replace(WorldConfig(), pairs=pairs, pair_prob=args.pair_prob, size_scale=args.size_scale,
                   contrast=args.contrast, noise=args.noise)
    for sp in SPLITS if args.split == "all" else [args.split]:
        out = args.out / sp if args.split == "all" else args.out
        write_split(out, sp, args.n, args.seed, base, args.hidden_partner, progress=True)
        print(f"wrote {out}")
    return 0


def _typed(kv: str, key: str, value: str, typ: str):
    try:
        v = float(value) if "float" in typ else tuple(int(x) for x in value.split(",")) if "tuple" in typ else int(value)
    except ValueError:
        want = "a number" if "float" in typ else "comma-separated integers" if "tuple" in typ else "an integer"
        raise ValueError(f"--set {kv}: expected {want}") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"--set {kv}: expected a finite number")
    return v


def train(args) -> int:
    from dataclasses import fields
    from halluc.paths import output_dir
    from halluc.world.train import TrainConfig, train as train_vlm
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    output_dir(args.out, "--out")
    kw = {"seed": args.seed}
    for kv in args.set:
        k, v = next(iter(parse_assignments([kv]).items()))
        if k not in types:
            raise ValueError(f"--set {kv}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        kw[k] = _typed(kv, k, v, types[k])
    if args.quick:
        kw.update(n_scenes=200, tower_steps=20, lm_steps=20, warmup=5, log_every=5)
    train_vlm(args.out, TrainConfig(**kw))
    return 0


def _run(args) -> int:
    if args.world_cmd == "train-detector":
        return train_detector(args.rest)
    return generate(args) if args.world_cmd == "generate" else train(args)


def train_detector(argv: list[str]) -> int:
    """Its own parser owns every option, --help included (halluc.cli hands it the raw argv)."""
    from halluc.world.detector_train import main as detector_main
    return detector_main(["train", *argv])


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    return module_main(add_parser, argv, command="world")


if __name__ == "__main__":
    sys.exit(main())
