"""The original GroundingDINO implementation (package ``groundingdino``, as Woodpecker ran it).

    det = detectors.load("groundingdino-py:GroundingDINO_SwinT_OGC.py,groundingdino_swint_ogc.pth")

Optional and only for a separate environment: ``groundingdino-py`` 0.4.0 pins ``supervision==0.6.0``
and fails with transformers 5.x, so it cannot live beside this project's own dependencies. The
``hf-grounding-dino`` backend runs the same model through transformers. The ``.pth`` is a pickle
(``torch.load``): load only files you trust.

The reference ``predict`` returns, per box, the string of prompt tokens above the text threshold;
that string is matched to the asked phrase sharing the most words with it (Woodpecker used spaCy
vector similarity for this step), and a box sharing no word with any phrase is dropped.
"""
from __future__ import annotations

from pathlib import Path

from detectors.base import BaseDetector, Detection, as_image, make_config
from detectors.hf import group_phrases
from detectors.postprocess import postprocess

INSTALL_HINT = ("the groundingdino-py backend needs the package 'groundingdino' (groundingdino-py 0.4.0), "
                "which pins supervision==0.6.0 and fails with transformers 5.x: install it in its own "
                "environment (with transformers<5) and run halluc there; or use 'hf-grounding-dino:FOLDER', "
                "the same model through transformers")


def _best_phrase(text: str, phrases: list[str]) -> str | None:
    words = set(text.split())
    scores = [len(words & set(p.split())) / len(words | set(p.split())) for p in phrases]
    best = max(range(len(phrases)), key=lambda i: scores[i], default=None)
    return phrases[best] if best is not None and scores[best] > 0 else None


class GroundingDinoPy(BaseDetector):
    name = "groundingdino-py"

    def __init__(self, config_file: Path, weights: Path, config, device: str | None = None):
        super().__init__(config)
        import torch
        from groundingdino.util.inference import load_model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.files = (config_file, weights)
        self.model = load_model(str(config_file), str(weights), device=self.device)

    def _fingerprint(self) -> dict:
        from detectors.cache import files_digest
        return {"weights": files_digest(self.files)}

    def detect(self, image, phrases: list[str], *, image_id=None) -> list[Detection]:
        import groundingdino.datasets.transforms as T
        from groundingdino.util.inference import predict
        image = as_image(image)
        groups = group_phrases(phrases)
        if not groups:
            return []
        transform = T.Compose([T.RandomResize([800], max_size=1333), T.ToTensor(),
                               T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        tensor, _ = transform(image, None)
        boxes, logits, texts = predict(self.model, tensor, ". ".join(groups) + ".", self.config.box_threshold,
                                       self.config.text_threshold, device=self.device)
        w, h = image.size
        raw = []
        for (cx, cy, bw, bh), score, text in zip(boxes.tolist(), logits.tolist(), texts):
            clean = _best_phrase(text, list(groups))
            if clean is None:
                continue
            box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            raw += [Detection(p, box, score, text) for p in groups[clean]]
        return postprocess(raw, image.size, self.config)


def load(arg: str | None, **options) -> GroundingDinoPy:
    config, rest = make_config(options, ("device",))
    try:
        import groundingdino.util.inference  # noqa: F401  (only to fail early with the hint)
    except Exception as e:                   # ImportError, or its own broken imports under transformers 5
        raise ImportError(f"{INSTALL_HINT} ({e.__class__.__name__}: {e})") from None
    parts = (arg or "").split(",")
    if len(parts) != 2:
        raise ValueError("groundingdino-py needs 'groundingdino-py:CONFIG.py,WEIGHTS.pth'")
    files = [Path(p).expanduser() for p in parts]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"groundingdino-py: no such file {f.resolve()}; nothing can be downloaded here")
    return GroundingDinoPy(files[0], files[1], config, **rest)
