"""The one filtering step every image backend runs on its raw boxes (DESIGN.md §6, Woodpecker stage 3).

    kept = postprocess(raw, (width, height), config)

In order: clip boxes to the image; drop scores not above ``box_threshold`` (strictly greater, as
GroundingDINO's own ``predict`` does); drop boxes under ``min_area`` of the image area (Woodpecker:
0.1 %); then, per phrase, greedy de-duplication: visit boxes by descending score and drop a box
whose IoU with a kept box of the same phrase is >= ``dedup_iou`` (0.95: the same instance reported
twice). Boxes of different phrases never suppress each other: "a dog" and "an animal" may share a box.
Detections without a box (``box=None``) pass the score test only. Output is by descending score,
ties in input order. Pure Python: no torch needed to use or test it.
"""
from __future__ import annotations

from detectors.base import Detection, DetectorConfig


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def clip(box, width: float, height: float) -> tuple[float, float, float, float]:
    w, h = float(width), float(height)
    x0, x1 = sorted(min(max(float(v), 0.0), w) for v in (box[0], box[2]))
    y0, y1 = sorted(min(max(float(v), 0.0), h) for v in (box[1], box[3]))
    return (x0, y0, x1, y1)


def postprocess(dets: list[Detection], image_size: tuple[int, int] | None,
                config: DetectorConfig) -> list[Detection]:
    """``image_size`` is (width, height) as PIL gives it; None skips clipping and the area test."""
    kept: list[Detection] = []
    for d in dets:
        if not d.score > config.box_threshold:
            continue
        if d.box is not None and image_size is not None:
            w, h = image_size
            box = clip(d.box, w, h)
            if (box[2] - box[0]) * (box[3] - box[1]) < config.min_area * w * h:
                continue
            d = Detection(d.phrase, box, float(d.score), d.label)
        kept.append(d)
    kept.sort(key=lambda d: -d.score)          # stable: equal scores keep input order
    out: list[Detection] = []
    for d in kept:
        if d.box is not None and any(o.phrase == d.phrase and o.box is not None
                                     and iou(o.box, d.box) >= config.dedup_iou for o in out):
            continue
        out.append(d)
    return out
