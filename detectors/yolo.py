"""A closed-vocabulary ultralytics YOLO detector from a local ``.pt``, answering phrases through synonyms.

    det = detectors.load("yolo:/models/yolov8x.pt")                  # COCO classes, CHAIR synonyms
    det.detect(image, ["a man", "bike"])      # "person" boxes answer "a man", "bicycle" boxes "bike"
    det = detectors.load("yolo:best.pt", synonyms="world/synonyms.txt", imgsz=96)

A ``.pt`` is a pickle: loading one runs code from it, so load only files you trust. Nothing is
downloaded: a missing path is an error here, before ultralytics could fetch a file of that name
from GitHub (it does so for names like ``yolov8n.pt``). ultralytics is AGPL-3.0.

Each class name of the checkpoint is mapped to a canonical class of the synonym table (COCO's CHAIR
table by default; ``synonyms=FILE`` for another vocabulary) and answers every asked phrase of that
class (detectors/labels.py). The score threshold defaults to ultralytics' own (0.25).
"""
from __future__ import annotations

import os
from pathlib import Path

from detectors.base import BaseDetector, Detection, as_image, make_config
from detectors.labels import LabelMap, label_map
from detectors.postprocess import postprocess


def import_ultralytics():
    """Import ultralytics for offline use. Two of its import-time habits are undone here: it
    checks online for updates unless YOLO_OFFLINE is set, and it replaces ``PIL.Image.open``
    process-wide with a version that, on any unreadable file, tries to pip-install a HEIF plugin
    (a network call, and a confusing error in place of "corrupt image"). Pillow's own is restored.
    Call it before the first ultralytics import of any code path."""
    if os.environ.get("HALLUC_ALLOW_DOWNLOAD") != "1":
        os.environ.setdefault("YOLO_OFFLINE", "1")
    import ultralytics
    from PIL import Image
    from ultralytics.utils import patches
    Image.open = getattr(patches, "_image_open", Image.open)
    return ultralytics


def local_checkpoint(arg: str | None) -> Path:
    if not arg:
        raise ValueError("yolo needs a local checkpoint: 'yolo:/path/to/best.pt'")
    p = Path(arg).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"yolo:{arg}: no such file {p.resolve()}; a YOLO checkpoint must be a local "
                                f".pt (nothing is downloaded here, ultralytics would try to fetch {p.name!r})")
    if p.suffix != ".pt":
        raise ValueError(f"yolo:{arg}: expected a .pt checkpoint")
    return p.resolve()


class YoloDetector(BaseDetector):
    name = "yolo"

    def __init__(self, weights: Path, config, labels: LabelMap, device: str | None = None,
                 imgsz: int | str | None = None, batch_size: int | str = 16):
        super().__init__(config)
        import_ultralytics()
        from ultralytics import YOLO
        self.weights = Path(weights)
        self.labels = labels
        self.device = device
        self.imgsz = int(imgsz) if imgsz else None         # None: the size the checkpoint was trained at
        self.batch_size = int(batch_size)
        self.model = YOLO(str(self.weights), task="detect")   # an absolute, existing path: no download
        self.class_names = dict(self.model.names)

    def _fingerprint(self) -> dict:
        from detectors.cache import DetectionCache
        return {"weights": DetectionCache().file_sha256(self.weights), "synonyms": self.labels.digest(),
                "imgsz": self.imgsz}

    def detect_batch(self, images, phrases_per_image, image_ids=None) -> list[list[Detection]]:
        images = [as_image(im) for im in images]
        todo = [i for i, ph in enumerate(phrases_per_image) if ph]     # no phrase, no question
        out: list[list[Detection]] = [[] for _ in images]
        kw = {"conf": self.config.box_threshold, "verbose": False}
        kw.update({k: v for k, v in (("imgsz", self.imgsz), ("device", self.device)) if v is not None})
        for s in range(0, len(todo), self.batch_size):
            idx = todo[s:s + self.batch_size]
            for i, r in zip(idx, self.model.predict([images[i] for i in idx], **kw)):
                b = r.boxes
                labelled = [(self.class_names[int(c)], box, float(p))
                            for c, box, p in zip(b.cls.tolist(), b.xyxy.tolist(), b.conf.tolist())]
                out[i] = postprocess(self.labels.answer(labelled, phrases_per_image[i]), images[i].size, self.config)
        return out


def load(arg: str | None, **options) -> YoloDetector:
    config, rest = make_config(options, ("device", "imgsz", "batch_size", "synonyms"), box_threshold=0.25)
    labels = label_map(rest.pop("synonyms", None))
    return YoloDetector(local_checkpoint(arg), config, labels, **rest)
