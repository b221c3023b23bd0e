"""LRV-style instruction data (halluc negatives): negatives never ask about what is there, every
manipulated claim contradicts the annotation (and the answer states the truth), the ratio holds,
bad annotations are reported and skipped, and world records stay in the builtin vocabulary."""
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import run_command
from PIL import Image

from halluc.cli import main
from halluc.geometry import relation_holds
from halluc.geometry import separated_relation as box_relation
from halluc.pipelines.negatives import FAMILIES, NegConfig, generate, load_coco, load_vg, parse_weights
from halluc.world.generate import generate as generate_split
from halluc.world.language import NUMBERS, PLURAL
from halluc.world.lrv import check_world_vocabulary, load_world
from halluc.world.scene import WorldConfig

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


# ---------------------------------------------------------------- bad input (generated here, nothing committed)

BAD_IMAGES = {"text": "corrupt or not an image", "truncated": "corrupt or not an image",
              "directory": "is a directory", "fifo": "not a regular file", "oversized": "over the cap"}


def make_bad_image(kind, path, monkeypatch):
    """``path`` as a bad image of this kind; good images in these tests are 8x8 (64 px)."""
    if kind == "text":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")                  # /etc/passwd named x.png
    elif kind == "truncated":
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        Image.new("RGB", (20, 20)).save(path)                                   # 400 px, over a cap of 100
        monkeypatch.setenv("HALLUC_MAX_IMAGE_PIXELS", "100")


def run_cli(argv, capsys):
    return run_command(["negatives", *argv], capsys)


@pytest.mark.parametrize("kind", BAD_IMAGES)
def test_a_bad_image_is_reported_skipped_with_its_annotations_and_counted(tmp_path, monkeypatch, capsys, no_hang, kind):
    anns = [(i, c, (10 * k, 0, 5, 5)) for i in (1, 2, 3) for k, c in enumerate(("cat", "dog"))]
    coco = _coco(tmp_path, [1, 2, 3], anns)
    coco["images"][1]["file_name"] = "bad.png"
    make_bad_image(kind, tmp_path / "bad.png", monkeypatch)
    (tmp_path / "i.json").write_text(json.dumps(coco))
    out = tmp_path / "out" / "lrv.jsonl"
    rc, err = run_cli(["--coco-instances", tmp_path / "i.json", "--out", out, "--per-image", "3"], capsys)
    assert rc == 0, err
    line = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(line) == 1 and line[0].startswith(f"error: {tmp_path / 'i.json'}: images[1] (id 2): ")
    assert "bad.png" in line[0] and BAD_IMAGES[kind] in line[0]
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["image_id"] for r in recs} == {1, 3}                             # image 2 and its objects dropped
    man = json.loads((out.parent / "run.json").read_text())
    assert man["summary"]["skipped_annotations"] == 1 and man["summary"]["images"] == 2
    assert "bad.png" in man["summary"]["skipped"][0]


def test_world_and_visual_genome_sources_verify_their_images_too(world, tmp_path, no_hang):
    d, _ = world
    lines = (d / "scenes.jsonl").read_text().splitlines()[:3]
    rows = [json.loads(x) for x in lines]
    for r in rows:
        r["image"] = str(d / r["image"])
    rows[1]["image"] = "passwd.png"
    (tmp_path / "passwd.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "scenes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = load_world(tmp_path, echo=False)
    assert [a.image_id for a in src.annotations] == [rows[0]["image_id"], rows[2]["image_id"]]
    assert len(src.bad) == 1 and "line 2" in str(src.bad[0]) and "corrupt or not an image" in str(src.bad[0])
    Image.new("RGB", (8, 8)).save(tmp_path / "1.jpg")
    os.mkfifo(tmp_path / "2.jpg")
    vg = [{"image_id": i, "objects": [{"object_id": 1, "names": ["cup"]}]} for i in (1, 2)]
    (tmp_path / "vg.json").write_text(json.dumps(vg))
    src = load_vg(tmp_path / "vg.json", echo=False)
    assert [a.image_id for a in src.annotations] == [1]
    assert "[1] (image_id 2)" in str(src.bad[0]) and "not a regular file" in str(src.bad[0])


def test_images_are_written_relative_to_the_output_and_ids_carry_no_path(tmp_path, capsys):
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    anns = [(i, c, (10 * k, 0, 5, 5)) for i in (1, 2) for k, c in enumerate(("cat", "dog"))]
    coco = _coco(ds / "images", [1, 2], anns)
    Image.new("RGB", (8, 8), "red").save(ds / "images" / "y.png")
    coco["images"][1]["file_name"] = "y.png"
    abs_id = str(ds / "images" / "y.png")                  # an image id that is an absolute path
    coco["images"][1]["id"] = abs_id
    for a in coco["annotations"]:
        a["image_id"] = abs_id if a["image_id"] == 2 else a["image_id"]
    (ds / "instances.json").write_text(json.dumps(coco))
    out = ds / "lrv" / "train.jsonl"
    argv = ["--coco-instances", ds / "instances.json", "--images", ds / "images", "--out", out, "--per-image", "3"]
    assert run_cli(argv, capsys)[0] == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["image"] for r in recs} == {"../images/x.png", "../images/y.png"}
    assert all(r["images"] == [r["image"]] for r in recs)
    assert [r["id"] for r in recs] == [f"instances/{1 if r['image_id'] == 1 else 'y.png'}/{i}" for i, r in enumerate(recs)]
    assert not any(str(tmp_path) in r["id"] for r in recs)
    assert run_cli([*argv, "--overwrite"], capsys)[0] == 0
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == [r["id"] for r in recs]   # deterministic
    moved = tmp_path / "elsewhere" / "moved"                      # the data set moves with its images
    moved.parent.mkdir()
    ds.rename(moved)
    from halluc.pipelines.finetune import read_examples
    ex = read_examples(moved / "lrv" / "train.jsonl")
    assert len(ex) == len(recs) and {Path(e.image).resolve().parent for e in ex} == {moved / "images"}


def test_paths_are_checked_before_any_work(tmp_path, capsys, no_hang):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    good = tmp_path / "i.json"
    good.write_text(json.dumps(_coco(tmp_path, [1], [(1, "cat", (0, 0, 5, 5))])))
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "bad.json").write_text('{"images": [],\n "annotations": [}')
    (tmp_path / "latin1.json").write_bytes(b'{"images": "caf\xe9"}')
    out = tmp_path / "o.jsonl"
    cases = [
        (["--coco-instances", tmp_path / "fifo.json", "--out", tmp_path / "outdir"], "--out", "is a directory"),
        (["--coco-instances", tmp_path / "fifo.json", "--out", out], "--coco-instances", "FIFO"),
        (["--coco-instances", good, "--coco-captions", tmp_path / "nope.json", "--out", out], "--coco-captions",
         "no such file"),
        (["--coco-instances", good, "--images", good, "--out", out], "--images", "not a folder"),
        (["--vg", tmp_path / "outdir", "--out", out], "--vg", "is a directory"),
        (["--world", tmp_path / "outdir", "--out", out], "--world", "scenes.jsonl: no such file"),
        (["--world", tmp_path / "nowhere", "--out", out], "--world", "neither a folder"),
        (["--coco-instances", tmp_path / "bad.json", "--out", out], f"{tmp_path / 'bad.json'}:2", "malformed JSON"),
        (["--coco-instances", tmp_path / "latin1.json", "--out", out], f"{tmp_path / 'latin1.json'}:1", "UTF-8"),
    ]
    for argv, where, what in cases:
        rc, err = run_cli(argv, capsys)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and where in err and what in err, (argv, err)
        assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("opt,value,message", [
    ("--per-image", "0", "must be >= 1"), ("--limit", "0", "must be >= 1"), ("--min-images", "0", "must be >= 1"),
    ("--seed", "-1", "must be in 0.."), ("--seed", "2.5", "expected an integer seed"), ("--neg-ratio", "1.5", "must be in [0, 1]"),
    ("--caption-share", "-0.1", "must be in [0, 1]"), ("--neg-ratio", "nan", "must be a finite number"),
])
def test_numeric_options_are_bounded_at_parse_time(tmp_path, capsys, opt, value, message):
    rc, err = run_cli(["--world", tmp_path / "none", "--out", tmp_path / "o.jsonl", opt, value], capsys)
    assert rc == 2 and f"argument {opt}: {message}" in err, err


def test_ratio_sum_and_weights_are_one_line_errors(world, tmp_path, capsys):
    d, _ = world
    out = tmp_path / "o.jsonl"
    rc, err = run_cli(["--world", d, "--out", out, "--neg-ratio", "0.9", "--caption-share", "0.2"], capsys)
    assert rc == 2 and "summing to at most 1" in err and err.count("\n") == 1
    rc, err = run_cli(["--world", d, "--out", out, "--families", "nonexistent=nan,existent=1"], capsys)
    assert rc == 2 and "--families" in err and "finite" in err


def test_a_folder_named_like_a_builtin_split_does_not_hide_it(world, tmp_path, monkeypatch, capsys):
    """``--world world-train --out world-train/lrv.jsonl`` makes a folder of that name; a rerun still
    means the builtin split."""
    import halluc.world.builtin as builtin
    d, _ = world
    monkeypatch.setattr(builtin, "split_dir", lambda name: d)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "world-train").mkdir()
    assert run_cli(["--world", "world-train", "--out", "world-train/lrv.jsonl", "--limit", "3"], capsys)[0] == 0
    recs = [json.loads(x) for x in (tmp_path / "world-train" / "lrv.jsonl").read_text().splitlines()]
    assert len(recs) == 12 and all(r["id"].startswith("world-train/") for r in recs)
