"""world-yolo's recipe: train an ultralytics YOLOv8 detector for the controlled world on the CPU, and evaluate it.

    halluc world train-detector --out halluc/assets/world_yolo                          # the recipe (one CPU thread)
    python -m halluc.world.detector_train train --config experiments/world_yolo.yaml    # the same, from a recipe yaml
    python -m halluc.world.detector_train eval [--split world-bias-hard | --fresh 500]  # mAP50 / mAP50-95

The backend that loads the result (and builds the model yaml, ``model_cfg``) is halluc/world/detector.py;
the model is trained from scratch (no pretrained weights, nothing downloaded). Data: scenes drawn
with the world's sampler and renderer under a seed no evaluation split uses (``SeedSequence((seed,
TRAIN_SEED_TAG))``), with the co-occurrence rule off (classes drawn independently) so that the
detector cannot learn "a moon goes with a star": its evidence must be pixels, which is what a
verifier of captions needs; a share of the scenes has the bias-hard look (smaller, fainter). Recipe:
imgsz 128, 8 epochs x 4,000 scenes, AdamW, translate + HSV jitter only; ~11 minutes on one CPU
thread, deterministic (same versions -> same sha256). ultralytics is AGPL-3.0: see the asset README.
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

from detectors.postprocess import iou as box_iou_xyxy
from detectors.yolo_folder import import_ultralytics
from halluc.outputs import atomic_write_text
from halluc.provenance import sha256_files
from halluc.world.detector import ASSET_DIR, META_FILE, NAME, WEIGHTS_FILE, YAML_FILE, WorldYolo, load, model_cfg
from halluc.world.scene import CLASSES, WorldConfig, render, sample_scene

TRAIN_SEED_TAG = 70170          # training scenes: SeedSequence((seed, TRAIN_SEED_TAG)); eval splits use plain ints
VAL_SEED_TAG = 70171            # the fresh held-out set drawn by ``evaluate(..., fresh=N)``

# The recipe's defaults: what produced the committed weights (see the asset README).
DEFAULTS = dict(n_train=4000, epochs=8, imgsz=128, width=0.25, depth=0.33, batch=32, lr0=0.002,
                hard_frac=0.25, seed=0)


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


def _write_data(tmp: Path, n_train: int, seed: int, hard_frac: float, n_val: int | None) -> None:
    """Training scenes, the validation set (world-test, or 4 fresh scenes when ``n_val`` is 0) and data.yaml."""
    import yaml
    write_scenes(tmp / "train", n_train, (seed, TRAIN_SEED_TAG), hard_frac)
    if n_val:
        from halluc.world.builtin import split_dir
        split_to_yolo(split_dir("world-test", n=None if n_val == 300 else n_val), tmp / "val")
    else:
        write_scenes(tmp / "val", 4, (seed, VAL_SEED_TAG), prefix="v")
    data = {"path": str(tmp), "train": "train/images", "val": "val/images", "names": dict(enumerate(CLASSES))}
    (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


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
        _write_data(tmp, n_train, seed, hard_frac, n_val)
        t_data = time.time() - t0
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
        ul_metrics = {k: round(float(v), 4) for k, v in (trainer.metrics or {}).items()}
        meta = {"name": NAME, "classes": list(CLASSES), "imgsz": imgsz,
                "recipe": {"n_train": n_train, "epochs": epochs, "imgsz": imgsz, "seed": seed, "width": width,
                           "depth": depth, "batch": batch, "lr0": lr0, "hard_frac": hard_frac, "threads": threads,
                           "optimizer": "AdamW", "lrf": 0.05, "augment": AUGMENT},
                "train_seconds": round(t_train, 1), "data_seconds": round(t_data, 1),
                "ultralytics_val": ul_metrics | {"split": "world-test" if n_val else "none", "n": n_val or 0}}
        import ultralytics
        meta["versions"] = {"ultralytics": ultralytics.__version__, "torch": torch.__version__}
        meta = export(trainer.ema.ema, cfg, out_dir, meta)
        if evaluate_after:
            meta["eval"] = evaluate(out_dir, verbose=verbose)
            meta["total_seconds"] = round(time.time() - t_start, 1)
            atomic_write_text(Path(out_dir) / META_FILE, json.dumps(meta, indent=1) + "\n")
        return meta
    finally:
        if not workdir:
            shutil.rmtree(tmp, ignore_errors=True)


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
    # The header names the module's former home, kept so that a rerun reproduces the committed yaml.
    (out / YAML_FILE).write_text("# ultralytics yolov8.yaml (YOLOv8 layout), nc=12, classes of "
                                 "halluc.world.scene.CLASSES; built by detectors/world_yolo.py\n"
                                 + yaml.safe_dump(cfg, sort_keys=False))
    os.chmod(out / WEIGHTS_FILE, 0o644)
    meta = dict(meta, weights_sha256=sha256_files([out / WEIGHTS_FILE]))
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=1) + "\n")
    return meta


# ---------------------------------------------------------------- evaluation
def _eval_set(split: str, fresh: int, tmp: Path):
    """(set name, [(image path, labels)], RGB images) of the held-out set ``evaluate`` scores."""
    from PIL import Image
    if fresh:
        d = write_scenes(tmp / "set", fresh, (0, VAL_SEED_TAG), hard_frac=0.0, prefix="v")
        name = f"fresh-{fresh}"
    else:
        from halluc.world.builtin import split_dir
        d = split_to_yolo(split_dir(split), tmp / "set")
        name = split
    items = _read_yolo_set(d)
    return name, items, [Image.open(p).convert("RGB") for p, _ in items]


def _average_precision(items: list, preds: list[np.ndarray], size: int):
    """ultralytics' ap_per_class over all images: (AP per class x IoU threshold, class ids, ground truths)."""
    import torch
    from ultralytics.utils.metrics import ap_per_class, box_iou
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
    return res[5], res[6], gts_total


def evaluate(weights_dir: str | os.PathLike = ASSET_DIR, split: str = "world-test", fresh: int = 0,
             verbose: bool = True, threads: int = 1) -> dict:
    """mAP50 and mAP50-95 (COCO-style 101-point AP as ultralytics computes it: class-aware NMS,
    multi-label, conf 0.001, IoU 0.7) on a held-out set: the builtin world split ``split`` (default
    world-test, 300 scenes), or, with ``fresh=N``, N scenes drawn with a seed no training uses.
    Also per-class AP50, precision/recall of ``detect`` at the box threshold, and images/s."""
    det = load(str(weights_dir), threads=threads)
    with tempfile.TemporaryDirectory(prefix="world_yolo_eval_") as tmp:
        name, items, images = _eval_set(split, fresh, Path(tmp))
    size = images[0].size[0]
    preds = det.predict(images, conf=0.001, iou=0.7, agnostic=False, multi_label=True)
    ap, ap_class, gts_total = _average_precision(items, preds, size)
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
def _parser():
    """(the parser, its ``train`` subparser); train's flags default to the recipe's DEFAULTS."""
    from halluc.command import Parser, at_least, number, seed
    ap = Parser(prog="python -m halluc.world.detector_train", description=__doc__.split("\n\n")[0])
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
    return ap, t


def _recipe_defaults(t, a) -> None:
    """The ``--config`` yaml's recipe keys become ``t``'s defaults (flags still win), checked as the flags are."""
    from halluc.errors import BadInput
    from halluc.yamlfile import load_yaml
    doc = load_yaml(a.config, "--config") or {}
    rec = doc.get("recipe", {}) if isinstance(doc, dict) else None
    if not isinstance(rec, dict):
        raise BadInput(f"--config {a.config}: expected a mapping with a 'recipe:' mapping")
    unknown = set(rec) - {k for k in vars(a)}
    if unknown:
        raise BadInput(f"--config {a.config}: unknown recipe key(s) {', '.join(sorted(unknown))}")
    for k, v in rec.items():
        act = next(x for x in t._actions if x.dest == k)
        if act.type is not None:
            try:
                rec[k] = act.type(str(v))
            except argparse.ArgumentTypeError as err:
                raise BadInput(f"--config {a.config}: recipe.{k}: {err}") from None
    t.set_defaults(**rec)


def main(argv: list[str] | None = None) -> int:
    """``train [--config YAML] [flags]`` or ``eval [--weights DIR] [--split NAME | --fresh N]``."""
    ap, t = _parser()
    a = ap.parse_args(argv)
    if a.cmd == "train" and a.config:
        _recipe_defaults(t, a)
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
