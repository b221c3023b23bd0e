"""The controlled world: deterministic generation, COCO exports, the planted prior, the caption
grammar and its parser, CHAIR through the ordinary COCO path, and the world metrics."""
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from halluc.cli import main
from halluc.metrics.chair import Chair, Vocabulary, load_gt
from halluc.world.generate import generate
from halluc.world.language import noun_phrase, parse_caption
from halluc.world.metrics import load_scenes, score_caption, score_world
from halluc.geometry import relation_holds
from halluc.world.scene import CLASSES, WorldConfig, sample_scene


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    for split in ("train", "test", "bias", "control", "pope"):
        generate(root / split, split, 40, seed=3)
    return root


def _digest(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(d.rglob("*")):
        if f.is_file() and f.name != "meta.json":
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic(world, tmp_path):
    generate(tmp_path / "again", "bias", 40, seed=3)
    assert _digest(tmp_path / "again") == _digest(world / "bias")
    generate(tmp_path / "other", "bias", 40, seed=4)
    assert _digest(tmp_path / "other") != _digest(world / "bias")


def test_coco_exports_load_with_pycocotools(world):
    from pycocotools.coco import COCO
    coco = COCO(str(world / "test" / "instances_test.json"))
    scenes = load_scenes(world / "test")
    assert len(coco.getImgIds()) == 40 and len(coco.getCatIds()) == len(CLASSES)
    n_vis = sum(o["visible"] for s in scenes.values() for o in s["objects"])
    assert len(coco.getAnnIds()) == n_vis
    caps = COCO(str(world / "test" / "captions_test.json"))
    assert len(caps.getAnnIds()) == 40


def test_splits_condition_on_the_pair(world):
    pairs = dict(WorldConfig().pairs)
    for split, want_trigger in (("bias", True), ("control", False)):
        for s in load_scenes(world / split).values():
            trig, partner = s["pair"]
            vis = {o["cls"] for o in s["objects"] if o["visible"]}
            assert (trig in vis) == want_trigger and partner not in vis and pairs[trig] == partner
    hidden = sum(not o["visible"] for s in load_scenes(world / "train").values() for o in s["objects"])
    assert hidden > 0                                   # train hides some partners ...
    for split in ("test", "bias", "control", "pope"):    # ... evaluation splits never do
        assert all(o["visible"] for s in load_scenes(world / split).values() for o in s["objects"])


def test_planted_prior_keeps_class_frequencies_flat():
    cfg = WorldConfig()
    rng = np.random.default_rng(0)
    scenes = [sample_scene(cfg, rng, str(i)) for i in range(3000)]
    freq = Counter(c for s in scenes for c in {o.cls for o in s.objects})
    rates = np.array([freq[c] / len(scenes) for c in CLASSES])
    assert rates.max() - rates.min() < 0.06, dict(zip(CLASSES, rates.round(3)))
    for trig, partner in cfg.pairs:
        with_t = [s for s in scenes if any(o.cls == trig for o in s.objects)]
        p = np.mean([any(o.cls == partner for o in s.objects) for s in with_t])
        assert 0.85 <= p <= 0.97, (trig, partner, p)
        without = [s for s in scenes if not any(o.cls == trig for o in s.objects)]
        assert np.mean([any(o.cls == partner for o in s.objects) for s in without]) < 0.15


def test_pope_files_are_balanced_and_adversarial_picks_partners(world):
    scenes = load_scenes(world / "pope")
    for kind in ("random", "popular", "adversarial"):
        qs = [json.loads(l) for l in open(world / "pope" / f"pope_{kind}.jsonl")]
        assert Counter(q["label"] for q in qs) == {"yes": 120, "no": 120}
        for q in qs:
            vis = {o["cls"] for o in scenes[str(q["image_id"])]["objects"]}
            cls = q["text"].split()[3]
            assert (cls in vis) == (q["label"] == "yes")
    adv = [json.loads(l) for l in open(world / "pope" / "pope_adversarial.jsonl")]
    asked = {(q["image_id"], q["text"].split()[3]) for q in adv if q["label"] == "no"}
    for s in scenes.values():
        vis = {o["cls"] for o in s["objects"]}
        if "star" in vis and "moon" not in vis:
            assert (s["image_id"], "moon") in asked


def test_chair_scores_a_world_caption_through_the_coco_path(world, tmp_path, monkeypatch):
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    vocab = Vocabulary.from_file(world / "test" / "synonyms.txt")
    gt = load_gt(str(world / "test"), "singularize", vocab)
    scene = next(s for s in load_scenes(world / "test").values() if "cross" not in {o["cls"] for o in s["objects"]})
    present = sorted({o["cls"] for o in scene["objects"]})
    assert gt[str(scene["image_id"])] == set(present)
    # Hand-checked: every present class once (one as a plural), plus two crosses that are not there.
    cap = " , ".join(f"a red {c}" for c in present) + f" and two {'crosses'} . the {present[0]}s are big ."
    r = Chair(vocab, "singularize").score([("x", scene["image_id"], cap)], gt)
    assert r.per_caption[0]["mscoco_hallucinated_words"] == [["cross", "cross"]]   # "crosses" -> "cross"
    assert r.totals["n_mentions"] == len(present) + 2 and r.totals["n_hallucinated"] == 1
    assert r.totals["recall"] == 100.0
    r = Chair(vocab, "singularize").score([("y", scene["image_id"], "a cross .")], gt)   # "cross" -> "cros"
    assert r.per_caption[0]["mscoco_generated_words"] == ["cross"]


def test_noun_phrases():
    assert noun_phrase(1, "small", "orange", "arrow") == "a small orange arrow"
    assert noun_phrase(1, None, "orange", "arrow") == "an orange arrow"
    assert noun_phrase(1, None, None, "arrow") == "an arrow"
    assert noun_phrase(3, "large", None, "cross") == "three large crosses"


def test_parse_caption_claims():
    c = parse_caption("a large red star , two small blue crosses and a moon . the star is left of the moon . "
                      "there is no ring .")
    assert [(m.cls, m.count, m.size, m.colour) for m in c.mentions] == [
        ("star", 1, "large", "red"), ("cross", 2, "small", "blue"), ("moon", 1, None, None)]
    assert c.relations == [("star", "left of", "moon")]


SCENE = {"image_id": 1, "objects": [
    {"cls": "star", "colour": "red", "size": "large", "box": [0, 0, 14, 14], "visible": True},
    {"cls": "circle", "colour": "blue", "size": "small", "box": [16, 0, 24, 8], "visible": True},
    {"cls": "circle", "colour": "green", "size": "large", "box": [0, 32, 14, 46], "visible": True},
    {"cls": "moon", "colour": "red", "size": "large", "box": None, "visible": False},
]}


def test_world_metrics_on_hand_written_captions():
    # moon: hidden, so a hallucination and a partner hit; circle count 2 claimed as 1 -> count error;
    # "small red star": size wrong (1 of 2 attributes); "the star is above the circle": circle below-ish
    s = score_caption("a small red star , a blue circle and a moon . the star is left of the circle .", SCENE)
    assert s["hallucinated"] == ["moon"] and s["partner"]["bias"] == 1 and s["partner"]["bias_hit"] == 1
    assert s["attr"] == [3, 1] and s["count"] == [2, 1] and s["rel"] == [1, 0]
    assert s["recall"] == 1.0
    s = score_caption("a large red star and two circles . the star is right of the circle .", SCENE)
    assert s["hallucinated"] == [] and s["partner"]["bias_hit"] == 0 and s["count"] == [2, 0]
    assert s["rel"] == [1, 1] and s["attr"] == [2, 0]
    t = score_world([("a", 1, "a star ."), ("b", 1, "a moon and a ring .")], {"1": SCENE}).totals
    assert t["chair_s"] == 50.0 and t["chair_i"] == pytest.approx(200 / 3) and t["partner_rate"] == 50.0
    assert t["n_partner_control"] == 2 and t["partner_rate_control"] == 50.0    # ring, without cross


def test_relation_geometry():
    a, b = [0, 0, 10, 10], [20, 2, 30, 12]
    assert relation_holds("left of", a, b, 16) and relation_holds("right of", b, a, 16)
    assert not relation_holds("above", a, b, 16) and relation_holds("next to", a, b, 16)
    assert relation_holds("above", a, [0, 40, 10, 50], 16) and not relation_holds("next to", a, [0, 40, 10, 50], 16)


def test_cli_generate_and_eval_world(tmp_path):
    assert main(["world", "generate", "--out", str(tmp_path / "w"), "--split", "bias", "--n", "10"]) == 0
    scenes = load_scenes(tmp_path / "w")
    f = tmp_path / "caps.jsonl"
    with open(f, "w") as fh:
        for s in scenes.values():
            trig, partner = s["pair"]
            fh.write(json.dumps({"id": s["id"], "image_id": s["image_id"], "image": str(tmp_path / "w" / s["image"]),
                                 "text": f"a {trig} and a {partner} ."}) + "\n")
    assert main(["eval", "world", str(f), "--out-dir", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["partner_rate"] == 100.0 and res["n_captions"] == 10
    assert set(res) >= {"chair_s", "chair_i", "recall", "partner_rate", "attribute_error", "relation_error", "count_error"}
