"""The detector interface every backend implements (backends are named in ``halluc.registry``).

    det = detectors.load("world-yolo")                 # or "hf-grounding-dino:PATH", "oracle:coco", ...
    boxes = det.detect(image, ["star", "moon"], image_id=7)   # list[Detection]

A detector answers "where is each of these phrases in this image?" with boxes in absolute xyxy
pixels and a score. Closed-vocabulary backends (YOLO, oracles) map their labels to the asked
phrases through a synonym table. Backends that know object sets but no boxes (``oracle:coco``)
return ``box=None``: existence and counts can be decided from them, geometry cannot.

Nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Protocol, runtime_checkable

@dataclass(frozen=True)
class Detection:
    phrase: str                                          # the asked phrase this box answers
    box: tuple[float, float, float, float] | None        # absolute xyxy pixels; None: no geometry known
    score: float
    label: str | None = None                             # the backend's own label, when it differs


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, image, phrases: list[str], *, image_id=None) -> list[Detection]:
        """``image`` is a PIL image (None is allowed for oracles); ``image_id`` lets oracles look up
        their annotations (image-based backends ignore it)."""
        ...

    def fingerprint(self) -> dict:
        """Everything that changes the output: backend, weights hash, thresholds. Keys the cache."""
        ...


@dataclass
class DetectorConfig:
    box_threshold: float = 0.35        # Woodpecker's GroundingDINO defaults
    text_threshold: float = 0.25
    min_area: float = 0.001            # drop boxes under 0.1 % of the image
    dedup_iou: float = 0.95

    def thresholds(self) -> dict:
        return asdict(self)


def make_config(options: dict, allowed: tuple[str, ...] = (), **defaults) -> tuple[DetectorConfig, dict]:
    """Split ``options`` into a DetectorConfig (threshold fields, strings converted) and the backend's
    own options. ``defaults`` are the backend's threshold defaults; a key in neither set is an error
    that names the valid ones (a misspelt ``box_treshold`` must not silently do nothing)."""
    names = {f.name for f in fields(DetectorConfig)}
    unknown = set(options) - names - set(allowed)
    if unknown:
        raise ValueError(f"unknown detector option(s) {', '.join(sorted(unknown))}; "
                         f"valid: {', '.join(sorted(names | set(allowed)))}")
    kw = {**defaults, **{k: float(v) for k, v in options.items() if k in names}}
    return DetectorConfig(**kw), {k: v for k, v in options.items() if k not in names}


def as_image(image):
    """A PIL RGB image from a PIL image or a path (None stays None, for oracles)."""
    if image is None:
        return None
    from PIL import Image
    if not isinstance(image, Image.Image):
        from halluc.images import open_image     # regular files only, under the pixel cap
        return open_image(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def detect_batch(detector, images, phrases_per_image, image_ids=None) -> list[list[Detection]]:
    """Batched detection on any Detector: its own ``detect_batch`` when it has one, else a loop."""
    image_ids = list(image_ids) if image_ids is not None else [None] * len(images)
    if not (len(images) == len(phrases_per_image) == len(image_ids)):
        raise ValueError("images, phrases_per_image and image_ids must have the same length")
    if hasattr(detector, "detect_batch"):
        return detector.detect_batch(images, phrases_per_image, image_ids)
    return [detector.detect(im, ph, image_id=i) for im, ph, i in zip(images, phrases_per_image, image_ids)]


class BaseDetector:
    """Shared plumbing: a name, a config, a fingerprint, and a looping ``detect_batch``.

    Subclasses implement ``detect`` (and may override ``detect_batch`` to run real batches) and
    ``_fingerprint`` (weights hash and whatever else, besides the thresholds, changes the output);
    ``fingerprint`` computes it once per detector (hashing weights is not free) and keeps it.
    """
    name = "base"
    keyed_by = "image"        # the cache keys on pixels; oracles say "image_id"
    _fp: dict | None = None   # the fingerprint, once computed

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()

    def detect(self, image, phrases: list[str], *, image_id=None) -> list[Detection]:
        return self.detect_batch([image], [phrases], [image_id])[0]

    def detect_batch(self, images, phrases_per_image, image_ids=None) -> list[list[Detection]]:
        image_ids = list(image_ids) if image_ids is not None else [None] * len(images)
        if type(self).detect is BaseDetector.detect:        # neither method overridden: no recursion
            raise NotImplementedError(f"{type(self).__name__} implements neither detect nor detect_batch")
        return [self.detect(im, ph, image_id=i) for im, ph, i in zip(images, phrases_per_image, image_ids)]

    def _fingerprint(self) -> dict:
        return {}

    def fingerprint(self) -> dict:
        if self._fp is None:
            # "postprocess" versions our own filtering code: bump it when that changes the output.
            self._fp = {"backend": self.name, "postprocess": 1, **self.config.thresholds(), **self._fingerprint()}
        return self._fp

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
