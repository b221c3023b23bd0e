"""detectors/: post-processing, label mapping, oracles, the cache, and tiny random GroundingDINO, OWLv2
and YOLO models built from configs (nothing is downloaded) run end to end through ``detectors.load``."""
import json
import sqlite3
import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

import detectors
from halluc.errors import BadInput
from detectors.base import BaseDetector, Detection, DetectorConfig
from detectors.cache import CachedDetector, DetectionCache
from detectors.labels import label_map
from detectors.postprocess import iou, postprocess


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HALLUC_ALLOW_DOWNLOAD", raising=False)


@pytest.fixture(scope="module")
def torch1():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch


def scene(w=96, h=72, seed=0) -> Image.Image:
    im = Image.new("RGB", (w, h), (40, 40, 40))
    d = ImageDraw.Draw(im)
    d.ellipse((10 + seed, 10, 40, 40), fill=(220, 40, 40))
    d.rectangle((50, 20, 85, 60), fill=(50, 90, 230))
    return im


def assert_well_formed(dets, phrases, size):
    w, h = size
    for d in dets:
        assert isinstance(d, Detection) and d.phrase in phrases
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
        assert 0.0 <= d.score <= 1.0 and isinstance(d.score, float)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


# ---------------------------------------------------------------- post-processing and labels

def test_postprocess_threshold_area_dedup():
    cfg = DetectorConfig(box_threshold=0.3, min_area=0.01, dedup_iou=0.95)   # 100x100 image: min area 100 px²
    raw = [
        Detection("dog", (0, 0, 50, 49.5), 0.8),     # IoU 0.99 with the next, lower score: dropped
        Detection("dog", (0, 0, 50, 50), 0.9),
        Detection("cat", (0, 0, 50, 49.5), 0.8),     # same box, other phrase: kept
        Detection("dog", (60, 60, 69, 69), 0.7),     # 81 px² < 100: dropped
        Detection("dog", (60, 60, 70, 70), 0.65),    # exactly 100 px²: kept
        Detection("dog", (0, 0, 10, 10), 0.3),       # score not above the threshold: dropped
        Detection("dog", (-10, -10, 30, 30), 0.5),   # clipped to the image, then kept
        Detection("bus", (0, 0, 100, 100), 0.6),
        Detection("bus", (0, 0, 100, 95), 0.55),     # IoU exactly 0.95: the same instance, dropped
        Detection("man", None, 0.4),                 # no geometry: only the score test applies
    ]
    out = postprocess(raw, (100, 100), cfg)
    assert [(d.phrase, d.box, d.score) for d in out] == [
        ("dog", (0.0, 0.0, 50.0, 50.0), 0.9), ("cat", (0.0, 0.0, 50.0, 49.5), 0.8),
        ("dog", (60.0, 60.0, 70.0, 70.0), 0.65), ("bus", (0.0, 0.0, 100.0, 100.0), 0.6),
        ("dog", (0.0, 0.0, 30.0, 30.0), 0.5), ("man", None, 0.4)]
    assert iou((0, 0, 100, 100), (0, 0, 100, 95)) == 0.95
    assert postprocess(raw, (100, 100), DetectorConfig(box_threshold=0.95)) == []


def test_label_map_phrases_to_classes():
    lm = label_map()
    assert [lm.canonical(p) for p in ("two men", "a red car", "teddy bear", "dogs", "baby cat", "wine glasses",
                                      "People", "spaceship")] == \
        ["person", "car", "teddy bear", "dog", "cat", "wine glass", "person", None]
    box = (1, 2, 3, 4)
    got = lm.answer([("person", box, 0.9), ("dog", box, 0.5), ("spaceship", None, 0.4)],
                    ["a man", "person", "cat", "a man", "spaceship"])
    assert [(d.phrase, d.label) for d in got] == [("a man", "person"), ("person", "person"),
                                                  ("spaceship", "spaceship")]
    assert got[0].box == (1.0, 2.0, 3.0, 4.0)


# ---------------------------------------------------------------- oracles

@pytest.fixture
def instances(tmp_path):
    data = {"images": [{"id": 1, "width": 100, "height": 80}, {"id": 2, "width": 100, "height": 80}],
            "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30]},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 10, 10, 10]},
                            {"id": 3, "image_id": 1, "category_id": 18, "bbox": [0, 0, 5, 5]},
                            {"id": 4, "image_id": 2, "category_id": 3, "bbox": [1, 1, 2, 2]}]}
    p = tmp_path / "ann" / "instances_val.json"
    p.parent.mkdir()
    p.write_text(json.dumps(data))
    return p


def test_oracle_coco_instances(instances):
    det = detectors.load(f"oracle:{instances}")
    got = det.detect(None, ["man", "woman", "dog", "cat"], image_id=1)
    assert sorted((d.phrase, d.box) for d in got) == [
        ("dog", (0.0, 0.0, 5.0, 5.0)), ("man", (10.0, 10.0, 30.0, 40.0)), ("man", (50.0, 10.0, 60.0, 20.0)),
        ("woman", (10.0, 10.0, 30.0, 40.0)), ("woman", (50.0, 10.0, 60.0, 20.0))]
    assert all(d.score == 1.0 and d.label in ("person", "dog") for d in got)
    assert det.detect(None, ["dog"], image_id="chair500/2") == []          # record ids work; no dog there
    assert detectors.load(f"oracle:{instances.parent}").detect(None, ["car"], image_id=2)[0].box == (1, 1, 3, 3)
    with pytest.raises(KeyError, match="no annotations for image 3"):
        det.detect(None, ["dog"], image_id=3)
    with pytest.raises(ValueError, match="image_id"):
        det.detect(None, ["dog"])


def test_oracle_coco_builtin_on_a_shield_image(shared):
    ids = [json.loads(line)["image_id"] for line in (shared / "reference-outputs/shield_llava15_chair.jsonl").open()]
    assert 226988 in ids
    det = detectors.load("oracle:coco")
    got = det.detect(None, ["woman", "pizza", "table", "dog", "camera"], image_id=226988)
    assert [(d.phrase, d.box, d.score) for d in got] == [
        ("table", None, 1.0), ("woman", None, 1.0), ("pizza", None, 1.0)]   # gt: dining table, person, pizza


def test_oracle_world_split(tmp_path):
    from halluc.world.generate import generate
    d = generate(tmp_path / "bias", "bias", 3, seed=0)
    rec = json.loads((d / "scenes.jsonl").read_text().splitlines()[0])
    vis = [o for o in rec["objects"] if o["visible"]]
    det = detectors.load(f"oracle:world:{d}")
    got = det.detect(None, [o["cls"] for o in vis] + ["spaceship"], image_id=rec["image_id"])
    assert sorted(d.box for d in got) == sorted(tuple(o["box"]) for o in vis)
    assert det.detect(None, ["star"], image_id=rec["id"]) == det.detect(None, ["star"], image_id=rec["image_id"])


# ---------------------------------------------------------------- the cache

class Counting(BaseDetector):
    name = "counting"

    def __init__(self, config=None):
        super().__init__(config)
        self.calls = 0

    def detect(self, image, phrases, *, image_id=None):
        self.calls += 1
        return [Detection(p, (1.0, 2.0, 3.0, 4.0), 0.5, "lbl") for p in phrases]


def test_cache_hits_skip_the_backend(tmp_path):
    db = tmp_path / "det.sqlite"
    inner = Counting()
    det = CachedDetector(inner, DetectionCache(db))
    a = det.detect(scene(), ["dog", "cat"])
    assert det.detect(scene(), ["cat", "dog", "cat"]) == a and inner.calls == 1      # sorted distinct phrases
    det.detect(scene(seed=3), ["dog", "cat"])                                         # other pixels: a miss
    assert inner.calls == 2
    out = det.detect_batch([scene(), scene(seed=5)], [["dog", "cat"], ["dog"]])       # one hit, one miss
    assert out[0] == a and inner.calls == 3
    # other thresholds, other fingerprint, other key; a second reader sees what the first wrote
    other = CachedDetector(Counting(DetectorConfig(box_threshold=0.5)), DetectionCache(db))
    assert other.key(scene(), ["dog"]) != det.key(scene(), ["dog"])
    other.detect(scene(), ["dog", "cat"])
    assert other.inner.calls == 1
    again = CachedDetector(Counting(), DetectionCache(db))
    assert again.detect(scene(), ["dog", "cat"]) == a and again.inner.calls == 0
    with sqlite3.connect(db) as conn:                       # values are JSON, not pickles
        for (value,) in conn.execute("SELECT value FROM detections"):
            assert isinstance(json.loads(value), list)


def test_cache_oracle_keys_on_image_id(instances):
    det = detectors.load(f"oracle:{instances}", cache=True)
    assert isinstance(det, CachedDetector) and det.name == "oracle"
    first = det.detect(None, ["man"], image_id=1)
    det.inner.objects.clear()                                # a second call must not reach the oracle
    assert det.detect(None, ["man"], image_id=1) == first and len(first) == 2


def test_file_hash_is_cached_and_follows_content(tmp_path):
    import hashlib
    import os
    cache, f = DetectionCache(tmp_path / "h.sqlite"), tmp_path / "w.safetensors"
    f.write_bytes(b"abc")
    assert cache.file_sha256(f) == hashlib.sha256(b"abc").hexdigest()
    f.write_bytes(b"abd")
    os.utime(f, ns=(1, 1))
    assert cache.file_sha256(f) == hashlib.sha256(b"abd").hexdigest()


# ---------------------------------------------------------------- tiny transformers models

@pytest.fixture(scope="module")
def tiny_grounding_dino(tmp_path_factory, torch1):
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)
    d = tmp_path_factory.mktemp("gdino")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "cat", "dog", "red", "blue", "circle",
             "square", "car", "person"]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    vocab = {w: i for i, w in enumerate((d / "vocab.txt").read_text().split())}
    tok = BertTokenizer(vocab=vocab)
    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          window_size=2, out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=64)
    cfg = GroundingDinoConfig(backbone_config=backbone, text_config=text, num_queries=12, encoder_layers=1,
                              decoder_layers=2, d_model=32, encoder_ffn_dim=32, decoder_ffn_dim=32,
                              encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
                              decoder_n_points=2, max_text_len=12)      # short: forces prompt packing
    GroundingDinoForObjectDetection(cfg).save_pretrained(d)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
                           tokenizer=tok).save_pretrained(d)
    return d


ANY = dict(box_threshold=0, text_threshold=0, min_area=0)     # random weights: keep every box


def test_hf_grounding_dino_end_to_end(tiny_grounding_dino):
    det = detectors.load(f"hf-grounding-dino:{tiny_grounding_dino}", device="cpu", **ANY)
    assert det.name == "hf-grounding-dino" and det.config.dedup_iou == 0.95
    phrases = ["a red circle", "Blue square", "blue square.", "cat", "dog", "person", "car"]
    assert len(det._jobs(phrases)) > 1                         # 12 text tokens cannot hold them all
    im = scene()
    got = det.detect(im, phrases)
    assert got and {d.phrase for d in got} <= set(phrases)
    assert_well_formed(got, phrases, im.size)
    # "Blue square" and "blue square." read the same to the model: both get the same boxes
    assert [d.box for d in got if d.phrase == "Blue square"] == [d.box for d in got if d.phrase == "blue square."]
    batch = det.detect_batch([im, scene(80, 64, 4)], [["cat", "dog"], []])
    assert batch[1] == [] and {d.phrase for d in batch[0]} <= {"cat", "dog"}
    strict = detectors.load(f"hf-grounding-dino:{tiny_grounding_dino}", device="cpu")   # Woodpecker thresholds
    assert all(d.score > 0.35 for d in strict.detect(im, phrases))
    fp = det.fingerprint()
    assert fp["box_threshold"] == 0 and len(fp["weights"]) == 64 and fp != strict.fingerprint()


def test_grounding_dino_boxes_go_to_the_best_phrase(tiny_grounding_dino, torch1):
    """Hand-made logits over "[CLS] cat . dog . [SEP]": each box goes to the phrase whose tokens score
    highest, if above the text threshold (0.25); boxes at or under the box threshold (0.35) are dropped."""
    from types import SimpleNamespace

    from detectors.hf import _phrase_spans
    assert _phrase_spans([0, 2, 7, 9, 5, 8, 5, 3], dot=5, cls=2, n=2) == [(2, 4), (5, 6)]
    det = detectors.load(f"hf-grounding-dino:{tiny_grounding_dino}", device="cpu")
    p = lambda x: torch1.logit(torch1.tensor(x))               # noqa: E731  (a probability as a logit)
    lo = p(0.01)
    logits = torch1.full((1, 4, 6), float(lo))
    logits[0, 0, 1] = p(0.9)                                    # "cat"
    logits[0, 1, 3], logits[0, 1, 1] = p(0.8), p(0.3)           # "dog" beats "cat"
    logits[0, 2, 5] = p(0.9)                                    # only [SEP]: a box, but no phrase above 0.25
    logits[0, 3, 1] = p(0.3)                                    # under the box threshold
    boxes = torch1.tensor([[[0.25, 0.25, 0.5, 0.5], [0.75, 0.5, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 1, 1]]])

    class Stub:                                                 # the model, answering with the logits above
        config = det.model.config

        def __call__(self, **inputs):
            return SimpleNamespace(logits=logits, pred_boxes=boxes)

    det.model = Stub()
    got = det.detect(Image.new("RGB", (100, 80)), ["Cat", "dog"])
    assert [(d.phrase, tuple(round(v, 3) for v in d.box), round(d.score, 3)) for d in got] == [
        ("Cat", (0.0, 0.0, 50.0, 40.0), 0.9), ("dog", (50.0, 20.0, 100.0, 60.0), 0.8)]


@pytest.fixture(scope="module")
def tiny_owlv2(tmp_path_factory, torch1):
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor
    d = tmp_path_factory.mktemp("owlv2")
    # id 0 must not be a query's first token: OWLv2 masks queries whose first id is 0 as padding
    vocab = {"!": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}
    for w in ["a</w>", "cat</w>", "dog</w>", "red</w>", "circle</w>", "blue</w>", "square</w>"]:
        vocab[w] = len(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>")]
    for m in ("ca", "do"):
        vocab[m] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)
    cfg = Owlv2Config(text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, max_position_embeddings=16, bos_token_id=1,
                                       eos_token_id=2, pad_token_id=2),
                      vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=64, patch_size=16),
                      projection_dim=16)
    Owlv2ForObjectDetection(cfg).save_pretrained(d)
    ip = Owlv2ImageProcessor(size={"height": 64, "width": 64})
    Owlv2Processor(image_processor=ip, tokenizer=tok).save_pretrained(d)
    return d


def test_owlv2_end_to_end(tiny_owlv2):
    det = detectors.load(f"owlv2:{tiny_owlv2}", device="cpu", box_threshold=0, min_area=0)
    assert det.config.dedup_iou == 0.3                          # OWL's dense boxes: NMS-strength dedup
    phrases = ["a red circle", "cat", "dog"]
    ims = [scene(), scene(64, 96, 2)]
    out = det.detect_batch(ims, [phrases, ["cat"]])             # ragged query lists: padded queries ignored
    assert out[0] and out[1] and {d.phrase for d in out[1]} == {"cat"}
    for dets, ph, im in zip(out, [phrases, ["cat"]], ims):
        assert_well_formed(dets, ph, im.size)
    # A batch of one and a padded batch of two run other matrix shapes: the same boxes, to float rounding.
    one = det.detect(ims[1], ["cat"])
    assert [(d.phrase, d.label) for d in one] == [(d.phrase, d.label) for d in out[1]]
    for a, b in zip(one, out[1]):
        assert a.box == pytest.approx(b.box, abs=1e-3) and a.score == pytest.approx(b.score, abs=1e-5)


def test_yolo_maps_classes_to_phrases(tmp_path, torch1):
    ultralytics = pytest.importorskip("ultralytics")
    from halluc.assets import asset_path
    # CHAIR's table lists the 80 COCO classes in COCO's order, canonical name first: a COCO model's names
    names = [line.split(", ")[0] for line in asset_path("coco_chair/synonyms.txt").read_text().splitlines()]
    m = ultralytics.YOLO("yolov8n.yaml")                        # built from the packaged config: no download
    m.model.names = dict(enumerate(names))
    m.save(tmp_path / "tiny.pt")
    det = detectors.load(f"yolo:{tmp_path / 'tiny.pt'}", box_threshold=0, min_area=0, imgsz=64, device="cpu",
                         trust_pickle=True)                     # our own file; users convert (test_yolo_safety)
    lm = label_map()
    phrases = ["a man", "dogs", *names]
    im = scene()
    got = det.detect(im, phrases)
    assert got
    assert_well_formed(got, phrases, im.size)
    assert all(lm.canonical(d.phrase) == lm.canonical(d.label) for d in got)
    assert det.detect(im, []) == []


# ---------------------------------------------------------------- bad input

def test_bad_specs_and_missing_weights(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown detector 'nope'.*hf-grounding-dino.*oracle"):
        detectors.load("nope:x")
    missing = tmp_path / "no" / "such-folder"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*nothing can be downloaded"):
        detectors.load(f"hf-grounding-dino:{missing}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    (tmp_path / "empty" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(BadInput, match="no \\*.safetensors weights.*pytorch_model.bin: pickle"):
        detectors.load(f"owlv2:{tmp_path / 'empty'}")
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        detectors.load("hf-grounding-dino:IDEA-Research/grounding-dino-tiny")
    with pytest.raises(FileNotFoundError, match="yolov8n.pt.*nothing is downloaded"):
        detectors.load(f"yolo:{tmp_path / 'yolov8n.pt'}")
    assert not (tmp_path / "yolov8n.pt").exists()
    with pytest.raises(ValueError, match="unknown detector option.*box_treshold.*valid: .*box_threshold"):
        detectors.load("oracle:coco", box_treshold=0.3)
    with pytest.raises(ImportError, match="supervision==0.6.0"):
        detectors.load("groundingdino-py:a.py,b.pth")
    with pytest.raises(ValueError, match="oracle needs a source"):
        detectors.load("oracle")


def test_package_and_registry_do_not_import_torch():
    code = ("import sys, detectors, halluc.registry as r\n"
            "assert {'yolo', 'oracle', 'world-yolo'} <= set(r.names('detector'))\n"
            "bad = [m for m in ('torch', 'transformers', 'ultralytics') if m in sys.modules]\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
