"""detectors: "where is each of these phrases in this image?" behind one interface (DESIGN.md §1, §6).

    import detectors
    det = detectors.load("hf-grounding-dino:/models/grounding-dino-tiny", cache=True)
    det.detect(image, ["a dog", "frisbee"])            # [Detection(phrase, box xyxy px, score, label)]
    detectors.load("owlv2:google/owlv2-base-patch16-ensemble", box_threshold=0.2)   # hub id: HF cache only
    detectors.load("yolo:/models/yolov8x")              # safetensors folder (halluc convert-yolo); CHAIR synonyms
    detectors.load("oracle:coco").detect(None, ["man"], image_id=226988)           # ground truth
    detectors.load("world-yolo")                        # the detector trained on the controlled world

``spec`` is ``NAME`` or ``NAME:ARG`` (ARG: a weights folder, hub id, or the oracle's source; a .pt only with
``trust_pickle=True``, since loading one runs code from it).
Options are the thresholds of DetectorConfig (box_threshold, text_threshold, min_area, dedup_iou) and
the backend's own (device, dtype, batch_size, imgsz, synonyms, variant); unknown ones are an error.
``cache=True`` (or a path) wraps the detector in the SQLite detection cache (detectors/cache.py).
Every image backend filters its boxes with detectors.postprocess.postprocess.

Importing this package imports no backend (no torch); the backends are named in ``halluc.registry``.
"""
from __future__ import annotations

from detectors.base import Detection, Detector, DetectorConfig, detect_batch

__all__ = ["Detection", "Detector", "DetectorConfig", "detect_batch", "load"]


def load(spec: str, *, cache=False, **options) -> Detector:
    from halluc.registry import entry, load_target, names
    name, _, arg = spec.partition(":")
    if name not in names("detector"):
        raise ValueError(f"unknown detector {name!r} in {spec!r}; valid: {', '.join(names('detector'))} "
                         "(as NAME or NAME:ARG)")
    det = load_target(entry("detector", name).target)(arg or None, **options)
    if cache:
        from detectors.cache import CachedDetector, DetectionCache
        det = CachedDetector(det, DetectionCache(None if cache is True else cache))
    return det
