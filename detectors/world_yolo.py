"""world-yolo: an ultralytics YOLOv8 detector for the controlled world, trained here on the CPU.

    det = detectors.load("world-yolo")                       # the weights in halluc/assets/world_yolo
    det.detect(img, ["stars", "red moon"])                   # [Detection("stars", (x0, y0, x1, y1), 0.97, "star"), ...]
    det.detect_batch(imgs, [["star"], ["moon", "ring"]])     # one batched forward pass

    python -m detectors.world_yolo train --out halluc/assets/world_yolo     # the recipe (one CPU thread)
    python -m detectors.world_yolo eval                                     # mAP50 / mAP50-95 on world-test

Architecture: ultralytics' ``yolov8.yaml`` (the YOLOv8n layout) with nc = 12, the classes of
``halluc.world.scene.CLASSES`` in that order; trained from scratch (no pretrained weights, nothing
downloaded). Weights ship as safetensors plus the model yaml: this project never unpickles a file,
so loading rebuilds ``DetectionModel`` from the yaml and fills it from the safetensors, and
prediction is our own letterbox + forward + ultralytics' NMS (no predictor, no ``.pt``).

Training data: scenes drawn with the world's sampler and renderer under a seed distinct from every
evaluation split (``SeedSequence((seed, TRAIN_SEED_TAG))``), with the co-occurrence rule switched
off (classes drawn independently) so that the detector cannot learn "a moon goes with a star" —
its evidence must be pixels, which is what a verifier of captions needs; a share of the scenes
uses the bias-hard look (smaller, fainter, noisier). Every visible object is labelled. Recipe:
imgsz 128 (the 64 px scenes upsampled 2x), 8 epochs x 4,000 scenes, AdamW, translate + HSV jitter
only; ~11 minutes on one CPU thread, deterministic (same versions -> same sha256).

ultralytics is AGPL-3.0; see halluc/assets/world_yolo/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from detectors.base import BaseDetector, Detection, DetectorConfig, as_image, make_config
from detectors.postprocess import iou as box_iou_xyxy
from detectors.postprocess import postprocess
from detectors.yolo import import_ultralytics
from halluc.records import atomic_write_text, sha256_files
from halluc.world.scene import CLASSES, WorldConfig, render, sample_scene

NAME = "world-yolo"
ASSET_DIR = Path(__file__).resolve().parents[1] / "halluc" / "assets" / "world_yolo"
WEIGHTS_FILE = "model.safetensors"
YAML_FILE = "model.yaml"
META_FILE = "world_yolo.json"
TRAIN_SEED_TAG = 70170          # training scenes: SeedSequence((seed, TRAIN_SEED_TAG)); eval splits use plain ints
VAL_SEED_TAG = 70171            # the fresh held-out set drawn by ``evaluate(..., fresh=N)``

# The recipe's defaults: what produced the committed weights (see the asset README).
DEFAULTS = dict(n_train=4000, epochs=8, imgsz=128, width=0.25, depth=0.33, batch=32, lr0=0.002,
                hard_frac=0.25, seed=0)


# ---------------------------------------------------------------- phrases -> classes

def world_label_map():
    """The world's synonym table (``synonyms.txt`` of every generated split) as a LabelMap: "stars",
    "a red star", "two large stars" -> star; "crosses" -> cross (through CHAIR's "cros")."""
    from detectors.labels import LabelMap
    from halluc.metrics.chair import Vocabulary
    return LabelMap(Vocabulary.world())


# ---------------------------------------------------------------- model yaml

def model_cfg(width: float = DEFAULTS["width"], depth: float = DEFAULTS["depth"]) -> dict:
    """ultralytics' yolov8.yaml with nc = 12 and one scale ``n`` = [depth, width, 1024] (yolov8n: 0.33, 0.25)."""
    ultralytics = import_ultralytics()
    import yaml
    src = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"
    d = yaml.safe_load(src.read_text())
    d["nc"] = len(CLASSES)
    d["scales"] = {"n": [depth, width, 1024]}
    d["scale"] = "n"
    d["names"] = list(CLASSES)
    return d


def _build_model(cfg: dict):
    import torch
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel
    with _quiet():
        m = DetectionModel({k: v for k, v in cfg.items() if k != "names"}, ch=3, nc=len(CLASSES), verbose=False)
    m.names = dict(enumerate(CLASSES))
    return m.to(torch.float32)


@contextlib.contextmanager
def _quiet():
    import logging
    from ultralytics.utils import LOGGER
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


# ---------------------------------------------------------------- data

def _train_world_config(hard: bool) -> WorldConfig:
    from halluc.world.generate import HARD
    cfg = WorldConfig(pairs=())                  # no co-occurrence rule: classes drawn independently
    return replace(cfg, **HARD) if hard else cfg


def _yolo_label_lines(objs, size: int) -> str:
    lines = []
    for cls, box in objs:
        x0, y0, x1, y1 = box
        lines.append(f"{CLASSES.index(cls)} {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} "
                     f"{(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_scenes(out: Path, n: int, seed_seq: tuple, hard_frac: float = 0.0, prefix: str = "s") -> Path:
    """Draw ``n`` scenes into ``out/images`` + ``out/labels`` (YOLO format; all visible objects)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed_seq)
    cfgs = (_train_world_config(False), _train_world_config(True))
    for i in range(n):
        cfg = cfgs[int(rng.random() < hard_frac)]
        s = sample_scene(cfg, rng, f"{prefix}{i:06d}")
        render(s, cfg, rng).save(out / "images" / f"{s.id}.png", compress_level=1)
        (out / "labels" / f"{s.id}.txt").write_text(
            _yolo_label_lines([(o.cls, o.box) for o in s.visible()], cfg.image_size))
    return out


def split_to_yolo(split: Path, out: Path) -> Path:
    """A generated world split (``scenes.jsonl`` + ``images/``) in YOLO format under ``out``."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    size = json.loads((split / "meta.json").read_text())["config"]["image_size"]
    for line in (split / "scenes.jsonl").read_text().splitlines():
        r = json.loads(line)
        name = Path(r["image"]).stem
        shutil.copyfile(split / r["image"], out / "images" / f"{name}.png")
        objs = [(o["cls"], o["box"]) for o in r["objects"] if o["visible"]]
        (out / "labels" / f"{name}.txt").write_text(_yolo_label_lines(objs, size))
    return out


def _read_yolo_set(d: Path) -> list[tuple[Path, np.ndarray]]:
    """[(image path, labels (n, 5): cls cx cy w h normalised)] of a YOLO-format folder."""
    out = []
    for img in sorted((d / "images").glob("*.png")):
        lab = d / "labels" / f"{img.stem}.txt"
        a = np.loadtxt(lab, ndmin=2) if lab.exists() and lab.stat().st_size else np.zeros((0, 5))
        out.append((img, a.reshape(-1, 5)))
    return out


# ---------------------------------------------------------------- training

@contextlib.contextmanager
def _offline_ultralytics():
    """Keep ultralytics off the network while training: its dataset check asks for a font."""
    import_ultralytics()
    import ultralytics.data.utils as du
    saved = du.check_font
    du.check_font = lambda *a, **k: None
    try:
        yield
    finally:
        du.check_font = saved


def _trainer_class():
    from ultralytics.models.yolo.detect import DetectionTrainer

    class WorldTrainer(DetectionTrainer):
        """No pickled checkpoints (the EMA is exported as safetensors), no reload of best.pt at the end."""

        def save_model(self):
            return False

        def final_eval(self):
            return None

    return WorldTrainer


# The world is drawn at one scale: no scale/shear/rotation, no flips (arrows and moons have a
# handedness), no mosaic (fresh scenes are cheaper than collages). A small translation shows grey
# letterbox borders and off-grid positions (so ultralytics' padded validation canvas is familiar);
# colour jitter keeps hue out of shape.
AUGMENT = dict(mosaic=0.0, mixup=0.0, cutmix=0.0, copy_paste=0.0, close_mosaic=0, fliplr=0.0, flipud=0.0,
               degrees=0.0, translate=0.1, scale=0.0, shear=0.0, perspective=0.0, hsv_h=0.015, hsv_s=0.4, hsv_v=0.3)


def train(out_dir: str | os.PathLike = ASSET_DIR, n_train: int = DEFAULTS["n_train"], epochs: int = DEFAULTS["epochs"],
          imgsz: int = DEFAULTS["imgsz"], seed: int = DEFAULTS["seed"], width: float = DEFAULTS["width"],
          depth: float = DEFAULTS["depth"], batch: int = DEFAULTS["batch"], lr0: float = DEFAULTS["lr0"],
          hard_frac: float = DEFAULTS["hard_frac"], n_val: int | None = 300, threads: int = 1,
          evaluate_after: bool = True, val_each_epoch: bool = False, workdir: str | os.PathLike | None = None, verbose: bool = True) -> dict:
    """Train world-yolo from scratch on freshly drawn scenes and export it to ``out_dir``.

    Everything ultralytics writes (images, labels, data yaml, run folder) lives in a temp dir
    (``workdir`` keeps it for inspection). ``n_val`` scenes of the builtin world-test split are the
    validation set ultralytics reports on after the last epoch (no model selection: the final EMA
    is exported); ``n_val=0`` skips it. Returns the metadata written to ``world_yolo.json``.
    """
    import torch
    import yaml

    torch.set_num_threads(threads)
    t_start = time.time()
    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="world_yolo_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.time()
        write_scenes(tmp / "train", n_train, (seed, TRAIN_SEED_TAG), hard_frac)
        if n_val:
            from halluc.world.builtin import split_dir
            split_to_yolo(split_dir("world-test", n=None if n_val == 300 else n_val), tmp / "val")
        else:
            write_scenes(tmp / "val", 4, (seed, VAL_SEED_TAG), prefix="v")
        t_data = time.time() - t0
        data = {"path": str(tmp), "train": "train/images", "val": "val/images", "names": dict(enumerate(CLASSES))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        cfg = model_cfg(width, depth)
        (tmp / "world_yolov8n.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        args = dict(model=str(tmp / "world_yolov8n.yaml"), data=str(tmp / "data.yaml"), epochs=epochs, imgsz=imgsz,
                    batch=batch, nbs=batch, workers=0, device="cpu", seed=seed, deterministic=True, amp=False,
                    plots=False, val=val_each_epoch, save=False, pretrained=False, project=str(tmp / "runs"), name="train",
                    exist_ok=True, optimizer="AdamW", lr0=lr0, lrf=0.05, cos_lr=False, warmup_epochs=min(1.0, epochs / 4),
                    warmup_bias_lr=0.0, patience=0, cache=False, verbose=verbose,
                    **AUGMENT)
        with _offline_ultralytics():
            trainer = _trainer_class()(overrides=args)
            t0 = time.time()
            trainer.train()
            t_train = time.time() - t0
        model = trainer.ema.ema
        ul_metrics = {k: round(float(v), 4) for k, v in (trainer.metrics or {}).items()}
        meta = {"name": NAME, "classes": list(CLASSES), "imgsz": imgsz,
                "recipe": {"n_train": n_train, "epochs": epochs, "imgsz": imgsz, "seed": seed, "width": width,
                           "depth": depth, "batch": batch, "lr0": lr0, "hard_frac": hard_frac, "threads": threads,
                           "optimizer": "AdamW", "lrf": 0.05, "augment": AUGMENT},
                "train_seconds": round(t_train, 1), "data_seconds": round(t_data, 1),
                "ultralytics_val": ul_metrics | {"split": "world-test" if n_val else "none", "n": n_val or 0}}
        meta["versions"] = _versions()
        meta = export(model, cfg, out_dir, meta)
        if evaluate_after:
            meta["eval"] = evaluate(out_dir, verbose=verbose)
            meta["total_seconds"] = round(time.time() - t_start, 1)
            _write_meta(Path(out_dir), meta)
        return meta
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)


def _versions() -> dict:
    import torch
    import ultralytics
    return {"ultralytics": ultralytics.__version__, "torch": torch.__version__}


def export(model, cfg: dict, out_dir: str | os.PathLike, meta: dict) -> dict:
    """The model's state_dict as fp16 safetensors, its yaml, and the metadata json (returned, with
    the weights' sha256 added)."""
    import torch
    import yaml
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous().cpu()
          for k, v in model.state_dict().items()}
    save_file(sd, str(out / WEIGHTS_FILE), metadata={"format": "pt", "classes": ",".join(CLASSES)})
    (out / YAML_FILE).write_text("# ultralytics yolov8.yaml (YOLOv8 layout), nc=12, classes of "
                                 "halluc.world.scene.CLASSES; built by detectors/world_yolo.py\n"
                                 + yaml.safe_dump(cfg, sort_keys=False))
    os.chmod(out / WEIGHTS_FILE, 0o644)
    meta = dict(meta, weights_sha256=_sha256(out / WEIGHTS_FILE))
    _write_meta(out, meta)
    return meta


def _write_meta(out: Path, meta: dict) -> None:
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=1) + "\n")


def _sha256(p: Path) -> str:
    return sha256_files([p])


# ---------------------------------------------------------------- the backend

class WorldYolo(BaseDetector):
    """Closed vocabulary (the 12 world shapes): a detection of class c answers every asked phrase
    naming c ("star", "stars", "a red star" — colour and size words are not checked: the detector
    sees shapes). Boxes in input-image pixels; thresholds by detectors.postprocess."""
    name = NAME

    def __init__(self, weights_dir: str | os.PathLike = ASSET_DIR, config: DetectorConfig | None = None,
                 nms_iou: float = 0.5, agnostic: bool = True, max_det: int = 100, batch_size: int = 64,
                 threads: int | None = None):
        super().__init__(config or DetectorConfig())
        import yaml
        from safetensors.torch import load_file
        d = Path(weights_dir)
        if not (d / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"world-yolo weights not found in {d} (train them: python -m detectors.world_yolo "
                                    f"train --out {d})")
        self.dir = d
        self.nms_iou, self.agnostic, self.max_det = float(nms_iou), bool(agnostic), int(max_det)
        self.batch_size, self.threads = int(batch_size), (int(threads) if threads else None)
        meta = json.loads((d / META_FILE).read_text()) if (d / META_FILE).exists() else {}
        cfg = yaml.safe_load((d / YAML_FILE).read_text())
        if list(cfg.get("names", CLASSES)) != list(CLASSES):
            raise ValueError(f"{d / YAML_FILE}: classes {cfg.get('names')} differ from the world's {list(CLASSES)}")
        self.imgsz = int(meta.get("imgsz", 128))
        self.weights_sha256 = _sha256(d / WEIGHTS_FILE)
        self.labels = world_label_map()
        model = _build_model(cfg)
        sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(d / WEIGHTS_FILE)).items()}
        model.load_state_dict(sd, strict=True)
        with _quiet():
            model = model.fuse(verbose=False)           # conv + batch-norm folded: faster, same outputs
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

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


# ---------------------------------------------------------------- evaluation

def evaluate(weights_dir: str | os.PathLike = ASSET_DIR, split: str = "world-test", fresh: int = 0,
             verbose: bool = True, threads: int = 1) -> dict:
    """mAP50 and mAP50-95 (COCO-style 101-point AP as ultralytics computes it: class-aware NMS,
    multi-label, conf 0.001, IoU 0.7) on a held-out set: the builtin world split ``split`` (default
    world-test, 300 scenes), or, with ``fresh=N``, N scenes drawn with a seed no training uses.
    Also per-class AP50, precision/recall of ``detect`` at the box threshold, and images/s."""
    import torch
    from ultralytics.utils.metrics import ap_per_class, box_iou
    det = load(str(weights_dir), threads=threads)
    with tempfile.TemporaryDirectory(prefix="world_yolo_eval_") as tmp:
        if fresh:
            d = write_scenes(Path(tmp) / "set", fresh, (0, VAL_SEED_TAG), hard_frac=0.0, prefix="v")
            name = f"fresh-{fresh}"
        else:
            from halluc.world.builtin import split_dir
            d = split_to_yolo(split_dir(split), Path(tmp) / "set")
            name = split
        from PIL import Image
        items = _read_yolo_set(d)
        images = [Image.open(p).convert("RGB") for p, _ in items]
    size = images[0].size[0]
    preds = det.predict(images, conf=0.001, iou=0.7, agnostic=False, multi_label=True)
    iouv = torch.linspace(0.5, 0.95, 10)
    tps, confs, pcls, tcls = [], [], [], []
    gts_total = 0
    for (_, lab), p in zip(items, preds):
        gt_boxes = torch.tensor(np.c_[lab[:, 1] - lab[:, 3] / 2, lab[:, 2] - lab[:, 4] / 2,
                                      lab[:, 1] + lab[:, 3] / 2, lab[:, 2] + lab[:, 4] / 2] * size, dtype=torch.float32)
        gt_cls = lab[:, 0].astype(int)
        order = np.argsort(-p[:, 4], kind="stable")
        p = p[order]
        correct = np.zeros((len(p), len(iouv)), bool)
        if len(p) and len(lab):
            iou = box_iou(gt_boxes, torch.tensor(p[:, :4], dtype=torch.float32)).numpy()
            iou = iou * (gt_cls[:, None] == p[:, 5].astype(int)[None])
            correct = _match(iou, iouv.numpy())
        tps.append(correct); confs.append(p[:, 4]); pcls.append(p[:, 5]); tcls.append(gt_cls)
        gts_total += len(lab)
    tp, conf, pc, tc = (np.concatenate(x, 0) for x in (tps, confs, pcls, tcls))
    res = ap_per_class(tp, conf, pc, tc, names=dict(enumerate(CLASSES)))
    ap, ap_class = res[5], res[6]
    per_class = {CLASSES[int(c)]: round(float(ap[i, 0]), 4) for i, c in enumerate(ap_class)}
    # speed: predictions at the operating point (the box threshold), one thread, batched
    t0 = time.time()
    at_threshold = det.predict(images)
    ips = len(images) / (time.time() - t0)
    op = operating_point(det, at_threshold, items, size)
    out = {"set": name, "n_images": len(images), "n_objects": int(gts_total),
           "mAP50": round(float(ap[:, 0].mean()), 4), "mAP50-95": round(float(ap.mean()), 4),
           "ap50_per_class": per_class, "operating_point": op,
           "images_per_s": round(ips, 1), "threads": threads, "batch_size": det.batch_size}
    if verbose:
        print(json.dumps(out, indent=1), flush=True)
    return out


def _match(iou: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """ultralytics' greedy matching (BaseValidator.match_predictions): detections in descending
    confidence each claim the best unclaimed ground truth of their class, per IoU threshold."""
    correct = np.zeros((iou.shape[1], len(thresholds)), bool)
    matched = np.zeros((iou.shape[0], len(thresholds)), bool)
    for j in np.flatnonzero((iou >= thresholds.min()).any(0)):
        available = np.where(matched, 0, iou[:, j, None])
        k = available.argmax(0)
        correct[j] = available[k, range(len(thresholds))] >= thresholds
        matched[k, range(len(thresholds))] |= correct[j]
    return correct


def operating_point(det: WorldYolo, preds: list[np.ndarray], items: list, size: int) -> dict:
    """Precision and recall (IoU 0.5, class must match) of ``det.predict`` at the box threshold (``preds``)."""
    tp = fp = n_gt = 0
    for (_, lab), p in zip(items, preds):
        gts = [(int(c), (cx - w / 2) * size, (cy - h / 2) * size, (cx + w / 2) * size, (cy + h / 2) * size)
               for c, cx, cy, w, h in lab]
        n_gt += len(gts)
        used = set()
        for x0, y0, x1, y1, _, k in p[np.argsort(-p[:, 4])]:
            best, bi = 0.5, None
            for gi, (c, *g) in enumerate(gts):
                if gi not in used and c == int(k):
                    v = box_iou_xyxy(g, (x0, y0, x1, y1))
                    if v >= best:
                        best, bi = v, gi
            if bi is None:
                fp += 1
            else:
                tp += 1
                used.add(bi)
    return {"box_threshold": det.config.box_threshold, "precision": round(tp / max(tp + fp, 1), 4),
            "recall": round(tp / max(n_gt, 1), 4), "false_positives": fp}


# ---------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    from halluc.command import Parser, at_least, number, seed
    from halluc.errors import BadInput
    ap = Parser(prog="python -m detectors.world_yolo", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train from scratch on the CPU and export safetensors")
    t.add_argument("--out", default=str(ASSET_DIR))
    t.add_argument("--config", default=None, help="a yaml with a 'recipe:' mapping (experiments/world_yolo.yaml)")
    kinds = {"seed": seed, "hard_frac": number(0, 1), "width": number(0, 4, lo_open=True),
             "depth": number(0, 4, lo_open=True), "lr0": number(0, 1, lo_open=True)}
    for k, v in DEFAULTS.items():
        t.add_argument(f"--{k.replace('_', '-')}", type=kinds.get(k, at_least(1) if isinstance(v, int) else
                                                                    number(0, lo_open=True)), default=v)
    t.add_argument("--threads", type=at_least(1), default=1)
    t.add_argument("--n-val", type=at_least(0), default=300, help="world-test scenes ultralytics validates on at the end")
    t.add_argument("--workdir", default=None, help="keep ultralytics' data and run folder here")
    t.add_argument("--val-each-epoch", action="store_true", help="validate after every epoch (slower)")
    e = sub.add_parser("eval", help="mAP50 / mAP50-95 on held-out scenes")
    e.add_argument("--weights", default=str(ASSET_DIR))
    e.add_argument("--split", default="world-test")
    e.add_argument("--fresh", type=at_least(0), default=0, help="evaluate on N freshly drawn scenes instead")
    e.add_argument("--threads", type=at_least(1), default=1)
    a = ap.parse_args(argv)
    if a.cmd == "train" and a.config:            # the yaml's recipe keys become defaults; flags still win
        from halluc.yamlfile import load_yaml
        doc = load_yaml(a.config, "--config") or {}
        rec = doc.get("recipe", {}) if isinstance(doc, dict) else None
        if not isinstance(rec, dict):
            raise BadInput(f"--config {a.config}: expected a mapping with a 'recipe:' mapping")
        unknown = set(rec) - {k for k in vars(a)}
        if unknown:
            raise BadInput(f"--config {a.config}: unknown recipe key(s) {', '.join(sorted(unknown))}")
        for k, v in rec.items():                 # the same checks as the flags: through the option's own type
            act = next(x for x in t._actions if x.dest == k)
            if act.type is not None:
                try:
                    rec[k] = act.type(str(v))
                except argparse.ArgumentTypeError as err:
                    raise BadInput(f"--config {a.config}: recipe.{k}: {err}") from None
        t.set_defaults(**rec)
        a = ap.parse_args(argv)
    if a.cmd == "train":
        from halluc.paths import output_dir
        output_dir(a.out, "--out")
        meta = train(a.out, n_train=a.n_train, epochs=a.epochs, imgsz=a.imgsz, seed=a.seed, width=a.width,
                     depth=a.depth, batch=a.batch, lr0=a.lr0, hard_frac=a.hard_frac, n_val=a.n_val,
                     threads=a.threads, workdir=a.workdir, val_each_epoch=a.val_each_epoch)
        print(json.dumps({k: meta[k] for k in ("train_seconds", "ultralytics_val", "eval") if k in meta}, indent=1))
    else:
        evaluate(a.weights, split=a.split, fresh=a.fresh, threads=a.threads)
    return 0


if __name__ == "__main__":
    from halluc.command import guard
    sys.exit(guard(lambda _: main())(argparse.Namespace()))
