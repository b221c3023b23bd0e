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
import sys
import time
from pathlib import Path


def _add_io(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", type=Path, help="where scores.jsonl, results.json and run.json go "
                   "(default: next to FILE, named after it)")
    p.add_argument("--text-key", help="field holding the text (default: text, caption or answer)")
    p.add_argument("--id-key", help="field holding the record id")
    p.add_argument("--strict", action="store_true", help="any bad input line is fatal (exit code 2)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="halluc", description=(
        "Measure and mitigate hallucination in vision-language models. "
        "Each stage reads and writes JSONL records joined by id."))
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

    sub.add_parser("ls", help="list registered metrics, parsers, variants, decoders and detectors")
    return ap


def _out_dir(args, tag: str) -> Path:
    return args.out_dir or args.file.with_name(args.file.name.removesuffix(".jsonl") + f".{tag}")


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
    from halluc.records import (ReadReport, atomic_write_json, atomic_write_jsonl, read_records,
                                write_manifest, BadLine)
    t0 = time.perf_counter()
    report = ReadReport()
    items = list(read_records(args.file, need_text=True, text_key=args.text_key, id_key=args.id_key,
                              required={args.image_key: (int, str)}, strict=args.strict, report=report))
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
    write_manifest(out, command="eval chair", config={k: str(v) if isinstance(v, Path) else v
                                                      for k, v in vars(args).items() if k != "func"})
    print_table(f"CHAIR ({args.variant}, gt={args.gt}{', short' if args.short else ''}) on {args.file}: "
                f"{len(rows)} captions, {len(report.bad)} skipped",
                {"CHAIR_s": totals["chair_s"], "CHAIR_i": totals["chair_i"], "Recall": totals["recall"],
                 "Len": totals["len"], "mentions": totals["n_mentions"]},
                ["CHAIR_s", "CHAIR_i", "Recall", "Len", "mentions"])
    print(f"wrote {out}/results.json, scores.jsonl ({time.perf_counter() - t0:.2f}s)")
    return 0


def cmd_eval_pope(args) -> int:
    from halluc.metrics.pope import load_questions, score_pope
    from halluc.records import ReadReport, atomic_write_json, atomic_write_jsonl, read_records, write_manifest
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
    write_manifest(out, command="eval pope", config={k: str(v) if isinstance(v, Path) else v
                                                     for k, v in vars(args).items() if k != "func"})
    print_table(f"POPE ({args.parser} parser, questions={args.questions}) on {args.file}: "
                f"{totals['n']} answers, {len(report.bad)} skipped",
                {"Acc": totals["accuracy"], "Prec": totals["precision"], "Rec": totals["recall"],
                 "F1": totals["f1"], "Yes%": totals["yes_ratio"], "unknown": totals["unknown"]},
                ["Acc", "Prec", "Rec", "F1", "Yes%", "unknown"])
    print(f"wrote {out}/results.json, scores.jsonl")
    return 0


def cmd_ls(args) -> int:
    from halluc.registry import REGISTRY
    for kind, table in REGISTRY.items():
        print(f"{kind}:")
        for name, target in table.items():
            print(f"  {name:<14} {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from halluc.records import BadInput
    handler = {"ls": cmd_ls}.get(args.command) or {"chair": cmd_eval_chair, "pope": cmd_eval_pope}[args.metric]
    try:
        return handler(args)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
