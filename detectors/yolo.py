"""A closed-vocabulary ultralytics YOLO detector, answering phrases through synonyms.

    det = detectors.load("yolo:/models/yolov8x")                     # a converted folder: no pickle
    det.detect(image, ["a man", "bike"])      # "person" boxes answer "a man", "bicycle" boxes "bike"
    det = detectors.load("yolo:best", synonyms="world/synonyms.txt", imgsz=96)
    det = detectors.load("yolo:best.pt", trust_pickle=True)          # the .pt itself: runs its pickle

Weights come from a folder holding ``model.safetensors`` + ``model.yaml`` (the ultralytics model yaml,
with ``nc`` and the class ``names``) and optionally ``yolo.json`` (``imgsz``: the size the checkpoint
was trained at); ``halluc convert-yolo FILE.pt --out DIR --trust-pickle`` (detectors/yolo_convert.py)
writes one from a ``.pt``, once. Loading it unpickles nothing: the model is rebuilt from the yaml
(every layer named there must be a model layer class; no ``eval``), filled from the safetensors and
predicted through ultralytics exactly as a ``.pt`` is, so both give the same detections.

A ``.pt`` is a pickle: loading one runs code from it. It is refused unless the caller passes
``trust_pickle=True`` (``halluc correct --trust-pickle``). Nothing is downloaded: a missing path is
an error here, before ultralytics could fetch a file of that name from GitHub (it does so for names
like ``yolov8n.pt``). ultralytics is AGPL-3.0.

Each class name of the checkpoint is mapped to a canonical class of the synonym table (COCO's CHAIR
table by default; ``synonyms=FILE`` for another vocabulary) and answers every asked phrase of that
class (detectors/labels.py). The score threshold defaults to ultralytics' own (0.25).
"""
from __future__ import annotations

from pathlib import Path

from detectors.base import BaseDetector, Detection, as_image, make_config
from detectors.labels import LabelMap, label_map
from detectors.postprocess import postprocess
from halluc.errors import BadInput

from detectors.yolo_folder import WEIGHTS_FILE, YAML_FILE, import_ultralytics, load_folder_model, wrap_in_yolo


def truthy(value, what: str = "trust_pickle") -> bool:
    """A boolean option that may arrive as a string (``--set trust_pickle=true``)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise BadInput(f"detector option {what}={value!r}: expected true or false")


def pickle_refusal(arg: str, path: Path) -> BadInput:
    return BadInput(
        f"yolo:{arg}: refusing to load {path.name}: a .pt checkpoint is a pickle, and loading it runs code from "
        f"the file. Convert it once, where you trust it: halluc convert-yolo {arg} --out DIR --trust-pickle, "
        "then pass yolo:DIR (safetensors, no pickle); or, if you trust this file, pass --trust-pickle to "
        "halluc correct (detector option trust_pickle=true)")


def local_checkpoint(arg: str | None) -> Path:
    """``arg`` as an existing local ``.pt`` file or weights folder (absolute); nothing is fetched."""
    if not arg:
        raise ValueError("yolo needs local weights: 'yolo:DIR' (model.safetensors + model.yaml, from "
                         "halluc convert-yolo) or 'yolo:/path/to/best.pt'")
    p = Path(arg).expanduser()
    if p.is_dir():
        return p.resolve()
    if not p.is_file():
        raise FileNotFoundError(f"yolo:{arg}: no such file or folder {p.resolve()}; YOLO weights must be a "
                                "local folder (model.safetensors + model.yaml) or .pt (nothing is downloaded "
                                f"here, ultralytics would try to fetch {p.name!r})")
    if p.suffix != ".pt":
        raise ValueError(f"yolo:{arg}: expected a folder with {WEIGHTS_FILE} + {YAML_FILE} (halluc convert-yolo) "
                         "or a .pt checkpoint")
    return p.resolve()


# ---------------------------------------------------------------- the backend

class YoloDetector(BaseDetector):
    name = "yolo"

    def __init__(self, weights: Path, config, labels: LabelMap, device: str | None = None,
                 imgsz: int | str | None = None, batch_size: int | str = 16, trust_pickle: bool = False):
        super().__init__(config)
        import_ultralytics()
        from ultralytics import YOLO
        self.weights = Path(weights)
        self.labels = labels
        self.device = device
        self.imgsz = int(imgsz) if imgsz else None         # None: the size the checkpoint was trained at
        self.batch_size = int(batch_size)
        self.meta: dict = {}
        if self.weights.is_dir():                           # safetensors + yaml: nothing unpickled
            module, self.meta = load_folder_model(self.weights)
            trained = self.meta.get("imgsz")
            self.model = wrap_in_yolo(module, self.weights / YAML_FILE,
                                      {"imgsz": trained} if trained else {})
        else:
            if not truthy(trust_pickle):
                raise pickle_refusal(str(weights), self.weights)
            self.model = YOLO(str(self.weights), task="detect")   # an absolute, existing path: no download
        self.class_names = dict(self.model.names)

    def _fingerprint(self) -> dict:
        from detectors.cache import DetectionCache
        cache = DetectionCache()
        if self.weights.is_dir():
            return {"weights": cache.file_sha256(self.weights / WEIGHTS_FILE),
                    "model_yaml": cache.file_sha256(self.weights / YAML_FILE),
                    "synonyms": self.labels.digest(), "imgsz": self.imgsz or self.meta.get("imgsz")}
        return {"weights": cache.file_sha256(self.weights), "synonyms": self.labels.digest(), "imgsz": self.imgsz}

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
    """``yolo:DIR`` (model.safetensors + model.yaml) or ``yolo:FILE.pt`` (only with ``trust_pickle=True``).
    Options: the DetectorConfig thresholds (box_threshold 0.25 ...), device, imgsz, batch_size, synonyms,
    trust_pickle."""
    config, rest = make_config(options, ("device", "imgsz", "batch_size", "synonyms", "trust_pickle"),
                               box_threshold=0.25)
    trust = truthy(rest.pop("trust_pickle", False))
    path = local_checkpoint(arg)
    if path.is_file() and not trust:                    # before ultralytics (or anything) opens the file
        raise pickle_refusal(arg, path)
    labels = label_map(rest.pop("synonyms", None))
    return YoloDetector(path, config, labels, trust_pickle=trust, **rest)
