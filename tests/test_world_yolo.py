"""world-yolo: the committed weights load offline and see the world's shapes; phrases map to
classes; the training recipe runs end to end on a tiny configuration."""
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ultralytics")
pytest.importorskip("safetensors")

from detectors.base import Detection  # noqa: E402
from halluc.registry import entry  # noqa: E402
from halluc.world import detector as wy  # noqa: E402
from halluc.world import detector_train as wt  # noqa: E402
from detectors.postprocess import iou  # noqa: E402
from halluc.world.scene import CLASSES, WorldConfig, render, sample_scene  # noqa: E402


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: loading and detecting must stay offline."""
    def refuse(*a, **k):
        raise AssertionError(f"world-yolo tried to open a network connection: {a}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture(scope="module")
def det():
    import torch
    torch.set_num_threads(1)
    return wy.load()


def _scenes(n, seed, cfg=WorldConfig(), **force):
    rng = np.random.default_rng((seed, 424242))         # no split and no training run draws with this seed
    out = []
    for i in range(n):
        s = sample_scene(cfg, rng, f"t{i}", force=force or None)
        out.append((s, render(s, cfg, rng)))
    return out


def test_registered_and_assets_complete():
    assert entry("detector", "world-yolo").target == "halluc.world.detector:load"
    d = wy.ASSET_DIR
    for f in (wy.WEIGHTS_FILE, wy.YAML_FILE, wy.META_FILE, "README.md"):
        assert (d / f).is_file(), f
    assert (d / wy.WEIGHTS_FILE).stat().st_size <= 7 * 2 ** 20
    assert not list(d.glob("*.pt")), "no pickles in the package"
    meta = json.loads((d / wy.META_FILE).read_text())
    assert meta["classes"] == list(CLASSES)
    assert meta["weights_sha256"] == wy._sha256(d / wy.WEIGHTS_FILE)
    assert meta["eval"]["mAP50"] >= 0.9                   # what the README reports, as measured


def test_loads_offline_fast_and_finds_the_shapes(no_network):
    t0 = time.perf_counter()
    det = wy.load()
    assert time.perf_counter() - t0 < 5                   # ~0.2 s; generous for a loaded machine
    scenes = _scenes(20, 1)
    classes = [o.cls for s, _ in scenes for o in s.visible()]
    out = det.detect_batch([im for _, im in scenes], [list(CLASSES)] * len(scenes))
    hit = n = fp = 0
    for (s, _), dets in zip(scenes, out):
        boxes = [(d.label, d.box) for d in dets]
        used = set()
        for o in s.visible():
            n += 1
            best = max(((iou(o.box, b), j) for j, (lab, b) in enumerate(boxes) if lab == o.cls and j not in used),
                       default=(0.0, None))
            if best[0] >= 0.5:
                hit += 1
                used.add(best[1])
        fp += len(boxes) - len(used)
    assert n == len(classes) and n > 40
    assert hit / n >= 0.9, f"recall {hit}/{n}"
    assert fp / max(hit + fp, 1) <= 0.1, f"{fp} false positives for {hit} hits"


def test_phrases_map_to_classes(det):
    s, im = _scenes(1, 2, star=True, moon=False)[0]
    n_stars = sum(o.cls == "star" for o in s.visible())
    out = det.detect(im, ["stars", "a red star", "moon", "unicorn"])
    assert all(isinstance(d, Detection) for d in out)
    by_phrase = {p: [d for d in out if d.phrase == p] for p in ("stars", "a red star", "moon", "unicorn")}
    assert len(by_phrase["stars"]) == n_stars and len(by_phrase["a red star"]) == n_stars
    assert all(d.label == "star" and d.score > 0.35 for d in by_phrase["stars"])
    assert by_phrase["moon"] == [] and by_phrase["unicorn"] == []
    for d in by_phrase["stars"]:                           # boxes in the 64 px image's pixels, on a star
        assert 0 <= d.box[0] < d.box[2] <= 64 and 0 <= d.box[1] < d.box[3] <= 64
        assert max(iou(d.box, o.box) for o in s.visible() if o.cls == "star") >= 0.5
    assert det.detect(im, []) == []


def test_batch_equals_single_and_scaled_input(det):
    scenes = _scenes(5, 3)
    ims = [im for _, im in scenes]
    phrases = [["circle", "square", "triangle", "star", "moon", "cross"], ["ring", "hearts"], [], CLASSES, ["arrow"]]
    batch = det.detect_batch(ims, phrases)
    single = [det.detect(im, ph) for im, ph in zip(ims, phrases)]
    for b, s in zip(batch, single):
        assert [(d.phrase, d.label) for d in b] == [(d.phrase, d.label) for d in s]
        for x, y in zip(b, s):
            assert np.allclose(x.box, y.box, atol=1e-3) and abs(x.score - y.score) < 1e-4
    # the same scene at 2x comes back in the larger image's pixels
    big = ims[0].resize((128, 128))
    d1, d2 = det.detect(ims[0], list(CLASSES)), det.detect(big, list(CLASSES))
    assert sorted(d.label for d in d1) == sorted(d.label for d in d2)
    for a in d1:
        b = max((x for x in d2 if x.label == a.label), key=lambda x: iou([v * 2 for v in a.box], x.box))
        assert iou([v * 2 for v in a.box], b.box) > 0.7


def test_fingerprint_and_options():
    import detectors
    a, b = detectors.load("world-yolo"), detectors.load(f"world-yolo:{wy.ASSET_DIR}", box_threshold="0.6")
    assert isinstance(a, wy.WorldYolo) and a.name == "world-yolo" and b.weights_sha256 == a.weights_sha256
    fa, fb = a.fingerprint(), b.fingerprint()
    assert fa["backend"] == "world-yolo" and len(fa["weights_sha256"]) == 64 and fa["imgsz"] == a.imgsz
    assert fa["box_threshold"] == 0.35 and fb["box_threshold"] == 0.6 and fa != fb
    with pytest.raises(ValueError, match="box_treshold"):
        wy.load(None, box_treshold=0.5)


def test_recipe_runs_end_to_end(tmp_path, monkeypatch):
    """1 epoch on 16 scenes at imgsz 64: writes loadable safetensors + yaml, nothing in the cwd."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "w"
    t0 = time.perf_counter()
    meta = wt.train(out, n_train=16, epochs=1, imgsz=64, batch=16, n_val=0, evaluate_after=False, verbose=False)
    assert time.perf_counter() - t0 < 20
    assert sorted(p.name for p in out.iterdir()) == sorted([wy.WEIGHTS_FILE, wy.YAML_FILE, wy.META_FILE])
    assert [p.name for p in tmp_path.iterdir()] == ["w"]          # no runs/ folder left behind
    assert meta["recipe"]["epochs"] == 1 and meta["imgsz"] == 64
    det = wy.load(str(out), box_threshold=0.0)
    assert det.imgsz == 64 and det.weights_sha256 == meta["weights_sha256"]
    (res,) = det.predict([_scenes(1, 4)[0][1]], conf=0.0)
    assert res.shape[1] == 6
