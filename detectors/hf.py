"""Open-vocabulary detectors from transformers: GroundingDINO and OWLv2, from a local folder or hub id.

    det = detectors.load("hf-grounding-dino:IDEA-Research/grounding-dino-tiny")   # HF cache only
    det = detectors.load("owlv2:/models/owlv2-base-patch16-ensemble", box_threshold=0.2, device="cuda")
    det.detect_batch([im1, im2], [["dog", "frisbee"], ["cat"]])

Offline: a folder must hold config.json + *.safetensors (``.bin`` files are pickles and are never
loaded); a hub id is looked up in the local Hugging Face cache only, unless HALLUC_ALLOW_DOWNLOAD=1.

GroundingDINO reads one prompt "a cat. a dog." per image (phrases lower-cased, periods removed,
packed into as many prompts as its text length needs). The processor's grounded post-processing
gives boxes above ``box_threshold``; each box then goes to the asked phrase whose tokens score
highest on it, if that score is above ``text_threshold`` — the reference decodes the tokens above the
threshold into a string, and Woodpecker then matches that string to its entities by spaCy similarity;
scoring the phrase spans directly makes the same choice without a second model. OWLv2 scores every
phrase as its own query: one phrase per box, by the processor's object-detection post-processing.
Its dense per-patch boxes overlap heavily, so its default de-duplication IoU is 0.3 (real NMS).
"""
from __future__ import annotations

import os
from pathlib import Path

from detectors.base import BaseDetector, Detection, as_image, make_config
from detectors.postprocess import postprocess

_HF_FILES = ("*.safetensors", "*.json", "*.txt", "*.model")   # weights, configs, vocabularies
_OPTIONS = ("device", "dtype", "batch_size")


def resolve_weights(spec: str | None, what: str) -> Path:
    """A local folder holding config.json + *.safetensors, for a path or a (cached) hub id."""
    if not spec:
        raise ValueError(f"{what} needs weights: '{what}:FOLDER' or '{what}:ORG/NAME' (a hub id in the local cache)")
    p = Path(spec).expanduser()
    if p.exists():
        return _check_folder(p, what, spec)
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1:
        raise FileNotFoundError(f"{what}:{spec}: no such folder {p.resolve()} (looked for config.json + "
                                "*.safetensors there); nothing can be downloaded here")
    from huggingface_hub import snapshot_download
    allow = os.environ.get("HALLUC_ALLOW_DOWNLOAD") == "1"
    try:
        folder = snapshot_download(spec, local_files_only=not allow, allow_patterns=list(_HF_FILES))
    except Exception as e:       # hub errors come in many classes; all mean "not here"
        home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise FileNotFoundError(
            f"{what}:{spec}: not a local folder ({p.resolve()}) and not in the local Hugging Face cache "
            f"({home}); nothing can be downloaded here (HALLUC_ALLOW_DOWNLOAD=1 allows it where a network "
            f"exists). Pass a folder with config.json + *.safetensors. "
            f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return _check_folder(Path(folder), what, spec)


def _check_folder(p: Path, what: str, spec: str) -> Path:
    from halluc.models import check_model_folder
    return check_model_folder(p, f"{what}:{spec}", needs="config.json, the processor files and *.safetensors")


def group_phrases(phrases: list[str]) -> dict[str, list[str]]:
    """Model-side text (lower case, no periods: a period ends a phrase for GroundingDINO) -> the
    asked phrases that read that way, in asked order. Phrases that clean to nothing are dropped."""
    groups: dict[str, list[str]] = {}
    for p in dict.fromkeys(phrases):
        clean = " ".join(p.lower().replace(".", " ").split())
        if clean:
            groups.setdefault(clean, []).append(p)
    return groups


class HFDetector(BaseDetector):
    """Loading, device placement, batching and fingerprinting shared by the transformers backends."""

    def __init__(self, folder: Path, config, device: str | None = None, dtype: str | None = None,
                 batch_size: int | str = 8):
        super().__init__(config)
        import torch
        from transformers import AutoProcessor
        self.folder = folder
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kw = {"local_files_only": True}     # the folder was resolved offline above: never reach the hub here
        self.processor = AutoProcessor.from_pretrained(folder, **kw)
        self.model = self.model_class().from_pretrained(
            folder, use_safetensors=True, dtype=getattr(torch, dtype) if dtype else torch.float32, **kw)
        self.model.to(self.device).eval()

    def model_class(self):
        raise NotImplementedError

    def _fingerprint(self) -> dict:
        from detectors.cache import files_digest
        files = [f for pat in _HF_FILES for f in self.folder.glob(pat)]
        return {"weights": files_digest(files), "dtype": self.dtype or "float32"}

    def _jobs(self, phrases: list[str]) -> list[list[str]]:
        """The prompts (lists of model-side phrases) one image needs; one by default."""
        clean = list(group_phrases(phrases))
        return [clean] if clean else []

    def _run(self, images, chunks) -> list[list[tuple[str, tuple, float, str]]]:
        """One model batch -> per job: (model-side phrase, box, score, backend label)."""
        raise NotImplementedError

    def detect_batch(self, images, phrases_per_image, image_ids=None) -> list[list[Detection]]:
        images = [as_image(im) for im in images]
        jobs = [(i, chunk) for i, ph in enumerate(phrases_per_image) for chunk in self._jobs(ph)]
        groups = [group_phrases(ph) for ph in phrases_per_image]
        raw: list[list[Detection]] = [[] for _ in images]
        for s in range(0, len(jobs), self.batch_size):
            batch = jobs[s:s + self.batch_size]
            found = self._run([images[i] for i, _ in batch], [c for _, c in batch])
            for (i, _), hits in zip(batch, found):
                raw[i] += [Detection(orig, box, score, label)
                           for clean, box, score, label in hits for orig in groups[i][clean]]
        return [postprocess(r, im.size, self.config) for r, im in zip(raw, images)]

    def _inputs(self, **kw):
        import torch
        inputs = self.processor(return_tensors="pt", **kw).to(self.device)
        if self.dtype:
            inputs["pixel_values"] = inputs["pixel_values"].to(getattr(torch, self.dtype))
        return inputs


class GroundingDino(HFDetector):
    name = "hf-grounding-dino"

    def model_class(self):
        from transformers import GroundingDinoForObjectDetection
        return GroundingDinoForObjectDetection

    def _jobs(self, phrases):
        """Pack phrases into prompts that fit the text encoder ([CLS] ... [SEP] within max_text_len)."""
        clean = list(group_phrases(phrases))
        if not clean:
            return []
        budget = self.model.config.max_text_len - 2
        lengths = [len(ids) + 1 for ids in self.processor.tokenizer(clean, add_special_tokens=False)["input_ids"]]
        chunks, cur, used = [], [], 0
        for p, n in zip(clean, lengths):
            if cur and used + n > budget:
                chunks.append(cur)
                cur, used = [], 0
            cur.append(p)
            used += n
        return chunks + [cur]

    def _run(self, images, chunks):
        import torch
        cfg = self.config
        inputs = self._inputs(images=images, text=[". ".join(c) + "." for c in chunks], padding=True)
        with torch.inference_mode():
            out = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            out, inputs["input_ids"], threshold=cfg.box_threshold, text_threshold=cfg.text_threshold,
            target_sizes=[(im.height, im.width) for im in images])
        dot = self.processor.tokenizer.convert_tokens_to_ids(".")
        found = []
        for b, (chunk, res) in enumerate(zip(chunks, results)):
            probs = out.logits[b].sigmoid()           # in the model's dtype: the processor's own keep rule
            kept = probs[probs.max(-1).values > cfg.box_threshold].float()
            if len(kept) != len(res["scores"]):
                raise RuntimeError("GroundingDINO post-processing kept a different set of boxes than expected; "
                                   "the installed transformers changed its rule")
            spans = _phrase_spans(inputs["input_ids"][b].tolist(), dot, self.processor.tokenizer.cls_token_id,
                                  len(chunk))
            per_phrase = torch.stack([kept[:, s:e].max(-1).values if e > s else torch.zeros(len(kept))
                                      for s, e in spans], -1) if len(kept) else None
            hits = []
            for j in range(len(kept)):
                score, k = per_phrase[j].max(0)
                if score > cfg.text_threshold:
                    hits.append((chunk[int(k)], tuple(res["boxes"][j].tolist()), float(res["scores"][j]),
                                 res["text_labels"][j]))
            found.append(hits)
        return found


def _phrase_spans(ids: list[int], dot: int, cls: int | None, n: int) -> list[tuple[int, int]]:
    """Token ranges of the n phrases of "[CLS] p1 . p2 . [SEP]": between consecutive periods."""
    dots = [i for i, t in enumerate(ids) if t == dot]
    if len(dots) < n:
        raise RuntimeError(f"GroundingDINO prompt has {len(dots)} periods for {n} phrases (truncated text?)")
    first = ids.index(cls) + 1 if cls in ids else 0          # after [CLS], wherever padding put it
    starts = [first] + [d + 1 for d in dots[:n - 1]]
    return list(zip(starts, dots[:n]))


class Owlv2(HFDetector):
    name = "owlv2"

    def model_class(self):
        from transformers import Owlv2ForObjectDetection
        return Owlv2ForObjectDetection

    def _run(self, images, chunks):
        import torch
        inputs = self._inputs(images=images, text=[list(c) for c in chunks], truncation=True)
        with torch.inference_mode():
            out = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            out, threshold=self.config.box_threshold, target_sizes=[(im.height, im.width) for im in images])
        found = []
        for chunk, res in zip(chunks, results):
            # labels index the queries; the processor pads short query lists with " ": skip those
            found.append([(chunk[int(k)], tuple(box.tolist()), float(s), chunk[int(k)])
                          for s, k, box in zip(res["scores"], res["labels"], res["boxes"]) if int(k) < len(chunk)])
        return found


def load_grounding_dino(arg: str | None, **options) -> GroundingDino:
    config, rest = make_config(options, _OPTIONS)
    return GroundingDino(resolve_weights(arg, "hf-grounding-dino"), config, **rest)


def load_owlv2(arg: str | None, **options) -> Owlv2:
    # OWL's own default score threshold (0.1), and NMS-strength de-duplication for its dense boxes.
    config, rest = make_config(options, _OPTIONS, box_threshold=0.1, dedup_iou=0.3)
    return Owlv2(resolve_weights(arg, "owlv2"), config, **rest)
