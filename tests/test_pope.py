"""POPE: SHIELD's LLaVA-1.5 answers reproduce the published numbers; each parser on hand-made strings."""
import json

import pytest

from halluc.cli import main
from halluc.metrics.pope import load_questions, parse_original, parse_strict, parse_vcd, parse_vlmevalkit, score_pope

# ../shared/data/README.md: the VCD parser on SHIELD's answers.
PUBLISHED = {
    "random": {"accuracy": 91.37, "f1": 91.18, "precision": 93.18, "recall": 89.27, "yes_ratio": 47.90},
    "popular": {"accuracy": 87.43, "f1": 87.66},
    "adversarial": {"accuracy": 82.50, "f1": 83.63},
}


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


def test_builtin_questions_equal_shared(shared):
    for split in PUBLISHED:
        built = load_questions(f"coco-{split}")
        ref = {str(json.loads(l)["question_id"]): json.loads(l) for l in open(shared / f"pope/coco_pope_{split}.json")}
        assert built == ref


@pytest.mark.parametrize("text,want", [
    ("Yes, there is a dog.", "yes"), ("No, there is not.", "no"), ("There is not a dog", "no"),
    ("No.", "no"), ("I see a dog. No cat though", "yes"),   # only the first sentence counts
    ("Nope", "yes"),                                         # whole words only
    ("no, it isn't", "no"), ("NO", "yes"),                   # case-sensitive like LLaVA's script
])
def test_parse_original(text, want):
    assert parse_original(text) == want


def test_parse_vcd_is_label_conditioned():
    assert parse_vcd("Yes", "yes") == "yes"
    assert parse_vcd("Not sure", "no") == "no"        # "no" is a substring of "not"
    assert parse_vcd("Not sure", "yes") == "no"
    assert parse_vcd("I know it", "no") == "no"       # ...and of "know"
    assert parse_vcd("Absolutely", "no") == "yes"
    with pytest.raises(ValueError):
        parse_vcd("yes", None)


@pytest.mark.parametrize("text,want", [("yes", "yes"), (" No \n", "no"), ("Yes.", "unknown"), ("maybe", "unknown")])
def test_parse_strict(text, want):
    assert parse_strict(text) == want


@pytest.mark.parametrize("text,want", [("Yes.", "yes"), ("no!", "no"), ("Yes and no", "unknown"),
                                       ("Nope", "unknown"), ("Yes, it's there", "yes"), ("", "unknown")])
def test_parse_vlmevalkit(text, want):
    assert parse_vlmevalkit(text) == want


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
