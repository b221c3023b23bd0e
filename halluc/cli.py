"""The ``halluc`` command line.

    halluc eval chair captions.jsonl [--variant singularize|lemma] [--gt builtin|PATH] [--short]
    halluc eval pope answers.jsonl --questions coco-random|FILE [--parser vcd]
    halluc ls

Only argparse and the standard library are imported at start-up; each command imports what it
needs when it runs, so ``--help`` and ``ls`` stay instant (and never import torch).
Exit codes: 0 success, 1 runtime failure, 2 bad input under ``--strict`` or nothing usable to score.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from halluc.command import Parser, at_least, guard, number, seed

MAX_SCENES = 99999


def _add_io(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", type=Path, help="where scores.jsonl, results.json and run.json go "
                   "(default: next to FILE, named after it)")
    p.add_argument("--text-key", help="field holding the text (default: text, caption or answer)")
    p.add_argument("--id-key", help="field holding the record id")
    p.add_argument("--strict", action="store_true", help="any bad input line is fatal (exit code 2)")


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="halluc", description=(
        "Measure and mitigate hallucination in vision-language models. "
        "Each stage reads and writes JSONL records joined by id. Bad input: one line on stderr, exit 2; "
        "Ctrl-C: exit 130, and the same command resumes."))
    ap.add_argument("--debug", action="store_true", help="show the traceback of an error (also HALLUC_DEBUG=1)")
    ap.add_argument("--version", action="version", version=f"%(prog)s {__import__('halluc').__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ev = sub.add_parser("eval", help="score outputs: CHAIR captions, POPE answers",
                        description="Score model outputs (a separate stage from inference).")
    evs = ev.add_subparsers(dest="metric", metavar="METRIC", required=True)

    ch = evs.add_parser("chair", help="CHAIR_s, CHAIR_i and recall of captions",
                        description="CHAIR (Rohrbach et al. 2018) exactly as the published scorers. "
                                    "Records need an image_id and a caption (text/caption/answer).")
    ch.add_argument("file", type=Path, help="captions JSONL")
    ch.add_argument("--variant", choices=["singularize", "lemma"], default="singularize",
                    help="token normaliser: singularize (original CHAIR, SHIELD) or lemma (OPERA, "
                         "HALC, lmms-eval); default %(default)s")
    ch.add_argument("--gt", default="builtin", help="ground truth: builtin (COCO 2014 tables), a JSON "
                    "table {image_id: [objects]}, or a folder of COCO instances_*.json + captions_*.json")
    ch.add_argument("--synonyms", type=Path, help="synonym table for another vocabulary (default: COCO's)")
    ch.add_argument("--short", action="store_true",
                    help="64-token protocol: drop the last incomplete sentence before scoring")
    ch.add_argument("--image-key", default="image_id", help="field holding the image id (default %(default)s)")
    _add_io(ch)

    po = evs.add_parser("pope", help="POPE accuracy, precision, recall, F1, yes-ratio",
                        description="POPE (Li et al. 2023). Answers are matched to questions by "
                                    "question_id, never by line order.")
    po.add_argument("file", type=Path, help="answers JSONL (question_id + text/answer)")
    po.add_argument("--questions", required=True,
                    help="POPE question file, or builtin coco-random|coco-popular|coco-adversarial")
    po.add_argument("--parser", choices=["original", "vcd", "strict", "vlmevalkit"], default="vcd",
                    help="answer parser; results always name it (default %(default)s)")
    _add_io(po)

    wo = evs.add_parser("world", help="controlled-world metrics: object CHAIR, partner rate, attribute/relation/count errors",
                        description="Score captions of controlled-world scenes against their exact ground truth. "
                                    "Records need an image_id (the world's integer ids) and a text.")
    wo.add_argument("file", type=Path, help="captions JSONL")
    wo.add_argument("--world", type=Path, help="world split folder(s) holding scenes.jsonl (default: found from "
                    "the records' image paths, else the builtin splits)", action="append")
    _add_io(wo)

    w = sub.add_parser("world", help="the controlled world: generate splits, train the builtin VLM",
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

    from halluc.decode import add_parser as add_decode_parser
    from halluc.correct import add_parser as add_correct_parser
    from halluc.viewer import add_parser as add_view_parser
    from halluc.negatives import add_parser as add_negatives_parser
    from halluc.finetune import add_parser as add_finetune_parser
    add_decode_parser(sub)
    add_correct_parser(sub)
    add_negatives_parser(sub)
    add_finetune_parser(sub)
    add_view_parser(sub)
    from halluc.experiment import add_parser as add_experiment_parser
    add_experiment_parser(sub)
    from detectors.yolo_convert import add_parser as add_convert_yolo_parser
    add_convert_yolo_parser(sub)

    sub.add_parser("ls", help="list registered metrics, parsers, variants, decoders and detectors")
    return ap


def _out_dir(args, tag: str) -> Path:
    from halluc.paths import output_dir
    out = args.out_dir or args.file.with_name(args.file.name.removesuffix(".jsonl") + f".{tag}")
    return output_dir(out, "--out-dir" if args.out_dir else "output folder")


def _fmt(x) -> str:
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def print_table(title: str, row: dict, cols: list[str]) -> None:
    print(title)
    cells = [_fmt(row[c]) for c in cols]
    widths = [max(len(c), len(v)) for c, v in zip(cols, cells)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    print("  ".join(v.rjust(w) for v, w in zip(cells, widths)))


def cmd_eval_chair(args) -> int:
    from halluc.metrics.chair import Chair, Vocabulary, drop_incomplete_sentence, load_gt
    from halluc.records import (BadInput, BadLine, ReadReport, args_config, atomic_write_json, atomic_write_jsonl,
                                read_records, write_manifest)
    t0 = time.perf_counter()
    report = ReadReport()
    items = list(read_records(args.file, need_text=True, text_key=args.text_key, id_key=args.id_key,
                              required={args.image_key: (int, str)}, strict=args.strict, report=report))
    if args.gt == "builtin" and not args.synonyms:
        from correction.pipeline import is_world
        world = [it for it in items if is_world(it.rec, it.rec.get("image") if isinstance(it.rec.get("image"), str) else None)]
        if world:   # world image ids (100001, ...) are also COCO ids: scoring them against COCO is silently wrong
            raise BadInput(f"{args.file}:{world[0].line}: controlled-world records ({len(world)} of {len(items)}, "
                           f"id {world[0].id!r}); the builtin ground truth is COCO's. Score them with "
                           "`halluc eval world`, or pass their split's --gt and --synonyms")
    vocab = Vocabulary.from_file(args.synonyms) if args.synonyms else Vocabulary.coco()
    gt = load_gt(args.gt, args.variant, vocab)
    rows = []
    for it in items:
        image_id = it.rec[args.image_key]
        if str(image_id) not in gt:
            b = BadLine(str(args.file), it.line, args.image_key, f"image {image_id!r} is not in the ground truth ({args.gt})")
            if args.strict:
                print(f"error: {b}", file=sys.stderr)
                return 2
            report.add(b)
            continue
        text = drop_incomplete_sentence(it.text) if args.short else it.text
        rows.append((it.id, image_id, text))
    if not rows:
        print(f"error: {args.file}: no record could be scored ({report.summary()})", file=sys.stderr)
        return 2
    res = Chair(vocab, args.variant).score(rows, gt)
    out = _out_dir(args, f"chair-{args.variant}")
    totals = {**res.totals, "short": args.short, "gt": args.gt, "input": str(args.file),
              "n_skipped": len(report.bad)}
    atomic_write_jsonl(out / "scores.jsonl", res.per_caption)
    atomic_write_json(out / "results.json", totals)
    write_manifest(out, command="eval chair", config=args_config(args))
    print_table(f"CHAIR ({args.variant}, gt={args.gt}{', short' if args.short else ''}) on {args.file}: "
                f"{len(rows)} captions, {len(report.bad)} skipped",
                {"CHAIR_s": totals["chair_s"], "CHAIR_i": totals["chair_i"], "Recall": totals["recall"],
                 "Len": totals["len"], "mentions": totals["n_mentions"]},
                ["CHAIR_s", "CHAIR_i", "Recall", "Len", "mentions"])
    print(f"wrote {out}/results.json, scores.jsonl ({time.perf_counter() - t0:.2f}s)")
    return 0


def cmd_eval_pope(args) -> int:
    from halluc.metrics.pope import load_questions, score_pope
    from halluc.records import ReadReport, args_config, atomic_write_json, atomic_write_jsonl, read_records, write_manifest
    report = ReadReport()
    questions = load_questions(args.questions, report=report, strict=args.strict)
    answers = {it.id: it.text for it in read_records(
        args.file, need_text=True, text_key=args.text_key, id_key=args.id_key or "question_id",
        strict=args.strict, report=report)}
    if not answers or not questions:
        print(f"error: nothing to score ({len(answers)} answers, {len(questions)} questions)", file=sys.stderr)
        return 2
    res = score_pope(answers, questions, args.parser)
    for what, ids in (("questions without an answer", res.missing), ("answers to unknown question ids", res.unmatched)):
        if ids:
            print(f"warning: {len(ids)} {what}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''}", file=sys.stderr)
    if args.strict and (res.missing or res.unmatched):
        return 2
    out = _out_dir(args, f"pope-{args.parser}")
    totals = {**res.totals, "questions": args.questions, "input": str(args.file), "n_skipped": len(report.bad)}
    atomic_write_jsonl(out / "scores.jsonl", res.per_question)
    atomic_write_json(out / "results.json", totals)
    write_manifest(out, command="eval pope", config=args_config(args))
    print_table(f"POPE ({args.parser} parser, questions={args.questions}) on {args.file}: "
                f"{totals['n']} answers, {len(report.bad)} skipped",
                {"Acc": totals["accuracy"], "Prec": totals["precision"], "Rec": totals["recall"],
                 "F1": totals["f1"], "Yes%": totals["yes_ratio"], "unknown": totals["unknown"]},
                ["Acc", "Prec", "Rec", "F1", "Yes%", "unknown"])
    print(f"wrote {out}/results.json, scores.jsonl")
    return 0


def find_world(items, dirs=None) -> dict:
    """Scenes of the world split folders ``dirs``; without them, of the splits the records' images lie in,
    else of the builtin splits their image_ids name."""
    from halluc.world.metrics import load_scenes
    dirs = list(dirs or [])
    if not dirs:
        from correction.pipeline import world_split_of
        dirs = list(dict.fromkeys(d for d in (world_split_of(it.rec.get("image")) for it in items) if d))
    if not dirs:
        from halluc.world.builtin import DATASETS, split_dir
        from halluc.world.generate import SPLITS
        splits = {int(it.rec.get("image_id", 0)) // 100000 for it in items if str(it.rec.get("image_id", "")).isdigit()}
        names = {v[0]: k for k, v in DATASETS.items()}
        dirs = [split_dir(names[SPLITS[i]]) for i in sorted(splits) if i < len(SPLITS) and SPLITS[i] in names]
    scenes = {}
    for d in dirs:
        scenes.update(load_scenes(d))
    return scenes


def cmd_eval_world(args) -> int:
    from halluc.records import BadLine, ReadReport, args_config, atomic_write_json, atomic_write_jsonl, read_records, write_manifest
    from halluc.world.metrics import score_world
    report = ReadReport()
    items = list(read_records(args.file, need_text=True, text_key=args.text_key, id_key=args.id_key,
                              required={"image_id": (int, str)}, strict=args.strict, report=report))
    scenes = find_world(items, args.world)
    rows = []
    for it in items:
        if str(it.rec["image_id"]) not in scenes:
            b = BadLine(str(args.file), it.line, "image_id", f"scene {it.rec['image_id']!r} not found in the world splits")
            if args.strict:
                print(f"error: {b}", file=sys.stderr)
                return 2
            report.add(b)
            continue
        rows.append((it.id, it.rec["image_id"], it.text))
    if not rows:
        print(f"error: {args.file}: no record could be scored ({report.summary()})", file=sys.stderr)
        return 2
    res = score_world(rows, scenes)
    out = _out_dir(args, "world")
    totals = {**res.totals, "input": str(args.file), "n_skipped": len(report.bad)}
    atomic_write_jsonl(out / "scores.jsonl", res.per_caption)
    atomic_write_json(out / "results.json", totals)
    write_manifest(out, command="eval world", config=args_config(args))
    cols = {"CHAIR_s": "chair_s", "CHAIR_i": "chair_i", "Recall": "recall", "Partner": "partner_rate",
            "Partner(ctl)": "partner_rate_control", "AttrErr": "attribute_error", "RelErr": "relation_error",
            "CountErr": "count_error"}
    print_table(f"world metrics on {args.file}: {len(rows)} captions, {len(report.bad)} skipped",
                {k: totals[v] for k, v in cols.items()}, list(cols))
    print(f"wrote {out}/results.json, scores.jsonl")
    return 0


def cmd_world(args) -> int:
    if args.world_cmd == "generate":
        from dataclasses import replace
        from halluc.world.generate import SPLITS, generate
        from halluc.world.scene import CLASSES, WorldConfig
        from halluc.paths import output_dir
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
        splits = SPLITS if args.split == "all" else [args.split]
        for sp in splits:
            out = args.out / sp if args.split == "all" else args.out
            generate(out, sp, args.n, args.seed, base, args.hidden_partner, progress=True)
            print(f"wrote {out}")
        return 0
    from dataclasses import fields
    from halluc.world.train import TrainConfig, train
    kw = {"seed": args.seed}
    types = {f.name: f.type for f in fields(TrainConfig)}
    from halluc.paths import output_dir
    output_dir(args.out, "--out")
    for kv in args.set:
        k, eq, v = kv.partition("=")
        if not eq or k not in types:
            raise ValueError(f"--set {kv}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        t = str(types[k])
        try:
            kw[k] = (float(v) if "float" in t else tuple(int(x) for x in v.split(",")) if "tuple" in t else int(v))
        except ValueError:
            raise ValueError(f"--set {kv}: expected {'a number' if 'float' in t else 'comma-separated integers' if 'tuple' in t else 'an integer'}") from None
        if isinstance(kw[k], float) and not math.isfinite(kw[k]):
            raise ValueError(f"--set {kv}: expected a finite number")
    if args.quick:
        kw.update(n_scenes=200, tower_steps=20, lm_steps=20, warmup=5, log_every=5)
    train(args.out, TrainConfig(**kw))
    return 0


def cmd_ls(args) -> int:
    from halluc.registry import REGISTRY
    for kind, table in REGISTRY.items():
        print(f"{kind}:")
        for name, target in table.items():
            print(f"  {name:<14} {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    lead = int(argv[:1] == ["--debug"])
    if argv[lead:lead + 2] == ["world", "train-detector"]:    # its own parser owns every option, --help included
        from detectors.world_yolo import main as yolo_main
        return guard(lambda _: yolo_main(["train", *argv[lead + 2:]]))(argparse.Namespace(debug=bool(lead)))
    args = build_parser().parse_args(argv)
    # Subcommand modules carry their handler (set_defaults(func=...)); the rest are defined here.
    handler = getattr(args, "func", None) or {"ls": cmd_ls, "world": cmd_world}.get(args.command) or {
        "chair": cmd_eval_chair, "pope": cmd_eval_pope, "world": cmd_eval_world}[args.metric]
    return guard(handler)(args)

if __name__ == "__main__":
    sys.exit(main())
