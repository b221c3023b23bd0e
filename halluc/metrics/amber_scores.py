"""AMBER's counters and the numbers made from them: exact percentages, and the ones AMBER's
reference scorer prints (its rounding, its epsilons, its counters' starting offsets).

    t = Tally(initial_counts())                 # the reference's counters, named as in metrics.txt
    add_generative(t, scored)                   # one description (amber_generative.Scored)
    add_discriminative(t, "existence", "no", "No")
    exact_numbers(t), printed_numbers(t, sections)

Discriminative dimensions follow the reference's branches on the annotation type: existence is
``discriminative-hallucination``; attribute is state + number + action; relation is every other
type (``discriminative-relation`` and the 689 items typed plain ``relation``). AMBER's positive
class is "no": precision = correct No / answered No, recall = correct No / truth no.

Two sets of numbers, because the reference's printed ones are not plain ratios:
- exact (results.json's flat keys and blocks): ratios of the integer counts, unrounded, F1 from
  unrounded precision and recall; a ratio with nothing to count is 0.0;
- printed (``amber_printed``): each counter starts where metrics.txt says (0.001 for every
  denominator) and is accumulated in the reference's order; each percentage is rounded to one
  decimal, and F1 is computed from the *rounded* precision and recall with the reference's epsilon
  (0.001 for existence, 0.0001 elsewhere), then rounded.
"""
from __future__ import annotations

DIMENSIONS = ("existence", "state", "number", "action", "relation")
ATTRIBUTE = ("state", "number", "action")
PREFIX = {"existence": "ha_", "state": "as_", "number": "an_", "action": "aa_", "relation": "asso_"}
_TYPES = {"discriminative-hallucination": "existence", "discriminative-attribute-state": "state",
          "discriminative-attribute-number": "number", "discriminative-attribute-action": "action"}
# the reference's --evaluation_type letters: which sections each prints
SECTIONS = {"g": ("generative",), "de": ("existence",), "da": ("attribute", "state", "number", "action"),
            "dr": ("relation",)}
F1_EPSILON = {"existence": 0.001}          # all other sections: 0.0001


def dimension(ann_type: str) -> str:
    """The discriminative dimension of an annotation type (the reference's else-branch: relation)."""
    return _TYPES.get(ann_type, "relation")


class Tally:
    """The reference's counters: ``ref`` as it accumulates them (floats from metrics.txt's start
    values), ``n`` the same counts as integers from zero."""

    def __init__(self, initial: dict):
        self.ref = dict(initial)
        self.n = {k: 0 for k in initial}

    def add(self, key: str, value: int = 1) -> None:
        self.ref[key] += value
        self.n[key] += value


def add_generative(t: Tally, r) -> None:
    t.add("chair_score", sum(r.hallucinated))
    t.add("chair_num", len(r.nouns))
    t.add("safe_cover_score", sum(r.truth_covered))
    t.add("safe_cover_num", len(r.truth_covered))
    t.add("hallu_cover_score", sum(r.hallu_covered))
    t.add("hallu_cover_num", len(r.hallu_covered))
    if not any(r.hallucinated):
        t.add("non_hallu_score")
    t.add("non_hallu_num")


def add_discriminative(t: Tally, dim: str, truth: str, answer: str | None) -> None:
    """One answer ("Yes", "No" or None: unreadable) to a question whose truth is ``truth``, counted
    overall and under its dimension, exactly as the reference's branches count it."""
    for p in ("", PREFIX[dim]):
        t.add(p + "qa_correct_num")
        if truth == "yes":
            if answer == "Yes":
                t.add(p + "qa_correct_score")
        else:
            t.add(p + "qa_no_num")
            if answer == "No":
                t.add(p + "qa_correct_score")
                t.add(p + "qa_no_score")
        if answer == "No":
            t.add(p + "qa_ans_no_num")
            if truth == "no":
                t.add(p + "qa_ans_no_score")


def _prefixes(section: str) -> tuple[str, ...]:
    if section == "discriminative":
        return ("",)
    if section == "attribute":
        return tuple(PREFIX[d] for d in ATTRIBUTE)
    return (PREFIX[section],)


def _pct(a, b) -> float:
    return 100 * a / b if b else 0.0


def exact_qa(t: Tally, section: str) -> dict:
    """Accuracy, precision, recall, F1 (percent, unrounded) and the counts behind them."""
    def s(key):
        return sum(t.n[p + key] for p in _prefixes(section))
    prec, rec = _pct(s("qa_ans_no_score"), s("qa_ans_no_num")), _pct(s("qa_no_score"), s("qa_no_num"))
    return {"accuracy": _pct(s("qa_correct_score"), s("qa_correct_num")), "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            "n": s("qa_correct_num"), "correct": s("qa_correct_score"), "truth_no": s("qa_no_num"),
            "answered_no": s("qa_ans_no_num"), "correct_no": s("qa_ans_no_score")}


def exact_generative(t: Tally) -> dict:
    n = t.n
    return {"chair": _pct(n["chair_score"], n["chair_num"]), "cover": _pct(n["safe_cover_score"], n["safe_cover_num"]),
            "hal": 100 - _pct(n["non_hallu_score"], n["non_hallu_num"]) if n["non_hallu_num"] else 0.0,
            "cog": _pct(n["hallu_cover_score"], n["hallu_cover_num"]),
            "descriptions": n["non_hallu_num"], "with_hallucination": n["non_hallu_num"] - n["non_hallu_score"],
            "nouns": n["chair_num"], "hallucinated_nouns": n["chair_score"], "truth_objects": n["safe_cover_num"],
            "truth_covered": n["safe_cover_score"], "hallu_objects": n["hallu_cover_num"],
            "hallu_covered": n["hallu_cover_score"]}


def printed_qa(t: Tally, section: str) -> dict:
    """The reference's printed Accuracy/Precision/Recall/F1 of a section (same operations, same order)."""
    def s(key):
        return sum(t.ref[p + key] for p in _prefixes(section))
    acc = round(s("qa_correct_score") / s("qa_correct_num") * 100, 1)
    prec = round(s("qa_ans_no_score") / s("qa_ans_no_num") * 100, 1)
    rec = round(s("qa_no_score") / s("qa_no_num") * 100, 1)
    eps = F1_EPSILON.get(section, 0.0001)
    f1 = round(2 * (prec / 100) * (rec / 100) / ((prec / 100) + (rec / 100) + eps) * 100, 1)
    return {"Accuracy": acc, "Precision": prec, "Recall": rec, "F1": f1}


def printed_generative(t: Tally) -> dict:
    r = t.ref
    return {"CHAIR": round(r["chair_score"] / r["chair_num"] * 100, 1),
            "Cover": round(r["safe_cover_score"] / r["safe_cover_num"] * 100, 1),
            "Hal": round(100 - r["non_hallu_score"] / r["non_hallu_num"] * 100, 1),
            "Cog": round(r["hallu_cover_score"] / r["hallu_cover_num"] * 100, 1)}


def present(t: Tally) -> list[str]:
    """The reference's task letters with data: g, de, da, dr."""
    got = {"g": t.n["non_hallu_num"], "de": t.n["ha_qa_correct_num"], "dr": t.n["asso_qa_correct_num"],
           "da": sum(t.n[PREFIX[d] + "qa_correct_num"] for d in ATTRIBUTE)}
    return [k for k in ("g", "de", "da", "dr") if got[k]]


def evaluation_type(tasks: list[str]) -> str | None:
    """The reference's --evaluation_type that scores exactly these tasks (None: no single one does)."""
    d = [k for k in tasks if k != "g"]
    if "g" in tasks:
        return "g" if not d else "a" if len(d) == 3 else None
    return "d" if len(d) == 3 else d[0] if len(d) == 1 else None


def sections(t: Tally) -> list[str]:
    """The sections to report, in the reference's print order: only those with data (the overall
    discriminative one whenever any dimension has data; an attribute sub-dimension only with data)."""
    tasks = present(t)
    out = ["generative"] if "g" in tasks else []
    if any(k in tasks for k in ("de", "da", "dr")):
        out.append("discriminative")
    for k in ("de", "da", "dr"):
        if k in tasks:
            out += [s for s in SECTIONS[k] if s == "attribute" or t.n[PREFIX[s] + "qa_correct_num"]]
    return out


def numbers(t: Tally) -> tuple[dict, dict]:
    """(exact blocks, printed blocks) of every section with data."""
    exact, printed = {}, {}
    for s in sections(t):
        exact[s] = exact_generative(t) if s == "generative" else exact_qa(t, s)
        printed[s] = printed_generative(t) if s == "generative" else printed_qa(t, s)
    return exact, printed
