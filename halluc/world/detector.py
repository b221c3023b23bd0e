"""world-yolo: an ultralytics YOLOv8 detector for the controlled world (the backend; the recipe that
trained it is halluc/world/detector_train.py).

    det = detectors.load("world-yolo")                       # the weights in halluc/assets/world_yolo
    det.detect(img, ["stars", "red moon"])                   # [Detection("stars", (x0, y0, x1, y1), 0.97, "star"), ...]
    det.detect_batch(imgs, [["star"], ["moon", "ring"]])     # one batched forward pass
    det = detectors.load("world-yolo:DIR", box_threshold=0.5)   # other weights (halluc world train-detector)

Registered in ``halluc.registry`` as the detector ``world-yolo`` (``halluc.world.detector:load``):
general code reaches it only through that entry. Architecture (``model_cfg``): ultralytics'
``yolov8.yaml`` with nc = 12, the classes of ``halluc.world.scene.CLASSES`` in that order. Weights
ship as safetensors plus the model yaml: this project never unpickles a file, so loading rebuilds
``DetectionModel`` through detectors/yolo.py's checked folder loader (the yaml may only name model
layers) and fills it from the safetensors; prediction is our own letterbox + forward +
ultralytics' NMS (no predictor, no ``.pt``). Phrases map to classes through the world's own
synonym table (``world_label_map``).

ultralytics is AGPL-3.0; see halluc/assets/world_yolo/README.md.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from detectors.base import BaseDetector, Detection, DetectorConfig, as_image, make_config
from detectors.postprocess import postprocess
from halluc.provenance import sha256_files
from halluc.world.scene import CLASSES

NAME = "world-yolo"
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "world_yolo"
WEIGHTS_FILE = "model.safetensors"
YAML_FILE = "model.yaml"
META_FILE = "world_yolo.json"


def world_label_map():
    """The world's synonym table (``synonyms.txt`` of every generated split) as a LabelMap: "stars",
    "a red star", "two large stars" -> star; "crosses" -> cross (through CHAIR's "cros")."""
    from detectors.labels import LabelMap
    from halluc.world.domain import vocabulary
    return LabelMap(vocabulary())


@contextlib.contextmanager
def _quiet():
    """ultralytics' INFO lines (layer tables, "Fusing layers") off for the duration."""
    import logging

    from ultralytics.utils import LOGGER
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


def model_cfg(width: float = 0.25, depth: float = 0.33) -> dict:
    """ultralytics' yolov8.yaml with nc = 12 and one scale ``n`` = [depth, width, 1024] (yolov8n: 0.33, 0.25)."""
    from detectors.yolo_folder import import_ultralytics
    ultralytics = import_ultralytics()
    import yaml
    src = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"
    d = yaml.safe_load(src.read_text())
    d["nc"] = len(CLASSES)
    d["scales"] = {"n": [depth, width, 1024]}
    d["scale"] = "n"
    d["names"] = list(CLASSES)
    return d


def _sha256(p: Path) -> str:
    return sha256_files([p])


def _load_model(d: Path):
    """The fused, frozen DetectionModel of a weights folder, rebuilt from its yaml (checked: layer
    classes only, names = the world's classes) and filled from the safetensors; nothing unpickled."""
    from detectors.yolo_folder import load_folder_model
    model, _ = load_folder_model(d, f"{NAME}:{d}")
    names = [model.names[i] for i in sorted(model.names)]
    if names != list(CLASSES):
        raise ValueError(f"{d / YAML_FILE}: classes {names} differ from the world's {list(CLASSES)}")
    with _quiet():
        model = model.fuse(verbose=False)           # conv + batch-norm folded: faster, same outputs
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class WorldYolo(BaseDetector):
    """Closed vocabulary (the 12 world shapes): a detection of class c answers every asked phrase
    naming c ("star", "stars", "a red star" — colour and size words are not checked: the detector
    sees shapes). Boxes in input-image pixels; thresholds by detectors.postprocess."""
    name = NAME

    def __init__(self, weights_dir: str | os.PathLike = ASSET_DIR, config: DetectorConfig | None = None,
                 nms_iou: float = 0.5, agnostic: bool = True, max_det: int = 100, batch_size: int = 64,
                 threads: int | None = None):
        super().__init__(config or DetectorConfig())
        d = Path(weights_dir)
        if not (d / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"world-yolo weights not found in {d} (train them: halluc world train-detector "
                                    f"--out {d})")
        self.dir = d
        self.nms_iou, self.agnostic, self.max_det = float(nms_iou), bool(agnostic), int(max_det)
        self.batch_size, self.threads = int(batch_size), (int(threads) if threads else None)
        meta = json.loads((d / META_FILE).read_text()) if (d / META_FILE).exists() else {}
        self.imgsz = int(meta.get("imgsz", 128))
        self.weights_sha256 = _sha256(d / WEIGHTS_FILE)
        self.labels = world_label_map()
        self.model = _load_model(d)

    def _fingerprint(self) -> dict:
        return {"weights_sha256": self.weights_sha256, "imgsz": self.imgsz, "nms_iou": self.nms_iou,
                "agnostic": self.agnostic, "max_det": self.max_det, "synonyms": self.labels.digest()}

    # -- raw predictions

    def _prep(self, image) -> tuple[np.ndarray, float, tuple[int, int], tuple[int, int]]:
        """Letterbox to imgsz as ultralytics' training loader does (cv2 linear resize, grey 114 pad), RGB."""
        import cv2
        a = np.asarray(as_image(image), dtype=np.uint8)
        h, w = a.shape[:2]
        r = self.imgsz / max(h, w)
        nw, nh = min(self.imgsz, round(w * r)), min(self.imgsz, round(h * r))
        if (nw, nh) != (w, h):
            a = cv2.resize(a, (nw, nh), interpolation=cv2.INTER_LINEAR if r > 1 else cv2.INTER_AREA)
        out = np.full((self.imgsz, self.imgsz, 3), 114, np.uint8)
        top, left = (self.imgsz - nh) // 2, (self.imgsz - nw) // 2
        out[top:top + nh, left:left + nw] = a
        return out, r, (left, top), (w, h)

    def predict(self, images: list, conf: float | None = None, iou: float | None = None,
                agnostic: bool | None = None, multi_label: bool = False) -> list[np.ndarray]:
        """Per image an (n, 6) array after NMS: x0 y0 x1 y1 (input-image pixels), score, class index.
        Defaults: the box threshold, ``nms_iou``, ``agnostic`` of this detector."""
        import torch
        from ultralytics.utils.nms import non_max_suppression
        conf = self.config.box_threshold if conf is None else conf
        iou = self.nms_iou if iou is None else iou
        agnostic = self.agnostic if agnostic is None else agnostic
        results: list[np.ndarray] = []
        with _threads(self.threads), torch.inference_mode():
            for s in range(0, len(images), self.batch_size):
                chunk = [self._prep(im) for im in images[s:s + self.batch_size]]
                x = torch.from_numpy(np.stack([c[0] for c in chunk])).permute(0, 3, 1, 2).float().div_(255)
                y = self.model(x)
                dets = non_max_suppression(y, conf_thres=conf, iou_thres=iou, agnostic=agnostic,
                                           multi_label=multi_label, max_det=self.max_det, nc=len(CLASSES))
                for (_, r, (left, top), (w, h)), d in zip(chunk, dets):
                    d = d[:, :6].cpu().numpy().astype(np.float64)
                    d[:, [0, 2]] = ((d[:, [0, 2]] - left) / r).clip(0, w)
                    d[:, [1, 3]] = ((d[:, [1, 3]] - top) / r).clip(0, h)
                    results.append(d)
        return results

    # -- the Detector protocol (``detect`` is BaseDetector's: a batch of one)

    def detect_batch(self, images, phrases_per_image, image_ids=None) -> list[list[Detection]]:
        """One batched forward pass over the images that have phrases to answer."""
        if len(images) != len(phrases_per_image):
            raise ValueError(f"{len(images)} images but {len(phrases_per_image)} phrase lists")
        images = [as_image(im) for im in images]
        todo = [i for i, ph in enumerate(phrases_per_image) if ph]
        out: list[list[Detection]] = [[] for _ in images]
        for i, d in zip(todo, self.predict([images[i] for i in todo])):
            labelled = [(CLASSES[int(k)], (x0, y0, x1, y1), score) for x0, y0, x1, y1, score, k in d]
            out[i] = postprocess(self.labels.answer(labelled, phrases_per_image[i]), images[i].size, self.config)
        return out


@contextlib.contextmanager
def _threads(n: int | None):
    import torch
    if not n:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _bool(v) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")


def load(arg: str | None = None, **options) -> WorldYolo:
    """``world-yolo`` (the committed weights) or ``world-yolo:DIR`` (a folder with model.safetensors,
    model.yaml, world_yolo.json). Options: the DetectorConfig thresholds (box_threshold 0.35 ...),
    nms_iou (0.5), agnostic (true: one class per place — world objects never overlap), max_det,
    batch_size, threads."""
    cfg, rest = make_config(options, ("nms_iou", "agnostic", "max_det", "batch_size", "threads"))
    if "agnostic" in rest:
        rest["agnostic"] = _bool(rest["agnostic"])
    return WorldYolo(arg or ASSET_DIR, config=cfg, **rest)
