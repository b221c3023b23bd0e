"""Scoring, a stage of its own: records in, ``scores.jsonl`` + ``results.json`` + ``run.json`` out.

    summary = run(args)        # args.metric: a registry metric (chair, pope, world, a plug-in's)

Caption metrics (CHAIR, the world's) share one path: read the records, look up the ground truth the
metric names, report and skip records whose image it lacks, score, write. POPE joins answers to its
questions by question_id. Every metric declares its options, columns and title in its registry object.
"""
from __future__ import annotations

import time
from pathlib import Path

from halluc.errors import BadInput


def add_options(p, metric) -> None:
    """The metric's own options, then the input/output options every metric takes."""
    p.add_argument("file", type=Path, help="captions JSONL" if metric.kind == "captions" else
                   "answers JSONL (question_id + text/answer)")
    metric.add_options(p)
    p.add_argument("--out-dir", type=Path, help="where scores.jsonl, results.json and run.json go "
                   "(default: next to FILE, named after it)")
    p.add_argument("--text-key", help="field holding the text (default: text, caption or answer)")
    p.add_argument("--id-key", help="field holding the record id")
    p.add_argument("--strict", action="store_true", help="any bad input line is fatal (exit code 2)")


def run(args) -> dict:
    """Score ``args.file`` with the metric ``args.metric``; returns what the command prints."""
    from halluc.registry import resolve
    t0 = time.perf_counter()
    metric = resolve("metric", args.metric)
    res, n, report = (_captions if metric.kind == "captions" else _answers)(args, metric)
    out = out_dir(args, metric.tag(args))
    totals = {**res.totals, **({"questions": args.questions} if metric.kind == "answers" else {}),
              "input": str(args.file), "n_skipped": len(report.bad)}
    _write(out, res, totals, args)
    return {"title": f"{metric.title(args)} on {args.file}: {n} {'answers' if metric.kind == 'answers' else 'captions'}, "
                     f"{len(report.bad)} skipped", "totals": totals, "columns": list(metric.columns), "out": out,
            "seconds": time.perf_counter() - t0}


def out_dir(args, tag: str) -> Path:
    from halluc.paths import output_dir
    out = args.out_dir or args.file.with_name(args.file.name.removesuffix(".jsonl") + f".{tag}")
    return output_dir(out, "--out-dir" if args.out_dir else "output folder")


def _captions(args, metric):
    from halluc.records import BadLine, ReadReport, read_records
    report = ReadReport()
    key = metric.image_key(args)
    items = list(read_records(args.file, need_text=True, text_key=args.text_key, id_key=args.id_key,
                              required={key: (int, str)}, strict=args.strict, report=report))
    gt = metric.ground_truth(args, items)
    rows = []
    for it in items:
        image_id = it.rec[key]
        if str(image_id) not in gt:
            bad = BadLine(str(args.file), it.line, key, metric.missing(args, image_id))
            if args.strict:
                raise BadInput(str(bad))
            report.add(bad)
            continue
        rows.append((it.id, image_id, metric.text(args, it.text)))
    if not rows:
        raise BadInput(f"{args.file}: no record could be scored ({report.summary()})")
    return metric.score(args, rows, gt), len(rows), report


def _answers(args, metric):
    import sys
    from halluc.metrics.pope import load_questions, score_pope
    from halluc.records import ReadReport, read_records
    report = ReadReport()
    questions = load_questions(args.questions, report=report, strict=args.strict)
    answers = {it.id: it.text for it in read_records(
        args.file, need_text=True, text_key=args.text_key, id_key=args.id_key or "question_id",
        strict=args.strict, report=report)}
    if not answers or not questions:
        raise BadInput(f"nothing to score ({len(answers)} answers, {len(questions)} questions)")
    res = score_pope(answers, questions, args.parser)
    for what, ids in (("questions without an answer", res.missing), ("answers to unknown question ids", res.unmatched)):
        if ids:
            print(f"warning: {len(ids)} {what}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''}", file=sys.stderr)
    if args.strict and (res.missing or res.unmatched):
        raise BadInput(f"{args.file}: {len(res.missing)} questions without an answer, {len(res.unmatched)} "
                       "answers to unknown questions (--strict)")
    return res, res.totals["n"], report


def _write(out: Path, res, totals: dict, args) -> None:
    from halluc.outputs import atomic_write_json, atomic_write_jsonl
    from halluc.provenance import args_config, write_manifest
    rows = getattr(res, "per_caption", None)
    atomic_write_jsonl(out / "scores.jsonl", rows if rows is not None else res.per_question)
    atomic_write_json(out / "results.json", totals)
    write_manifest(out, command=f"eval {args.metric}", config=args_config(args))


def format_table(title: str, row: dict, keys: list[str]) -> str:
    """A one-row table under a title, headed by the registry's column titles."""
    from halluc.registry import title as column_title
    cols = [column_title(k) for k in keys]
    cells = [f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
    widths = [max(len(c), len(v)) for c, v in zip(cols, cells)]
    return "\n".join([title, "  ".join(c.rjust(w) for c, w in zip(cols, widths)),
                      "  ".join(v.rjust(w) for v, w in zip(cells, widths))])
