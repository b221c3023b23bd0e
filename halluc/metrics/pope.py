"""POPE (Li et al., EMNLP 2023): yes/no object-existence probing, with the answer parsers of the
public tools named in every result, because they change the numbers (DESIGN.md §4).

    questions = load_questions("coco-random")            # or a path to a POPE question file
    result = score_pope(answers, questions, parser="vcd")  # answers: {question_id: text}
    result.totals    # accuracy, precision, recall, f1, yes_ratio (percent), unknown, counts

Parsers map (answer text, ground-truth label) to "yes", "no" or "unknown":
- ``original``: LLaVA/POPE's script: keep the first sentence, drop commas, split on spaces; "No",
  "no" or "not" among the words -> no, else yes.
- ``vcd``: VCD/SHIELD's script, label-conditioned substrings: for a "yes" question the answer counts
  as yes when "yes" occurs anywhere in it (else no); for a "no" question it counts as no when "no"
  occurs anywhere (else yes). So "not sure" answers a "no" question correctly.
- ``strict``: exactly "yes" or "no" after lower-casing and stripping white space, else unknown.
- ``vlmevalkit``: VLMEvalKit's rule: punctuation removed, the word "yes" xor the word "no", else unknown.

An ``unknown`` prediction is counted as wrong: it is neither a yes nor a no, so for a "yes"
question it is a false negative and for a "no" question it is simply not a true negative.
Accuracy and the yes-ratio are over all matched questions.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from halluc.assets import asset_path
from halluc.records import BadInput, BadLine, ReadReport, read_records

BUILTIN_QUESTIONS = {f"coco-{s}": f"pope/coco_pope_{s}.jsonl.gz" for s in ("random", "popular", "adversarial")}


def parse_original(text: str, label: str | None = None) -> str:
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "no" in words or "not" in words) else "yes"


def parse_vcd(text: str, label: str | None = None) -> str:
    t = text.lower().strip()
    if label == "yes":
        return "yes" if "yes" in t else "no"
    if label == "no":
        return "no" if "no" in t else "yes"
    raise ValueError(f"the vcd parser needs a yes/no label, got {label!r}")


def parse_strict(text: str, label: str | None = None) -> str:
    t = text.lower().strip()
    return t if t in ("yes", "no") else "unknown"


_PUNCT = re.compile(r"[^\w\s]")


def parse_vlmevalkit(text: str, label: str | None = None) -> str:
    words = _PUNCT.sub(" ", text.lower()).split()
    yes, no = "yes" in words, "no" in words
    return "yes" if yes and not no else "no" if no and not yes else "unknown"




@dataclass
class PopeResult:
    per_question: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)     # questions with no answer
    unmatched: list[str] = field(default_factory=list)   # answers to no known question


def load_questions(spec: str, report: ReadReport | None = None, strict: bool = False) -> dict[str, dict]:
    """POPE questions keyed by question_id: a builtin name (coco-random|coco-popular|coco-adversarial)
    or a JSON-lines question file with ``question_id``, ``label`` (and usually ``text``, ``image``)."""
    if spec in BUILTIN_QUESTIONS:
        with gzip.open(asset_path(BUILTIN_QUESTIONS[spec]), "rt", encoding="utf-8") as f:
            return {str(q["question_id"]): q for q in map(json.loads, f)}
    if not Path(spec).exists():
        raise FileNotFoundError(f"--questions {spec!r}: no such file (builtin: {', '.join(BUILTIN_QUESTIONS)})")
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
    from halluc.registry import resolve
    parse = resolve("pope-parser", parser)
    res = PopeResult()
    tp = fp = tn = fn = unknown = n_yes = bad_label = 0
    for qid, q in questions.items():
        if qid not in answers:
            res.missing.append(qid)
            continue
        label = str(q["label"]).lower().strip()
        if label not in ("yes", "no"):
            bad_label += 1
            continue
        pred = parse(answers[qid], label)
        if pred == "unknown":
            unknown += 1
        n_yes += pred == "yes"
        if label == "yes":
            tp += pred == "yes"
            fn += pred != "yes"
        else:
            tn += pred == "no"
            fp += pred == "yes"
        res.per_question.append({"question_id": q.get("question_id", qid), "label": label,
                                 "pred": pred, "correct": pred == label, "text": answers[qid]})
    res.unmatched = [a for a in answers if a not in questions]
    n = len(res.per_question)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    res.totals = {
        "accuracy": 100 * (tp + tn) / n if n else 0.0, "precision": 100 * prec, "recall": 100 * rec,
        "f1": 100 * f1, "yes_ratio": 100 * n_yes / n if n else 0.0, "unknown": unknown,
        "parser": parser, "n": n, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "missing_answers": len(res.missing), "unmatched_answers": len(res.unmatched),
        "bad_labels": bad_label,
    }
    return res


# ---------------------------------------------------------------- as a registered metric

class PopeMetric:
    """``halluc eval pope``: answers joined to questions by question_id."""
    name, kind = "pope", "answers"
    description = "POPE (Li et al. 2023). Answers are matched to questions by question_id, never by line order."
    columns = ("accuracy", "precision", "recall", "f1", "yes_ratio", "unknown")

    def add_options(self, p) -> None:
        from halluc.registry import names
        p.add_argument("--questions", required=True,
                       help="POPE question file, or builtin " + "|".join(BUILTIN_QUESTIONS))
        p.add_argument("--parser", choices=names("pope-parser"), default="vcd",
                       help="answer parser; results always name it (default %(default)s)")

    def tag(self, args) -> str:
        return f"pope-{args.parser}"

    def title(self, args) -> str:
        return f"POPE ({args.parser} parser, questions={args.questions})"


METRIC = PopeMetric()
