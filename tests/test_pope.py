"""POPE: SHIELD's LLaVA-1.5 answers reproduce the published numbers; each harness's parser on hand-made
strings that tell the parsers apart; each harness's counting (lmms-eval's recall, VLMEvalKit's binary
predictions) restated here from its source and compared; the nine builtin question sets; ``--split all``;
the unreadable counts every result carries."""
import json
import random
import re

import pytest

from halluc.cli import main
from halluc.errors import BadInput
from halluc.metrics.pope import SETS, SPLITS, load_questions, plan, score_pope
from halluc.metrics.pope_parsers import (parse_lmms_eval, parse_original, parse_strict, parse_vcd,
                                         parse_vlmevalkit)
from halluc.registry import names, resolve

# ../shared/data/README.md: the VCD parser on SHIELD's answers.
PUBLISHED = {
    "random": {"accuracy": 91.37, "f1": 91.18, "precision": 93.18, "recall": 89.27, "yes_ratio": 47.90},
    "popular": {"accuracy": 87.43, "f1": 87.66},
    "adversarial": {"accuracy": 82.50, "f1": 83.63},
}
PARSERS = ("original", "vcd", "strict", "vlmevalkit", "lmms-eval")


@pytest.mark.parametrize("split", PUBLISHED)
def test_shield_llava15_vcd_parser(shared, tmp_path, split):
    out = tmp_path / split
    rc = main(["eval", "pope", str(shared / f"reference-outputs/shield_llava15_pope_{split}.jsonl"),
               "--questions", str(shared / f"pope/coco_pope_{split}.json"), "--parser", "vcd",
               "--out-dir", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    for k, v in PUBLISHED[split].items():
        assert round(res[k], 2) == v, (k, res[k])
    assert res["parser"] == "vcd" and res["unknown"] == 0 and res["n"] == 3000
    assert set(res) >= {"accuracy", "precision", "recall", "f1", "yes_ratio", "unknown", "parser"}
    assert (out / "run.json").exists()


@pytest.mark.parametrize("parser", PARSERS)
def test_every_parser_agrees_on_single_word_answers(shared, parser):
    """SHIELD's answers are all exactly "Yes" or "No": every harness reads them alike, so all five give the
    published numbers, none has an unknown, and lmms-eval alone prints another yes-ratio (its labels')."""
    for split, want in PUBLISHED.items():
        lines = (shared / f"reference-outputs/shield_llava15_pope_{split}.jsonl").read_text().splitlines()
        answers = {str(json.loads(l)["question_id"]): json.loads(l)["text"] for l in lines}
        t = score_pope(answers, load_questions(f"coco-{split}"), parser).totals
        assert {k: round(t[k], 2) for k in want} == want and t["unknown"] == 0
        assert set(t["unreadable_by_parser"].values()) == {0}
        assert t["harness_yes_ratio"] == 50.0 if parser == "lmms-eval" else "harness_yes_ratio" not in t


def test_nine_builtin_question_sets_equal_shared(shared):
    for d in SETS:
        for split in SPLITS:
            built = load_questions(f"{d}-{split}")
            lines = (shared / f"pope/{d}_pope_{split}.json").read_text(encoding="utf-8").splitlines()
            assert built == {str(json.loads(l)["question_id"]): json.loads(l) for l in lines}, (d, split)


def test_every_harness_is_registered():
    assert set(PARSERS) <= set(names("pope-parser"))
    assert resolve("pope-parser", "lmms-eval") is parse_lmms_eval


# ---------------------------------------------------------------- parsers, told apart

Y, N, U = "yes", "no", "unknown"
# (answer, label): what original, vcd, strict, vlmevalkit, lmms-eval read.
MATRIX = [
    (("Yes", "yes"), (Y, Y, Y, Y, Y)),
    (("Yes.", "yes"), (Y, Y, U, Y, U)),                            # punctuation: exact-match parsers lose it
    ((" no \n", "no"), (N, N, N, N, N)),                          # white space is stripped by all
    (("NO", "no"), (Y, N, N, N, N)),                              # POPE's script is case-sensitive
    (("No, there is no dog.", "no"), (N, N, U, N, U)),
    (("There is a dog in the image.", "yes"), (Y, N, U, U, U)),   # Qwen-VL style: only POPE's reads it (as yes)
    (("There is no dog in the image.", "no"), (N, N, U, N, U)),
    (("Not sure", "no"), (Y, N, U, U, U)),                        # vcd: "no" is a substring of "not"
    (("I know it", "no"), (Y, N, U, U, U)),                       # ...and of "know"
    (("yes, no", "yes"), (N, Y, U, U, U)),                        # vcd looks only for the label's word
    (("**Yes**", "yes"), (Y, Y, U, U, U)),                        # "*" is not VLMEvalKit punctuation
    (("Yes:", "yes"), (Y, Y, U, U, U)),                           # nor ":"
    (("Yes-ish", "yes"), (Y, Y, U, Y, U)),                        # "-" between letters becomes a space
    (("Yes-ish, 1,000 of them", "yes"), (Y, Y, U, U, U)),         # a digit,digit anywhere: marks are deleted
    (("yes" + "." * 10, "yes"), (Y, Y, U, Y, U)),
    (("yes" + "." * 40, "yes"), (Y, Y, U, U, U)),                 # VLMEvalKit strips only 32 periods
    (("I see a dog. No cat though", "yes"), (Y, N, U, N, U)),     # POPE: only the first sentence counts
]


@pytest.mark.parametrize("case,want", MATRIX, ids=[repr(c[0][0])[:24] for c in MATRIX])
def test_parser_matrix(case, want):
    got = tuple(resolve("pope-parser", p)(*case) for p in PARSERS)
    assert got == want, dict(zip(PARSERS, got))


def test_matrix_tells_every_pair_of_parsers_apart():
    columns = {p: [w[i] for _, w in MATRIX] for i, p in enumerate(PARSERS)}
    for a in PARSERS:
        for b in PARSERS:
            if a < b and {a, b} != {"strict", "lmms-eval"}:          # those two differ in counting only
                assert columns[a] != columns[b], (a, b)


@pytest.mark.parametrize("text,want", [
    ("Yes, there is a dog.", "yes"), ("No, there is not.", "no"), ("There is not a dog", "no"),
    ("No.", "no"), ("Nope", "yes"), ("no, it isn't", "no"),
])
def test_parse_original(text, want):
    assert parse_original(text) == want


def test_parse_vcd_needs_the_label():
    assert parse_vcd("Absolutely", "no") == "yes"
    with pytest.raises(ValueError):
        parse_vcd("yes", None)


@pytest.mark.parametrize("text,want", [("yes", "yes"), (" No \n", "no"), ("Yes.", "unknown"), ("maybe", "unknown")])
def test_parse_strict_and_lmms_eval_read_alike(text, want):
    assert parse_strict(text) == want and parse_lmms_eval(text) == want


@pytest.mark.parametrize("text,want", [("Yes.", "yes"), ("no!", "no"), ("Yes and no", "unknown"),
                                       ("Nope", "unknown"), ("Yes, it's there", "yes"), ("", "unknown"),
                                       ("(yes)", "yes"), ("yes,no", "unknown"), ("Answer: no", "no")])
def test_parse_vlmevalkit(text, want):
    assert parse_vlmevalkit(text) == want


# ---------------------------------------------------------------- counting, as each harness counts

def _qa(pairs):
    questions = {str(i): {"question_id": i, "label": lab} for i, (lab, _) in enumerate(pairs)}
    return {str(i): a for i, (_, a) in enumerate(pairs)}, questions


HAND = [("yes", "yes"), ("yes", "Yes."), ("yes", "no"), ("no", "no"), ("no", "yes"), ("no", "Sure.")]


def test_lmms_eval_leaves_unknowns_out_of_recall():
    answers, questions = _qa(HAND)
    s = score_pope(answers, questions, "strict").totals
    lm = score_pope(answers, questions, "lmms-eval").totals
    # strict: the unknown "Yes." is a false negative; lmms-eval: in neither FP nor FN
    assert (s["tp"], s["fn"], s["tn"], s["fp"], s["unknown"]) == (1, 2, 1, 1, 2)
    assert (lm["tp"], lm["fn"], lm["tn"], lm["fp"], lm["unknown"]) == (1, 1, 1, 1, 2)
    assert round(s["recall"], 2) == 33.33 and lm["recall"] == 50.0
    assert s["precision"] == lm["precision"] == 50.0 and lm["f1"] == 50.0 and round(s["f1"], 2) == 40.0
    assert round(s["accuracy"], 2) == round(lm["accuracy"], 2) == 33.33       # unknowns are wrong for both
    assert round(lm["yes_ratio"], 2) == 33.33                                  # ours: the answers
    assert lm["harness_yes_ratio"] == 50.0 and "harness_yes_ratio" not in s  # lmms-eval's: the labels


def test_vlmevalkit_counts_unknown_as_a_no_prediction():
    t = score_pope(*_qa(HAND), "vlmevalkit").totals
    assert (t["tp"], t["fn"], t["tn"], t["fp"], t["unknown"]) == (2, 1, 1, 1, 1)
    assert t["accuracy"] == 50.0 and round(t["precision"], 4) == round(t["recall"], 4) == 66.6667


def _lmms_eval_numbers(labels, texts):
    """lmms-eval's pope aggregation (utils.py @ 2c03baf), restated: fractions, here in percent."""
    preds = [t.lower().strip() for t in texts]
    tp = sum(g == "yes" and p == "yes" for g, p in zip(labels, preds))
    fp = sum(g == "no" and p == "yes" for g, p in zip(labels, preds))
    fn = sum(g == "yes" and p == "no" for g, p in zip(labels, preds))
    prec, rec = (tp / (tp + fp) if tp + fp else 0), (tp / (tp + fn) if tp + fn else 0)
    return {"accuracy": 100 * sum(map(str.__eq__, preds, labels)) / len(labels), "precision": 100 * prec,
            "recall": 100 * rec, "f1": 100 * (2 * prec * rec / (prec + rec) if prec + rec else 0),
            "harness_yes_ratio": 100 * labels.count("yes") / len(labels)}


def _vlmevalkit_numbers(labels, texts):
    """VLMEvalKit's POPE_rating (yorn.py @ 0c7163c), restated: an extracted non-Yes is a 0 prediction."""
    ext = [parse_vlmevalkit(t) for t in texts]
    tp = sum(g == "yes" and e == "yes" for g, e in zip(labels, ext))
    fp = sum(g == "no" and e == "yes" for g, e in zip(labels, ext))
    fn = sum(g == "yes" and e != "yes" for g, e in zip(labels, ext))
    prec, rec = (tp / (tp + fp) if tp + fp else 0), (tp / (tp + fn) if tp + fn else 0)
    return {"accuracy": 100 * sum(map(str.__eq__, ext, labels)) / len(labels), "precision": 100 * prec,
            "recall": 100 * rec, "f1": 100 * (2 * prec * rec / (prec + rec) if prec + rec else 0)}


@pytest.mark.parametrize("parser,oracle", [("lmms-eval", _lmms_eval_numbers), ("vlmevalkit", _vlmevalkit_numbers)])
def test_harness_numbers_reproduced_exactly(parser, oracle):
    rng = random.Random(16)
    pool = [c[0][0] for c in MATRIX] + ["yes", "no", "Sure", "No."]
    pairs = [(rng.choice(["yes", "no"]), rng.choice(pool)) for _ in range(400)]
    t = score_pope(*_qa(pairs), parser).totals
    want = oracle([lab for lab, _ in pairs], [a for _, a in pairs])
    assert {k: t[k] for k in want} == want        # exact: the same arithmetic, not a tolerance


# ---------------------------------------------------------------- unreadable answers, every parser

QWEN = [("yes", "There is a dog in the image."), ("no", "There is no cat in the image."), ("yes", "Yes"),
        ("no", "No, there is not.")]


def test_unreadable_by_every_parser_on_the_same_answers():
    t = score_pope(*_qa(QWEN), "vcd").totals
    assert t["unknown"] == 0
    assert t["unreadable_by_parser"] == {"original": 0, "vcd": 0, "strict": 3, "vlmevalkit": 1, "lmms-eval": 3}


def test_cli_summary_and_results_name_unreadable_counts(tmp_path, capsys):
    q, a = tmp_path / "q.jsonl", tmp_path / "a.jsonl"
    q.write_text("".join(json.dumps({"question_id": i, "label": lab}) + "\n" for i, (lab, _) in enumerate(QWEN)))
    a.write_text("".join(json.dumps({"question_id": i, "text": t}) + "\n" for i, (_, t) in enumerate(QWEN)))
    assert main(["eval", "pope", str(a), "--questions", str(q), "--parser", "strict", "--out-dir", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "unknown 3 (strict); unreadable by parser: original 0, vcd 0, strict 3, vlmevalkit 1, lmms-eval 3" in out
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["unknown"] == 3 and res["unreadable_by_parser"]["vlmevalkit"] == 1
    assert main(["eval", "pope", str(a), "--questions", str(q), "--parser", "lmms-eval", "--out-dir", str(tmp_path / "l")]) == 0
    assert "lmms-eval itself prints yes-ratio 50.00 (share of yes labels)" in capsys.readouterr().out


# ---------------------------------------------------------------- --split

@pytest.fixture
def split_answers(shared, tmp_path):
    for s in SPLITS:
        (tmp_path / f"answers_{s}.jsonl").write_bytes((shared / f"reference-outputs/shield_llava15_pope_{s}.jsonl").read_bytes())
    return tmp_path / "answers_{split}.jsonl"


def test_split_all_scores_three_splits(split_answers, tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["eval", "pope", str(split_answers), "--questions", "coco", "--split", "all", "--out-dir", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Acc" in table and "Yes%" in table and "lmms-eval" in table
    combined = json.loads((out / "results.json").read_text())
    assert list(combined["splits"]) == list(SPLITS) and combined["n"] == 9000 and combined["parser"] == "vcd"
    for s in SPLITS:
        res = json.loads((out / s / "results.json").read_text())
        assert res == combined["splits"][s] and res["split"] == s and res["questions"] == f"coco-{s}"
        assert res["input"] == str(tmp_path / f"answers_{s}.jsonl") and (out / s / "run.json").exists()
        for k, v in PUBLISHED[s].items():
            assert round(res[k], 2) == v, (s, k)
        row = next(line for line in table.splitlines() if line.startswith(s))
        assert f"{PUBLISHED[s]['accuracy']:.2f}" in row and f"{PUBLISHED[s]['f1']:.2f}" in row
    assert sum(1 for _ in open(out / "scores.jsonl")) == 9000


def test_split_all_default_out_and_one_split(split_answers, tmp_path):
    assert main(["eval", "pope", str(split_answers), "--questions", "coco", "--split", "all"]) == 0
    assert (tmp_path / "answers_all.pope-vcd" / "popular" / "results.json").exists()
    assert main(["eval", "pope", str(split_answers), "--questions", "coco", "--split", "popular", "--parser", "original"]) == 0
    res = json.loads((tmp_path / "answers_popular.pope-original" / "results.json").read_text())
    assert round(res["accuracy"], 2) == 87.43 and res["split"] == "popular"


def test_split_all_needs_the_placeholder(shared, capsys):
    rc = main(["eval", "pope", str(shared / "reference-outputs/shield_llava15_pope_random.jsonl"),
               "--questions", "coco", "--split", "all"])
    err = capsys.readouterr().err
    assert rc == 2 and "{split}" in err and "Traceback" not in err


@pytest.mark.parametrize("questions,split,fragment", [("coco", None, "add --split"),
                                                      ("coco-random", None, "contains {split}: add --split"),
                                                      ("coco-random", "random", "must be a set")])
def test_split_misuse_is_one_line(questions, split, fragment):
    with pytest.raises(BadInput, match=re.escape(fragment)):
        plan(questions, split, "a_{split}.jsonl")


def test_question_file_template_with_split(tmp_path):
    jobs = plan(str(tmp_path / "q_{split}.json"), "all", tmp_path / "a_{split}.jsonl")
    assert [(s, q, a.name) for s, q, a in jobs] == [(s, str(tmp_path / f"q_{s}.json"), f"a_{s}.jsonl") for s in SPLITS]


# ---------------------------------------------------------------- joining

def test_matching_by_question_id_not_line_order():
    questions = {"1": {"question_id": 1, "label": "yes"}, "2": {"question_id": 2, "label": "no"},
                 "3": {"question_id": 3, "label": "no"}}
    answers = {"2": "No", "1": "Yes", "9": "Yes"}          # shuffled, one missing, one stray
    res = score_pope(answers, questions, "strict")
    assert res.totals["accuracy"] == 100.0 and res.totals["n"] == 2
    assert res.missing == ["3"] and res.unmatched == ["9"]


def test_unknown_counts_as_wrong():
    questions = {str(i): {"label": l} for i, l in enumerate(["yes", "yes", "no", "no"])}
    answers = {"0": "yes", "1": "dunno", "2": "no", "3": "hmm"}
    t = score_pope(answers, questions, "strict").totals
    assert (t["tp"], t["fn"], t["tn"], t["fp"], t["unknown"]) == (1, 1, 1, 0, 2)
    assert t["accuracy"] == 50.0 and t["precision"] == 100.0 and t["recall"] == 50.0 and t["yes_ratio"] == 25.0


def test_cli_reports_mismatches(tmp_path, capsys):
    q = tmp_path / "q.json"
    q.write_text('{"question_id": 1, "label": "yes"}\n{"question_id": 2, "label": "no"}\n')
    a = tmp_path / "a.jsonl"
    a.write_text('{"question_id": 2, "text": "No"}\n{"question_id": 7, "text": "Yes"}\n')
    assert main(["eval", "pope", str(a), "--questions", str(q), "--out-dir", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "1 questions without an answer: 1" in err and "1 answers to unknown question ids: 7" in err
    assert main(["eval", "pope", str(a), "--questions", str(q), "--strict", "--out-dir", str(tmp_path / "o")]) == 2
