"""POPE (Li et al., EMNLP 2023): yes/no object-existence probing, scored the way each public harness scores
it, with the parser named in every result, because the parser changes the numbers (DESIGN.md §4).

    questions = load_questions("gqa-adversarial")          # a builtin set-split, or a POPE question file
    result = score_pope(answers, questions, parser="vcd")  # answers: {question_id: text}
    result.totals    # accuracy, precision, recall, f1, yes_ratio (percent), unknown, unreadable_by_parser

    halluc eval pope answers.jsonl --questions coco-random --parser lmms-eval
    halluc eval pope answers_{split}.jsonl --questions coco --split all      # the paper table, three splits

Builtin question sets: {coco,aokvqa,gqa}-{random,popular,adversarial} (``halluc/assets/pope/``).

Parsers (``pope-parser`` registry entries, rules and sources in ``halluc/metrics/pope_parsers.py``) map an
answer to "yes", "no" or "unknown". An unknown is always wrong in accuracy. In precision and recall it is
counted as the harness counts it: a false negative on a "yes" question (VLMEvalKit's ``POPE_rating``, and
``strict``; POPE's and VCD's scripts never produce one), or, for lmms-eval (meta ``unknown_counts_as_fn: False``), in neither FP nor FN,
so its recall is over the readable answers to "yes" questions. ``fn`` in the totals is the count that
entered recall. The yes-ratio is always the share of answers read as yes; lmms-eval prints the share of
yes *labels* under that name (50.0 on balanced POPE): that number is kept as ``harness_yes_ratio``.

``unknown`` is how many answers the chosen parser could not read; ``unreadable_by_parser`` gives the same
count for every registered parser on the same answers, so a stricter parser's loss is visible (answers in
Qwen-VL's sentence style, "There is a dog in the image.", are unknown to ``strict`` and ``lmms-eval``).
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from halluc.assets import asset_path
from halluc.errors import BadInput
from halluc.records import BadLine, ReadReport, read_records

SETS = ("coco", "aokvqa", "gqa")
SPLITS = ("random", "popular", "adversarial")
BUILTIN_QUESTIONS = {f"{d}-{s}": f"pope/{d}_pope_{s}.jsonl.gz" for d in SETS for s in SPLITS}
COLUMNS = ("accuracy", "precision", "recall", "f1", "yes_ratio", "unknown")


@dataclass
class PopeResult:
    per_question: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)     # questions with no answer
    unmatched: list[str] = field(default_factory=list)   # answers to no known question


def load_questions(spec: str, report: ReadReport | None = None, strict: bool = False) -> dict[str, dict]:
    """POPE questions keyed by question_id: a builtin name (``coco-random`` … ``gqa-adversarial``)
    or a JSON-lines question file with ``question_id``, ``label`` (and usually ``text``, ``image``)."""
    if spec in BUILTIN_QUESTIONS:
        with gzip.open(asset_path(BUILTIN_QUESTIONS[spec]), "rt", encoding="utf-8") as f:
            return {str(q["question_id"]): q for q in map(json.loads, f)}
    if not Path(spec).exists():
        raise FileNotFoundError(f"--questions {spec!r}: no such file (builtin: {', '.join(BUILTIN_QUESTIONS)}; "
                                f"or a set {'|'.join(SETS)} with --split)")
    report = report if report is not None else ReadReport()
    out = {}
    for it in read_records(spec, id_key="question_id", required={"label": str}, strict=strict, report=report):
        label = it.rec["label"].lower().strip()
        if label not in ("yes", "no"):        # a question that cannot be scored is a bad line, never dropped silently
            bad = BadLine(str(spec), it.line, "label", f"expected yes or no, got {it.rec['label']!r}")
            if strict:
                raise BadInput(str(bad))
            report.add(bad)
            report.n_good -= 1
            continue
        out[it.id] = it.rec
    return out


def score_pope(answers: dict[str, str], questions: dict[str, dict], parser: str = "vcd") -> PopeResult:
    """Join answers to questions by question_id and score them with ``parser`` (a registry name)."""
    from halluc.registry import entry, load_target, names
    meta = entry("pope-parser", parser).meta
    readers = {n: load_target(entry("pope-parser", n).target) for n in names("pope-parser")}
    parse, unknown_is_fn = readers[parser], meta.get("unknown_counts_as_fn", True)
    unreadable = dict.fromkeys(readers, 0)
    res = PopeResult()
    tp = fp = tn = fn = unknown = n_yes = yes_labels = bad_label = 0
    for qid, q in questions.items():
        if qid not in answers:
            res.missing.append(qid)
            continue
        label = str(q["label"]).lower().strip()
        if label not in ("yes", "no"):
            bad_label += 1
            continue
        text = answers[qid]
        pred = parse(text, label)
        for name, read in readers.items():       # what every other parser makes of the same answer
            unreadable[name] += (pred if name == parser else read(text, label)) == "unknown"
        unknown += pred == "unknown"
        n_yes += pred == "yes"
        if label == "yes":
            yes_labels += 1
            tp += pred == "yes"
            fn += pred == "no" or (pred == "unknown" and unknown_is_fn)
        else:
            tn += pred == "no"
            fp += pred == "yes"
        res.per_question.append({"question_id": q.get("question_id", qid), "label": label,
                                 "pred": pred, "correct": pred == label, "text": text})
    res.unmatched = [a for a in answers if a not in questions]
    n = len(res.per_question)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    res.totals = {
        "accuracy": 100 * (tp + tn) / n if n else 0.0, "precision": 100 * prec, "recall": 100 * rec,
        "f1": 100 * f1, "yes_ratio": 100 * n_yes / n if n else 0.0, "unknown": unknown,
        "parser": parser, "parser_source": meta.get("source"), "unreadable_by_parser": unreadable,
        "n": n, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "missing_answers": len(res.missing), "unmatched_answers": len(res.unmatched),
        "bad_labels": bad_label,
    }
    if meta.get("printed_yes_ratio") == "labels":        # lmms-eval: what the harness itself would print
        res.totals["harness_yes_ratio"] = 100 * yes_labels / n if n else 0.0
        res.totals["harness_yes_ratio_note"] = (f"{parser} prints the share of yes labels as its yes-ratio; "
                                                "yes_ratio here is the share of yes answers")
    return res


# ---------------------------------------------------------------- splits

def plan(questions: str, split: str | None, file) -> list[tuple[str | None, str, Path]]:
    """What one ``eval pope`` call scores: (split or None, question spec, answers file) per split.

    ``--questions coco --split popular`` is ``coco-popular``; ``--split all`` is the three splits of a set.
    Question ids repeat across splits, so with ``--split all`` FILE must contain ``{split}``, substituted
    per split (as may a question file path given with ``--split``)."""
    if split is None:
        if questions in SETS:
            raise BadInput(f"--questions {questions} is a question set: add --split {'|'.join(SPLITS)}|all")
        if "{split}" in str(file):
            raise BadInput(f"{file}: the answers path contains {{split}}: add --split {'|'.join(SPLITS)}|all")
        return [(None, questions, Path(file))]
    if questions not in SETS and "{split}" not in questions:
        raise BadInput(f"--split {split}: --questions must be a set ({'|'.join(SETS)}) or a question file path "
                       f"containing {{split}}; got {questions!r}")
    if split == "all" and "{split}" not in str(file):
        raise BadInput(f"--split all: {file}: question ids repeat across splits, so the answers path must contain "
                       "{split}, replaced by each split's name (e.g. answers_{split}.jsonl)")
    return [(s, f"{questions}-{s}" if questions in SETS else questions.replace("{split}", s),
             Path(str(file).replace("{split}", s))) for s in (SPLITS if split == "all" else (split,))]


def unknown_note(totals: dict) -> str:
    """The summary line's account of unreadable answers: the chosen parser's, then every parser's."""
    others = ", ".join(f"{k} {v}" for k, v in totals["unreadable_by_parser"].items())
    note = f"unknown {totals['unknown']} ({totals['parser']}); unreadable by parser: {others}"
    if "harness_yes_ratio" in totals:
        note += f"; {totals['parser']} itself prints yes-ratio {totals['harness_yes_ratio']:.2f} (share of yes labels)"
    return note


def split_table(title: str, rows: dict[str, dict]) -> str:
    """The paper-style table: one row per split (Acc, Prec, Recall, F1, Yes%, unknown), then how many
    answers each registered parser could not read."""
    from halluc.registry import title as column_title
    parsers = list(next(iter(rows.values()))["unreadable_by_parser"])
    head = ["split"] + [column_title(k) for k in COLUMNS] + ["|"] + parsers
    body = [[s] + [f"{t[k]:.2f}" if isinstance(t[k], float) else str(t[k]) for k in COLUMNS] + ["|"]
            + [str(t["unreadable_by_parser"][p]) for p in parsers] for s, t in rows.items()]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    parser = next(iter(rows.values()))["parser"]
    return "\n".join([title, line(head), *map(line, body),
                      f"(after |: answers each parser could not read; 'unknown' is the {parser} parser's)"])


# ---------------------------------------------------------------- as a registered metric

class PopeMetric:
    """``halluc eval pope``: answers joined to questions by question_id, one split or a set's three."""
    name, kind = "pope", "answers"
    description = ("POPE (Li et al. 2023). Answers are matched to questions by question_id, never by line order. "
                   "--split all scores a set's three splits from FILE with {split} in its path.")
    columns = COLUMNS

    def add_options(self, p) -> None:
        from halluc.registry import names
        p.add_argument("--questions", required=True,
                       help="POPE question file (a path with {split} goes with --split), a builtin "
                       f"{{{','.join(SETS)}}}-{{{','.join(SPLITS)}}}, or a set {'|'.join(SETS)} with --split")
        p.add_argument("--split", choices=(*SPLITS, "all"),
                       help="a split of the --questions set; 'all' scores the three (FILE must contain {split})")
        p.add_argument("--parser", choices=names("pope-parser"), default="vcd",
                       help="answer parser; results always name it (default %(default)s)")

    def plan(self, args) -> list[tuple[str | None, str, Path]]:
        return plan(args.questions, getattr(args, "split", None), args.file)

    def tag(self, args) -> str:
        return f"pope-{args.parser}"

    def title(self, args) -> str:
        split = getattr(args, "split", None)
        return f"POPE ({args.parser} parser, questions={args.questions}{f', split={split}' if split else ''})"


METRIC = PopeMetric()
