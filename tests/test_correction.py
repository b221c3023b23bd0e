"""Post-hoc correction (DESIGN.md §6): claims from hand-written world and COCO-style captions,
verdicts from a fake detector, hand-checked rewrites, a world caption corrected end to end against
its exact ground truth, bad input, edits that replay onto the original text, and ``halluc correct``.

The detector is a fake defined here (boxes from a hand-built world scene or a hand-written table),
so nothing depends on the real backends in ``detectors/``.
"""
import json

import pytest

from correction.claims import SEVERAL, extract
from correction.domain import Domain
from correction.pipeline import MAX_CHARS, Corrector, Job
from halluc.world.domain import domain as world_domain_of
from halluc.world.domain import world_domain
from correction.rewrite import rewrite
from correction.verify import needed_phrases, verify
from detectors.base import Detection
from halluc.world.metrics import score_caption
from halluc.world.scene import Obj, Scene, WorldConfig, render

WORLD = world_domain_of(config=WorldConfig())
COCO = Domain.coco()


class FakeDetector:
    """Boxes from a table {image_id: [(label, box or None)]}; ``keyed_by`` as the real backends say it."""
    name = "fake"

    def __init__(self, table, keyed_by="image", fail_on=(), closed=True):
        self.table, self.keyed_by, self.fail_on, self.calls = table, keyed_by, set(fail_on), []
        if closed:                  # closed-vocabulary backends carry a synonym table: no open phrases asked
            self.labels = "synonyms"

    def detect(self, image, phrases, *, image_id=None):
        if image_id in self.fail_on:
            raise RuntimeError("backend exploded")
        self.calls.append((image_id, list(phrases)))
        return [Detection(p, None if box is None else tuple(box), 0.9, lab)
                for lab, box in self.table.get(image_id, []) for p in phrases if p == lab]

    def fingerprint(self):
        return {"backend": "fake"}


def scene(*objs) -> Scene:
    return Scene("t", [Obj(c, col, size, list(box)) for c, col, size, box in objs])


def table_of(sc: Scene, image_id=1) -> dict:
    return {image_id: [(o.cls, o.box) for o in sc.objects]}


def correct(text: str, dom: Domain, dets: list, image=None, **kw) -> tuple[str, list, object]:
    cap = extract([text], [dom])[0]
    verify(cap, [d for d in dets if d.phrase in needed_phrases(cap)], image=image)
    new, edits, _ = rewrite(cap, image_size=image.size if image else None, **kw)
    assert replay(text, edits) == new
    return new, edits, cap


def replay(text: str, edits: list[dict]) -> str:
    """Apply edits right to left; each one's ``old`` must be exactly the original text at its span."""
    out = text
    for e in sorted(edits, key=lambda e: e["span"][0], reverse=True):
        s, t = e["span"]
        assert text[s:t] == e["old"] and e["op"] in ("remove", "replace", "insert")
        out = out[:s] + e["new"] + out[t:]
    return out


def boxes(sc: Scene) -> list:
    return [Detection(o.cls, tuple(o.box), 0.9, o.cls) for o in sc.objects]


# ---------------------------------------------------------------- claims

def by_kind(cap, kind):
    return [(c.objects, c.value, cap.text[c.span[0]:c.span[1]]) for c in cap.claims if c.kind == kind]


def test_world_caption_claims():
    cap = extract(["a large red star , a small blue moon and two small green circles . the star is left of the moon ."],
                  [WORLD])[0]
    assert by_kind(cap, "existence") == [(["star"], True, "star"), (["moon"], True, "moon"),
                                         (["circle"], True, "circles"), (["star"], True, "star"), (["moon"], True, "moon")]
    # world captions group identical objects: "a" claims exactly one; "the star" refers back and claims none
    assert by_kind(cap, "count") == [(["star"], 1, "a"), (["moon"], 1, "a"), (["circle"], 2, "two")]
    assert [(o, v, c.attribute) for c, (o, v, _) in zip([c for c in cap.claims if c.kind == "attribute"],
                                                           by_kind(cap, "attribute"))] == [
        (["star"], "large", "size"), (["star"], "red", "colour"), (["moon"], "small", "size"),
        (["moon"], "blue", "colour"), (["circle"], "small", "size"), (["circle"], "green", "colour")]
    assert by_kind(cap, "relation") == [(["star", "moon"], "left of", "left of")]
    assert [c.sentence for c in cap.claims if c.kind == "relation"] == [1]
    assert [[cap.doc[s:e].text for s, e in items] for items in cap.lists] == [
        ["a large red star", "a small blue moon", "two small green circles"]]


def test_coco_caption_claims_negation_counts_relations():
    text = ("There are two dogs and a red car on the grass. There is no cat. A man without a dog sits next to "
            "a pair of skis. Several cups are on the table.")
    cap = extract([text], [COCO])[0]
    names = [c.objects[0] for c in cap.claims if c.kind == "existence"]
    assert names == ["dog", "car", "person", "skis", "cup", "dining table"]       # no cat, no dog "without"
    assert [m.negated for m in cap.mentions if m.name in ("cat", "dog")] == [False, True, True]
    assert by_kind(cap, "count") == [(["dog"], 2, "two"), (["skis"], 2, "a pair of"), (["cup"], SEVERAL, "Several")]
    assert by_kind(cap, "attribute") == [(["car"], "red", "red")]
    assert by_kind(cap, "relation") == [(["person", "skis"], "next to", "next to"), (["cup", "dining table"], "on", "on")]
    for c in cap.claims:                       # spans are the caption's own characters
        assert 0 <= c.span[0] < c.span[1] <= len(text)


def test_every_chair_word_is_a_claim(shared):
    """Objects come from CHAIR's own matcher: its words are exactly the mentions, in order."""
    recs = [json.loads(x) for x in (shared / "reference-outputs/shield_llava15_chair.jsonl").open()][:60]
    texts = [r["caption"] for r in recs]
    caps = extract(texts, [COCO] * len(texts))
    for cap, cw in zip(caps, COCO.chair.caption_words(texts)):
        assert [m.name for m in cap.mentions] == cw.objects
        assert all(cap.text[m.span[0]:m.span[1]].lower() for m in cap.mentions)
        claimed = {tuple(c.span) for c in cap.claims if c.kind == "existence"}
        assert all(m.span in claimed for m in cap.mentions if not m.negated)


# ---------------------------------------------------------------- verify

def test_verify_with_fake_detector_boxes_and_without():
    text = "There are two cups on the table. A dog is under the table."
    table, cup1, cup2 = (0, 60, 100, 100), (10, 40, 30, 62), (60, 40, 80, 62)
    cap = extract([text], [COCO])[0]
    verify(cap, [Detection("cup", cup1, .9), Detection("cup", cup2, .8), Detection("dining table", table, .9)])
    got = {(c.kind, tuple(c.objects)): (c.verdict, c.observed) for c in cap.claims}
    assert got[("count", ("cup",))] == ("supported", 2)
    assert got[("relation", ("cup", "dining table"))][0] == "supported"
    assert got[("existence", ("dog",))] == ("contradicted", None)
    assert got[("relation", ("dog", "dining table"))][0] == "contradicted"      # no dog: nothing under the table

    cap = extract([text], [COCO])[0]
    verify(cap, [Detection("cup", cup1, .9), Detection("dining table", table, .9)])
    count = next(c for c in cap.claims if c.kind == "count")
    assert (count.verdict, count.observed, len(count.boxes)) == ("contradicted", 1, 1)

    # an oracle without boxes decides existence only
    cap = extract([text], [COCO])[0]
    verify(cap, [Detection("cup", None, 1.0), Detection("dining table", None, 1.0), Detection("dog", None, 1.0)])
    assert {c.kind: c.verdict for c in cap.claims if c.kind != "existence"} == {
        "count": "unverifiable", "relation": "unverifiable"}
    assert all(c.verdict == "supported" for c in cap.claims if c.kind == "existence")


# ---------------------------------------------------------------- rewrite, checked by hand

STAR = ("star", "red", "large", (2, 2, 15, 15))
MOON = ("moon", "blue", "small", (20, 4, 28, 12))
CIRCLES = [("circle", "green", "small", (34, 2, 42, 10)), ("circle", "green", "small", (50, 2, 58, 10))]
LIST = "a large red star , a small blue moon and two small green circles ."


@pytest.mark.parametrize("present,expected", [
    ([STAR, *CIRCLES], "a large red star and two small green circles ."),           # middle item
    ([STAR, MOON], "a large red star and a small blue moon ."),                    # last item
    ([MOON, *CIRCLES], "a small blue moon and two small green circles ."),          # first item
    ([MOON], "a small blue moon ."),
])
def test_list_items_removed_with_their_punctuation(present, expected):
    sc = scene(*present)
    assert correct(LIST, WORLD, boxes(sc), render(sc, WorldConfig()))[0] == expected


def test_relation_sentence_about_a_removed_object_disappears():
    sc = scene(STAR, *CIRCLES)
    new, edits, _ = correct(LIST + " the star is left of the moon .", WORLD, boxes(sc), render(sc, WorldConfig()))
    assert new == "a large red star and two small green circles ."
    assert {e["reason"] for e in edits} == {"no moon detected"}
    sc = scene(MOON, *CIRCLES)                                    # the only item of a sentence: the sentence goes
    new, _, _ = correct("a large red star . a small blue moon and two small green circles . the star is left of "
                        "the moon .", WORLD, boxes(sc), render(sc, WorldConfig()))
    assert new == "a small blue moon and two small green circles ."


def test_count_colour_size_and_article_fixes():
    cfg = WorldConfig()
    one = scene(("star", "blue", "small", (2, 2, 10, 10)))
    assert correct("two large red stars .", WORLD, boxes(one), render(one, cfg))[0] == "a small blue star ."
    three = scene(*[("star", "red", "large", (x, 2, x + 13, 15)) for x in (2, 18, 34)])
    assert correct("a large red star .", WORLD, boxes(three), render(three, cfg))[0] == "three large red stars ."
    arrow = scene(("arrow", "orange", "large", (2, 2, 15, 15)))
    new, edits, _ = correct("a red arrow .", WORLD, boxes(arrow), render(arrow, cfg))
    assert new == "an orange arrow ." and {e["reason"] for e in edits} == {"colour: red claimed, orange seen"}
    # no attribute evidence (no image): the count alone is fixed
    assert correct("two stars .", WORLD, boxes(one))[0] == "a star ."


def test_coco_style_rewrites():
    dog, couch, table = (10, 40, 50, 80), (0, 50, 100, 100), (0, 60, 100, 100)
    new, _, _ = correct("A cat and a dog are sitting on the couch.", COCO,
                        [Detection("dog", dog, .9), Detection("couch", couch, .9)])
    assert new == "A dog is sitting on the couch."
    new, _, _ = correct("There are two dogs on the grass.", COCO, [Detection("dog", dog, .9)])
    assert new == "There is a dog on the grass."
    new, _, _ = correct("A man holds a pair of skis.", COCO, [Detection("person", dog, .9), Detection("skis", dog, .9)])
    assert new == "A man holds a ski."
    new, _, _ = correct("On the table, there is a cup. The dog sleeps.", COCO, [Detection("cup", dog, .9),
                                                                              Detection("dog", table, .9)])
    assert new == "There is a cup. The dog sleeps."
    new, edits, _ = correct("A dog sleeps. There is a cat on the sofa, and a bowl is nearby.", COCO,
                            [Detection("dog", dog, .9), Detection("bowl", dog, .9)])
    assert new == "A dog sleeps." and sum(e["op"] == "remove" for e in edits) == 1


def test_open_vocabulary_phrases_and_english_relations():
    """An open-vocabulary detector is also asked about noun chunks outside the table ("grass")."""
    det = FakeDetector({1: [("dog", (0, 40, 20, 60)), ("frisbee", (60, 40, 70, 50))]}, keyed_by="image_id",
                       closed=False)
    corr = Corrector(det)
    out = corr.correct([Job({"id": "a"}, "A dog lies on the green grass next to a frisbee.", COCO, image_id=1)])[0]
    assert corr.open_vocab and det.calls == [(1, ["dog", "grass", "frisbee"])]
    assert out["corrected_text"] == "A dog lies to the left of a frisbee."


def test_grounding_appends_normalised_boxes():
    sc = scene(STAR)
    new, edits, _ = correct("a large red star .", WORLD, boxes(sc), render(sc, WorldConfig()), grounding=True)
    assert new == "a large red star([0.03, 0.03, 0.23, 0.23]) ."
    assert edits[0]["op"] == "insert" and edits[0]["span"] == [16, 16]


# ---------------------------------------------------------------- end to end on a world scene

def test_world_caption_end_to_end(tmp_path):
    """A model-like caption with a hallucinated partner, a wrong colour, a wrong count and a wrong
    relation, corrected by hand and checked against the scene's exact ground truth."""
    sc = scene(("star", "blue", "large", (2, 2, 15, 15)), ("ring", "yellow", "small", (20, 22, 28, 30)),
               ("ring", "yellow", "small", (36, 38, 44, 46)), ("arrow", "orange", "large", (2, 50, 15, 63)))
    (tmp_path / "images").mkdir()
    img = tmp_path / "images" / "t.png"
    render(sc, WorldConfig()).save(img)
    text = ("a large red star , a small blue moon , a small yellow ring and a large orange arrow . "
            "the star is above the arrow . the arrow is left of the star .")
    rec = {"id": "world-test/7", "image_id": 7, "image": str(img), "text": text}
    det = FakeDetector(table_of(sc, 7))
    out = Corrector(det).correct([Job(rec, text, world_domain(None), image_path=str(img), image_id=7)])[0]
    assert out["corrected_text"] == ("a large blue star , two small yellow rings and a large orange arrow . "
                                     "the star is above the arrow . the arrow is below the star .")
    assert replay(text, out["edits"]) == out["corrected_text"]
    assert det.calls == [(7, ["star", "moon", "ring", "arrow"])]            # one call, every phrase once
    truth = {"objects": [{"cls": o.cls, "colour": o.colour, "size": o.size, "box": o.box} for o in sc.objects]}
    before, after = score_caption(text, truth), score_caption(out["corrected_text"], truth)
    assert before["hallucinated"] == ["moon"] and before["attr"][1] and before["rel"][1] and before["count"][1]
    assert after["hallucinated"] == [] and after["attr"][1] == after["rel"][1] == after["count"][1] == 0
    verdicts = {(c["kind"], c["text"]): c["verdict"] for c in out["claims"]}
    assert verdicts[("existence", "moon")] == "contradicted" and verdicts[("relation", "above")] == "supported"
    ev = out["evidence"]
    assert ev["detector"] == "fake" and ev["image_size"] == [64, 64] and ev["boxes"]["ring"][1]["box"] == [36, 38, 44, 46]


# ---------------------------------------------------------------- bad input

def test_bad_input_keeps_records_and_goes_on(tmp_path):
    sc = scene(STAR)
    good = tmp_path / "good.png"
    render(sc, WorldConfig()).save(good)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png at all")
    det = FakeDetector({i: [("star", STAR[3]), ("dog", (0, 0, 9, 9))] for i in range(10)}, fail_on={6})
    long_text = "A dog sleeps. " * (MAX_CHARS // 14 + 50)
    cases = [(0, "a large red star .", str(tmp_path / "missing.png")), (1, "a large red star .", str(corrupt)),
             (2, "   ", str(good)), (3, "a nice view of the sky .", str(good)),
             (4, "Un chat noir est assis sur le canapé à côté du chien.", str(good)), (5, "一只猫坐在沙发上。", str(good)),
             (6, "a large red star .", str(good)), (7, long_text, str(good)), (8, "two large red stars .", str(good))]
    jobs = [Job({"id": f"x/{i}", "text": t}, t, COCO if i == 7 else WORLD, image_path=p, image_id=i) for i, t, p in cases]
    out = {int(r["id"].split("/")[1]): r for r in Corrector(det).correct(jobs)}
    assert "image not found" in out[0]["error"] and "cannot read image" in out[1]["error"]
    for i in (0, 1):
        assert out[i]["corrected_text"] == "a large red star ." and out[i]["edits"] == []
        assert out[i]["claims"] and all(c["verdict"] == "unverifiable" for c in out[i]["claims"])
    assert out[2]["error"] == "empty caption" and out[2]["claims"] == []
    assert "error" not in out[3] and out[3]["claims"] == [] and out[3]["corrected_text"] == "a nice view of the sky ."
    assert "not English" in out[4]["error"] and "not English" in out[5]["error"]
    assert "detector failed" in out[6]["error"] and out[6]["corrected_text"] == "a large red star ."
    cut = out[7]["truncated_at"]
    assert cut <= MAX_CHARS and long_text[:cut].endswith(".") and out[7]["corrected_text"] == long_text
    tail = [c for c in out[7]["claims"] if c["span"][0] >= cut]
    assert tail and all(c["verdict"] == "unverifiable" and "limit" in c["reason"] for c in tail)
    assert out[8]["corrected_text"] == "a large red star ." and "error" not in out[8]   # the batch went on


def test_oracle_without_pixels_needs_no_image():
    det = FakeDetector({5: [("dog", None)]}, keyed_by="image_id")
    text = "A dog and a cat sleep on a red couch."
    out = Corrector(det).correct([Job({"id": "x"}, text, COCO, image_id=5)])[0]
    assert "error" not in out and out["corrected_text"] == "A dog sleeps."
    assert out["evidence"]["boxes"] == {"dog": [{"box": None, "score": 0.9, "label": "dog"}]}


# ---------------------------------------------------------------- the command

def test_halluc_correct_command(tmp_path, monkeypatch, capsys):
    import detectors
    from halluc.commands.correct import main
    sc = scene(STAR, *CIRCLES)
    (tmp_path / "images").mkdir()
    render(sc, WorldConfig()).save(tmp_path / "images" / "a.png")
    recs = [{"id": "world-bias/1", "image_id": 1, "image": str(tmp_path / "images" / "a.png"), "text": LIST},
            {"id": "world-bias/2", "image_id": 2, "image": str(tmp_path / "images" / "gone.png"), "text": LIST}]
    src = tmp_path / "captions.jsonl"
    src.write_text(json.dumps(recs[0]) + "\n{not json\n" + json.dumps(recs[1]) + "\n")
    asked = []

    def fake_load(spec, cache=False, **options):
        asked.append((spec, cache))
        return FakeDetector(table_of(sc, 1))
    monkeypatch.setattr(detectors, "load", fake_load)
    assert main([str(src), "--no-progress", "--no-cache"]) == 0
    assert asked == [("world-yolo", False)]                       # world records: the world detector by default
    out = tmp_path / "captions.corrected" / "corrected.jsonl"
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in got] == ["world-bias/1", "world-bias/2"]
    assert got[0]["corrected_text"] == "a large red star and two small green circles ." and "error" not in got[0]
    assert "image not found" in got[1]["error"] and got[1]["corrected_text"] == LIST
    err = capsys.readouterr().err
    assert "captions.jsonl:2" in err and "2 corrected, 0 already done, 1 bad lines skipped, 1 with errors" in err
    assert "1 sentences removed" not in err and "0 sentences removed" in err
    man = json.loads((out.parent / "run.json").read_text())
    assert man["command"] == "correct" and man["summary"]["contradicted"] >= 4 and man["parser"]["module"]
    assert main([str(src), "--no-progress"]) == 0                 # resume: nothing left to do
    assert "0 corrected, 2 already done" in capsys.readouterr().err
    coco = tmp_path / "coco.jsonl"
    coco.write_text(json.dumps({"image_id": 9, "caption": "A dog."}) + "\n")
    assert main([str(coco), "--no-progress"]) == 2                # not world: --detector is required
    assert "need --detector" in capsys.readouterr().err


def test_corrupt_image_after_ultralytics_import_is_a_plain_error(tmp_path):
    # ultralytics patches PIL.Image.open on import (a pip install on unreadable files); the readers
    # must still report a corrupt image as bad input, not crash the batch.
    import ultralytics  # noqa: F401  (the import is the point)
    from correction.pipeline import open_image
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="corrupt"):
        open_image(str(bad))
