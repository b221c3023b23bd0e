"""Scoring, a stage of its own: records in, ``scores.jsonl`` + ``results.json`` + ``run.json`` out.

    summary = run(args)        # args.metric: a registry metric (chair, pope, world, a plug-in's)

Caption metrics (CHAIR, the world's) share one path: read the records, look up the ground truth the
metric names, report and skip records whose image it lacks, score, write. POPE joins answers to its
questions by question_id. A metric of kind ``own`` (AMBER: its own response format, several tasks)
runs its ``evaluate(args)`` and returns the same summary. Every metric declares its options, columns
and title in its registry object; a summary may carry a ready ``table`` to print.
"""
from __future__ import annotations

import time
from pathlib import Path

from halluc.errors import BadInput


def add_options(p, metric) -> None:
    """The metric's own options, then the input/output options every metric takes."""
    p.add_argument("file", type=Path, help=getattr(metric, "file_help", None) or (
        "captions JSONL" if metric.kind == "captions" else "answers JSONL (question_id + text/answer)"))
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
    if metric.kind == "own":        # a metric with its own input format and report (AMBER)
        return {**metric.evaluate(args), "seconds": time.perf_counter() - t0}
    if metric.kind == "answers":    # POPE: one split, or each split of a question set (--split all)
        return {**_pope(args, metric), "seconds": time.perf_counter() - t0}
    res, n, report = _captions(args, metric)
    out = out_dir(args, metric.tag(args))
    totals = {**res.totals, "input": str(args.file), "n_skipped": len(report.bad)}
    _write(out, res, totals, args)
    return {"title": f"{metric.title(args)} on {args.file}: {n} captions, {len(report.bad)} skipped",
            "totals": totals, "columns": list(metric.columns), "out": out, "seconds": time.perf_counter() - t0}


def out_dir(args, tag: str, file: Path | None = None) -> Path:
    """``--out-dir``, else a folder next to ``file`` (default FILE) named after it and ``tag``."""
    from halluc.paths import output_dir
    file = file or args.file
    out = args.out_dir or file.with_name(file.name.removesuffix(".jsonl") + f".{tag}")
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


def _pope(args, metric) -> dict:
    """Each planned split scored and written; with several (``--split all``) each goes to OUT/<split>/
    and OUT holds the combined results.json (per split), scores.jsonl (rows tagged with their split) and
    the paper-style table."""
    from halluc.metrics.pope import split_table, unknown_note
    jobs = metric.plan(args)
    file = Path(str(args.file).replace("{split}", jobs[0][0] if len(jobs) == 1 and jobs[0][0] else "all"))
    out = out_dir(args, metric.tag(args), file)
    per_split, rows, skipped = {}, [], 0
    for split, questions, answers in jobs:
        res, report = _answers(args, questions, answers)
        totals = {**res.totals, "questions": questions, **({"split": split} if split else {}),
                  "input": str(answers), "n_skipped": len(report.bad)}
        if len(jobs) == 1:
            _write(out, res.per_question, totals, args)
            return {"title": f"{metric.title(args)} on {answers}: {totals['n']} answers, {len(report.bad)} skipped; "
                             + unknown_note(totals), "totals": totals, "columns": list(metric.columns), "out": out}
        _write(out / split, res.per_question, totals, args)
        per_split[split], skipped = totals, skipped + len(report.bad)
        rows += [{"split": split, **r} for r in res.per_question]
    combined = {"parser": args.parser, "questions": args.questions, "split": args.split, "input": str(args.file),
                "n": sum(t["n"] for t in per_split.values()), "n_skipped": skipped, "splits": per_split}
    _write(out, rows, combined, args)
    title = f"{metric.title(args)} on {args.file}: {combined['n']} answers, {skipped} skipped"
    return {"title": title, "totals": combined, "columns": list(metric.columns), "out": out,
            "table": split_table(title, per_split)}


def _answers(args, questions_spec: str, path: Path):
    """One split: its questions, the answers in ``path`` joined by question_id, scored with --parser."""
    import sys
    from halluc.metrics.pope import load_questions, score_pope
    from halluc.records import ReadReport, read_records
    report = ReadReport()
    questions = load_questions(questions_spec, report=report, strict=args.strict)
    answers = {it.id: it.text for it in read_records(
        path, need_text=True, text_key=args.text_key, id_key=args.id_key or "question_id",
        strict=args.strict, report=report)}
    if not answers or not questions:
        raise BadInput(f"{path}: nothing to score ({len(answers)} answers, {len(questions)} questions)")
    res = score_pope(answers, questions, args.parser)
    for what, ids in (("questions without an answer", res.missing), ("answers to unknown question ids", res.unmatched)):
        if ids:
            print(f"warning: {path}: {len(ids)} {what}: {', '.join(ids[:10])}{' …' if len(ids) > 10 else ''}",
                  file=sys.stderr)
    if args.strict and (res.missing or res.unmatched):
        raise BadInput(f"{path}: {len(res.missing)} questions without an answer, {len(res.unmatched)} "
                       "answers to unknown questions (--strict)")
    return res, report


def _write(out: Path, res, totals: dict, args) -> None:
    """scores.jsonl (per caption or question: ``res`` is a result or the rows), results.json, run.json."""
    from halluc.outputs import atomic_write_json, atomic_write_jsonl
    from halluc.provenance import args_config, write_manifest
    rows = res if isinstance(res, list) else getattr(res, "per_caption", None)
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
