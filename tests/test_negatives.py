"""LRV-style instruction data (halluc negatives): negatives never ask about what is there, every
manipulated claim contradicts the annotation (and the answer states the truth), the ratio holds,
bad annotations are reported and skipped, and world records stay in the builtin vocabulary."""
import json
import re
from collections import Counter

import pytest
from PIL import Image

from halluc.negatives import (FAMILIES, NegConfig, box_relation, check_world_vocabulary, generate, load_coco,
                              load_vg, load_world, main, parse_weights)
from halluc.world.generate import generate as generate_split
from halluc.world.language import NUMBERS, PLURAL
from halluc.world.scene import WorldConfig, relation_holds

CELL = WorldConfig().cell


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small training split: hidden partners included (named by captions, not drawn)."""
    d = tmp_path_factory.mktemp("world") / "train"
    generate_split(d, "train", 60, seed=3)
    scenes = {}
    for line in (d / "scenes.jsonl").open():
        r = json.loads(line)
        scenes[r["image_id"]] = r
    return d, scenes


def visible(scene):
    return [o for o in scene["objects"] if o.get("visible", True)]


def check_claim(rec, scene):
    """Does the record's claim agree with the annotation (positives) / contradict it (negatives)?
    Independent of the generator: read straight from scenes.jsonl."""
    vis = visible(scene)
    classes = Counter(o["cls"] for o in vis)
    c = rec["claim"]
    neg = rec["polarity"] == "negative"
    if c["kind"] == "existence":
        assert (c["object"] in classes) is not neg, rec
        assert rec["answer"] == ("no" if neg else "yes") or "there is no" in rec["answer"]
    elif c["kind"] == "attribute":
        inst = [o for o in vis if o["cls"] == c["object"]]
        assert len(inst) == 1, rec                        # "the X" names one object
        truth = inst[0][c["attribute"]]
        assert truth == c["truth"] and (truth != c["claimed"]) is neg, rec
        if neg:
            assert f" {truth} " in f" {rec['answer']} ", rec      # the correction
    elif c["kind"] == "count":
        assert classes[c["object"]] == c["truth"] and (c["claimed"] != c["truth"]) is neg, rec
        if neg:
            truth_words = {NUMBERS[c["truth"]], PLURAL[c["object"]]} if c["truth"] > 1 else {"one", c["object"]}
            assert truth_words <= set(rec["answer"].split()), rec
    elif c["kind"] == "relation":
        a = [o for o in vis if o["cls"] == c["object"]]
        b = [o for o in vis if o["cls"] == c["other"]]
        assert len(a) == 1 and len(b) == 1, rec
        assert relation_holds(c["truth"], a[0]["box"], b[0]["box"], CELL), rec
        assert relation_holds(c["claimed"], a[0]["box"], b[0]["box"], CELL) is not neg, rec
        if neg:
            assert f"is {c['truth']} the {c['other']}" in rec["answer"], rec
    elif c["kind"] == "description":
        assert rec["polarity"] == "positive"
    else:
        raise AssertionError(f"unexpected claim kind {c['kind']}")


def test_negatives_never_ask_about_present_objects_and_contradict_the_annotation(world):
    d, scenes = world
    recs, summary = generate(load_world(d), NegConfig(neg_ratio=0.6, per_image=5, seed=1))
    negs = [r for r in recs if r["polarity"] == "negative"]
    assert {r["family"] for r in negs} == set(FAMILIES)
    assert {r["claim"]["kind"] for r in negs} >= {"existence", "attribute", "count", "relation"}
    for r in recs:
        check_claim(r, scenes[r["image_id"]])
        if r["polarity"] == "negative" and r["claim"]["kind"] == "existence":
            assert r["claim"]["object"] not in {o["cls"] for o in visible(scenes[r["image_id"]])}


def test_hidden_partners_are_absent_and_adversarial_negatives_use_the_planted_pairs(world):
    d, scenes = world
    recs, _ = generate(load_world(d), NegConfig(neg_ratio=1.0, caption_share=0.0, per_image=4, seed=0,
                                                families=(("nonexistent", 1.0),), sampling=(("adversarial", 1.0),)))
    partner = dict(WorldConfig().pairs)
    planted = 0
    recs = [r for r in recs if r["polarity"] == "negative"]     # an image out of fresh candidates gives positives
    assert len(recs) > 100
    for r in recs:
        vis = {o["cls"] for o in visible(scenes[r["image_id"]])}
        assert r["claim"]["object"] not in vis and r["answer"] == "no"
        planted += any(partner.get(t) == r["claim"]["object"] for t in vis)
    hidden = [s for s in scenes.values() if any(not o["visible"] for o in s["objects"])]
    assert hidden, "the fixture should hide some partners"
    for s in hidden:        # the hidden partner is named by the caption but asked about as absent
        asked = {r["claim"]["object"] for r in recs if r["image_id"] == s["image_id"]}
        assert {o["cls"] for o in s["objects"] if not o["visible"]} <= asked
    assert planted > 0


@pytest.mark.parametrize("ratio,caps,per_image", [(0.0, 0.25, 4), (0.3, 0.2, 3), (0.5, 0.25, 4), (0.85, 0.1, 5)])
def test_ratio_holds(world, ratio, caps, per_image):
    d, _ = world
    recs, summary = generate(load_world(d), NegConfig(neg_ratio=ratio, caption_share=caps, per_image=per_image))
    total = 60 * per_image
    assert len(recs) == total
    assert sum(r["polarity"] == "negative" for r in recs) == round(ratio * total)
    assert sum(r["family"] == "description" for r in recs) == round(caps * total)
    assert summary["unfilled_negatives"] == 0


def test_families_and_sampling_are_parameters(world):
    d, _ = world
    src = load_world(d)
    recs, _ = generate(src, NegConfig(neg_ratio=0.5, families=(("existent", 1.0),)))
    assert {r["family"] for r in recs if r["polarity"] == "negative"} == {"existent"}
    recs, s = generate(src, NegConfig(neg_ratio=0.5, families=parse_weights("nonexistent=2,knowledge=1,existent=1",
                                                                             FAMILIES, "families")))
    fam = Counter(r["family"] for r in recs if r["polarity"] == "negative")
    assert fam["nonexistent"] == pytest.approx(fam["knowledge"] + fam["existent"], abs=2 + sum(s["family_fallbacks"].values()))
    recs, _ = generate(src, NegConfig(neg_ratio=0.5, families=(("nonexistent", 1.0),), sampling=(("popular", 1.0),)))
    assert {r["subtype"] for r in recs if r["polarity"] == "negative"} == {"popular"}
    with pytest.raises(ValueError, match="valid: nonexistent, existent, knowledge"):
        parse_weights("nonexistent,bogus", FAMILIES, "families")
    with pytest.raises(ValueError, match="summing to at most 1"):
        NegConfig(neg_ratio=0.9, caption_share=0.2)


def test_seeded_and_in_the_world_vocabulary_with_trl_messages(world):
    d, _ = world
    src = load_world(d)
    a, _ = generate(src, NegConfig(seed=5))
    b, _ = generate(src, NegConfig(seed=5))
    c, _ = generate(src, NegConfig(seed=6))
    assert a == b and a != c
    for r in a:
        check_world_vocabulary(r)
        assert {"image_id", "question", "answer", "task"} <= set(r)
        assert r["messages"][0]["role"] == "user" and r["messages"][0]["content"][0] == {"type": "image"}
        assert r["messages"][0]["content"][1]["text"] == r["question"]
        assert r["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": r["answer"]}]}
        assert r["images"] == [r["image"]]
    pope = [r for r in a if re.fullmatch(r"is there an? [a-z]+ in the image \?", r["question"])]
    assert pope and {r["answer"] for r in pope} == {"yes", "no"}       # POPE's form, strict-parser answers
    descs = [r for r in a if r["task"] == "description"]
    assert descs and all(r["question"] == "describe the image ." for r in descs)


def test_malformed_world_annotations_are_reported_skipped_and_counted(world, tmp_path, capsys):
    d, scenes = world
    lines = (d / "scenes.jsonl").read_text().splitlines()[:6]
    bad_cls = json.loads(lines[1]); bad_cls["objects"][0]["cls"] = "unicorn"
    missing = json.loads(lines[2]); missing["image"] = "images/nope.png"
    bad_box = json.loads(lines[3]); bad_box["objects"][0]["box"] = [5, 5, 1]
    rows = [lines[0], json.dumps(bad_cls), json.dumps(missing), json.dumps(bad_box), "{not json", lines[4]]
    (tmp_path / "images").symlink_to(d / "images")
    (tmp_path / "scenes.jsonl").write_text("\n".join(rows) + "\n")
    src = load_world(tmp_path)
    assert len(src.annotations) == 2 and len(src.bad) == 4
    msgs = [str(b) for b in src.bad]
    assert all(str(tmp_path / "scenes.jsonl") in m for m in msgs)
    assert any("line 2" in m and "unicorn" in m for m in msgs)
    assert any("line 3" in m and "image not found" in m for m in msgs)
    assert any("line 4" in m and "box" in m for m in msgs)
    assert any("line 5" in m and "malformed JSON" in m for m in msgs)
    out = tmp_path / "out" / "lrv.jsonl"
    assert main(["negatives", "--world", str(tmp_path), "--out", str(out)]) == 0
    man = json.loads((out.parent / "run.json").read_text())
    assert man["summary"]["skipped_annotations"] == 4 and man["summary"]["images"] == 2
    assert "4 annotation(s) skipped" in capsys.readouterr().err
    assert main(["negatives", "--world", str(tmp_path), "--out", str(out), "--strict"]) == 2
    assert main(["negatives", "--world", str(tmp_path), "--out", str(out)]) == 0          # up to date
    assert "up to date" in capsys.readouterr().err


def test_coco_source_with_cooccurrence_and_bad_records(world, tmp_path):
    d, _ = world
    inst = json.loads((d / "instances_train.json").read_text())
    caps = json.loads((d / "captions_train.json").read_text())
    inst["annotations"][0]["bbox"] = [1, 2, -3, 4]                      # malformed: its image is dropped
    broken_img = inst["annotations"][0]["image_id"]
    inst["images"].append({"id": 999999, "file_name": "images/missing.png"})
    inst["annotations"].append({"id": 10 ** 6, "image_id": 999999, "category_id": 1, "bbox": [0, 0, 5, 5]})
    (tmp_path / "inst.json").write_text(json.dumps(inst))
    (tmp_path / "caps.json").write_text(json.dumps(caps))
    src = load_coco(tmp_path / "inst.json", tmp_path / "caps.json", images=d, echo=False)
    msgs = [str(b) for b in src.bad]
    assert any("annotations[0]" in m and "bbox" in m for m in msgs)
    assert any("image dropped" in m for m in msgs) and any("missing.png" in m for m in msgs)
    assert all(a.image_id not in (broken_img, 999999) for a in src.annotations)
    truth = {}
    cats = {c["id"]: c["name"] for c in inst["categories"]}
    for a in inst["annotations"]:
        truth.setdefault(a["image_id"], Counter())[cats[a["category_id"]]] += 1
    recs, summary = generate(src, NegConfig(neg_ratio=0.5, per_image=4))
    assert summary["negatives"] == len(recs) // 2
    for r in recs:
        c = r["claim"]
        present = truth[r["image_id"]]
        if c["kind"] == "existence":
            assert (c["object"] in present) is (r["polarity"] == "positive"), r
            assert r["answer"].startswith("Yes") or "no " + c["object"] in r["answer"]
        elif c["kind"] == "count":
            assert present[c["object"]] == c["truth"] and (c["claimed"] != c["truth"]) is (r["polarity"] == "negative")
    assert any(r["task"] == "description" and r["answer"] in caps_by_id(caps)[r["image_id"]] for r in recs)


def caps_by_id(caps):
    out = {}
    for a in caps["annotations"]:
        out.setdefault(a["image_id"], []).append(a["caption"])
    return out


def _coco(tmp_path, images, anns, cats=("cat", "dog", "car", "bus")):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    return {"images": [{"id": i, "file_name": "x.png"} for i in images],
            "categories": [{"id": k + 1, "name": c, "supercategory": "animal" if c in ("cat", "dog") else "vehicle"}
                           for k, c in enumerate(cats)],
            "annotations": [{"id": k, "image_id": i, "category_id": cats.index(c) + 1, "bbox": list(b)}
                            for k, (i, c, b) in enumerate(anns)]}


def test_coco_adversarial_absent_objects_come_from_counted_cooccurrence(tmp_path):
    # cats co-occur with dogs in 5 images; image 9 has a cat and a car and no dog
    anns = [(i, c, (10 * k, 0, 5, 5)) for i in range(5) for k, c in enumerate(("cat", "dog"))]
    anns += [(5, "bus", (0, 0, 5, 5)), (9, "cat", (0, 0, 5, 5)), (9, "car", (20, 0, 5, 5))]
    (tmp_path / "i.json").write_text(json.dumps(_coco(tmp_path, [0, 1, 2, 3, 4, 5, 9], anns)))
    src = load_coco(tmp_path / "i.json", echo=False)
    recs, _ = generate(src, NegConfig(neg_ratio=1.0, caption_share=0.0, per_image=1,
                                      families=(("nonexistent", 1.0),), sampling=(("adversarial", 1.0),)))
    by = {r["image_id"]: r for r in recs}
    assert by[9]["claim"]["object"] == "dog" and by[9]["answer"] == "No, there is no dog in the image."
    # box relations: the cat (x 0-5) is left of the car (x 20-25); a manipulated relation says right of
    recs, _ = generate(src, NegConfig(neg_ratio=1.0, caption_share=0.0, per_image=6, seed=2,
                                      families=(("existent", 1.0), ("knowledge", 1.0))))
    rel = [r for r in recs if r["image_id"] == 9 and r["claim"]["kind"] == "relation"]
    assert rel and all(r["claim"]["claimed"] == ("right of" if r["claim"]["object"] == "cat" else "left of") for r in rel)
    cat = [r for r in recs if r["claim"]["kind"] == "category"]
    assert cat and all(r["claim"]["claimed"] != r["claim"]["truth"] for r in cat)
    assert box_relation((0, 0, 5, 5), (3, 0, 8, 5)) is None              # overlapping: no claim


def test_visual_genome_like_source(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "1.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "2.jpg")
    vg = [{"image_id": 1, "objects": [{"object_id": 10, "names": ["cup"], "attributes": ["red"], "x": 0, "y": 0, "w": 5, "h": 5},
                                      {"object_id": 11, "names": ["table"], "attributes": ["brown", "large"], "x": 0, "y": 6, "w": 9, "h": 3}],
           "relationships": [{"subject_id": 10, "predicate": "on", "object_id": 11}]},
          {"image_id": 2, "objects": [{"object_id": 20, "name": "dog", "x": 0, "y": 0, "w": 5, "h": 5}], "relationships": []},
          {"image_id": 3, "objects": [{"object_id": 30, "names": ["cat"]}]},                      # image missing
          {"image_id": 4, "objects": [{"object_id": 40}]}]                                         # no name
    (tmp_path / "vg.json").write_text(json.dumps(vg))
    src = load_vg(tmp_path / "vg.json", echo=False)
    assert [a.image_id for a in src.annotations] == [1, 2] and len(src.bad) == 2
    assert any("[2] (image_id 3)" in str(b) and "image not found" in str(b) for b in src.bad)
    recs, _ = generate(src, NegConfig(neg_ratio=1.0, caption_share=0.0, per_image=8, seed=0,
                                      families=(("existent", 1.0), ("knowledge", 1.0))))
    for r in recs:
        c = r["claim"]
        if c["kind"] == "relation":
            assert (c["object"], c["claimed"], c["other"]) == ("cup", "under", "table") and c["truth"] == "on"
        if c["kind"] == "attribute" and c["attribute"] == "colour":
            assert c["truth"] == {"cup": "red", "table": "brown"}[c["object"]] != c["claimed"]
        if c["kind"] == "existence":
            assert c["object"] not in {"cup", "table"} or r["image_id"] == 2
