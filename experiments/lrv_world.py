"""Do LRV-style negative instructions cure the planted co-occurrence hallucination? (issue 6, section 3)

    python experiments/lrv_world.py [--model builtin] [--steps 500] [--n 300] [--out runs/lrv_world]
    python experiments/lrv_world.py --steps 5 --n 20 --train-images 50 --out /tmp/lrv_smoke     # smoke test

On the controlled world:
1. ``halluc negatives`` on the world's training scenes writes two instruction sets from the same images,
   seed and description share: positives + negatives (``--neg-ratio``, LRV's three families) and, as the
   control, positives only;
2. ``halluc finetune`` trains the model on each for the same number of steps (LoRA by default, LRV's
   recipe; same seed, learning rate and batch size);
3. before and after, for both: POPE accuracy, F1 and yes-ratio on the world's random, popular and
   adversarial splits (strict parser), and CHAIR_s / CHAIR_i / recall / partner rate of greedy captions
   on the biased caption split (world-bias) -- with ``experiments/world_quality.py``'s functions.

Target: adversarial POPE F1 >= 10 points above the control, caption recall no more than 3 points below
the model before fine-tuning. Writes results.json and results.md (the table) in --out; every stage is
kept (data/, ft-lrv/, ft-pos/, eval-*.json), so a rerun only does what is missing or stale (another
checkpoint, other data or arguments); --overwrite redoes everything.
experiments/lrv_world.yaml records the configuration.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from world_quality import caption_split, pope  # noqa: E402  (the existing evaluation, reused)

POPE_KINDS = ("random", "popular", "adversarial")
CAPTION_SPLIT = "world-bias"
ARMS = {"lrv": "positives + negatives", "pos": "positives only (control)"}


def make_data(args, out: Path) -> dict[str, Path]:
    from halluc.negatives import main as negatives
    paths = {}
    for arm, ratio in (("lrv", args.neg_ratio), ("pos", 0.0)):
        path = out / "data" / arm / "train.jsonl"
        argv = ["negatives", "--world", args.world, "--out", str(path), "--neg-ratio", str(ratio),
                "--caption-share", str(args.caption_share), "--per-image", str(args.per_image),
                "--families", args.families, "--sampling", args.sampling, "--positives", args.positives,
                "--seed", str(args.seed)]
        if args.train_images:
            argv += ["--limit", str(args.train_images)]
        if args.overwrite:
            argv += ["--overwrite"]
        if negatives(argv) != 0:
            raise SystemExit(f"halluc negatives failed: {' '.join(argv)}")
        paths[arm] = path
    return paths


def fingerprint(model_id: str) -> str:
    """sha256 of a model's weights (the id itself for a hub id): a cached result is reused only for the
    same checkpoint."""
    from halluc.models import weights_sha256
    return weights_sha256(model_id) or model_id


def train(args, arm: str, data: Path, out: Path) -> Path:
    from halluc.finetune import main as finetune
    from halluc.records import atomic_write_json
    d = out / f"ft-{arm}"
    argv = ["finetune", "--model", args.model, "--data", str(data), "--out", str(d), "--steps", str(args.steps),
            "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--no-progress",
            "--logging-steps", str(max(1, args.steps // 10))]
    argv += ["--full"] if args.full else ["--lora", args.lora]
    if args.lr:
        argv += ["--lr", str(args.lr)]
    if args.train_projector and not args.full:
        argv += ["--train-projector"]
    # what the trained model depends on: the base weights, the data and the finetune command (evaluation-only
    # flags such as --n or --threads do not force retraining)
    key = {"base": fingerprint(args.model), "data": [data.stat().st_size, data.stat().st_mtime_ns], "argv": argv}
    stamp = out / f"ft-{arm}.key.json"
    if (d / "finetune.json").exists() and (d / "model.safetensors").exists() and not args.overwrite \
            and stamp.exists() and json.loads(stamp.read_text()) == key:
        print(f"[{arm}] {d} is up to date: not retrained", file=sys.stderr)
        return d
    if finetune(argv) != 0:
        raise SystemExit(f"halluc finetune failed: {' '.join(argv)}")
    atomic_write_json(stamp, key)
    return d


def evaluate(model_id: str, name: str, args, out: Path) -> dict:
    path = out / f"eval-{name}.json"
    fp = fingerprint(model_id)
    if path.exists() and not args.overwrite:
        rec = json.loads(path.read_text())
        if rec.get("n") == args.n and rec.get("model") == model_id and rec.get("fingerprint") == fp:
            return rec
    from halluc.models import load
    from halluc.records import atomic_write_json
    t0 = time.time()
    model, processor, _ = load(model_id)
    rec = {"model": model_id, "n": args.n, "fingerprint": fp}
    for kind in POPE_KINDS:
        rec[f"pope-{kind}"] = pope(model, processor, kind, args.n, args.eval_batch_size)
    res, items = caption_split(model, processor, CAPTION_SPLIT, args.n, args.eval_batch_size)
    rec[CAPTION_SPLIT] = res.totals
    rec["examples"] = [t for _, _, t in items[:3]]
    rec["seconds"] = round(time.time() - t0, 1)
    atomic_write_json(path, rec)
    t = rec[CAPTION_SPLIT]
    print(f"[{name}] POPE adv F1 {rec['pope-adversarial']['f1']:.1f} yes {rec['pope-adversarial']['yes_ratio']:.1f} | "
          f"{CAPTION_SPLIT} CHAIR_i {t['chair_i']:.1f} recall {t['recall']:.1f} partner {t['partner_rate']:.1f} "
          f"({rec['seconds']}s)", file=sys.stderr)
    return rec


def table(rows: dict[str, dict]) -> str:
    head = ["model"] + [f"{k[:3]} {m}" for k in POPE_KINDS for m in ("acc", "F1", "yes%")] + \
           ["CHAIR_s", "CHAIR_i", "recall", "partner%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        cells = [name]
        for k in POPE_KINDS:
            p = r[f"pope-{k}"]
            cells += [f"{p['accuracy']:.1f}", f"{p['f1']:.1f}", f"{p['yes_ratio']:.1f}"]
        c = r[CAPTION_SPLIT]
        cells += [f"{c['chair_s']:.1f}", f"{c['chair_i']:.1f}", f"{c['recall']:.1f}", f"{c['partner_rate']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--world", default="world-train", help="training scenes (builtin split or folder)")
    ap.add_argument("--train-images", type=int, default=2000, help="training scenes used (default %(default)s)")
    ap.add_argument("--neg-ratio", type=float, default=0.4, help="negatives / all records in the LRV arm")
    ap.add_argument("--caption-share", type=float, default=0.2, help="descriptions / all records (both arms)")
    ap.add_argument("--per-image", type=int, default=4)
    # nonexistent-object "no" (0.4 x 2/4 = 20 % of records) against existence "yes" (0.4 x 2/5 = 16 %)
    ap.add_argument("--families", default="nonexistent=2,existent=1,knowledge=1")
    ap.add_argument("--sampling", default="random=1,popular=1,adversarial=2")
    ap.add_argument("--positives", default="existence=2,attribute=1,count=1,relation=1")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3, help="LoRA: 1e-3 (2e-3 cost 8 points of caption recall in a "
                    "300-step probe)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--lora", default="r=8,alpha=32,dropout=0.05,targets=q_proj,v_proj")
    mode.add_argument("--full", action="store_true")
    ap.add_argument("--train-projector", action="store_true")
    ap.add_argument("--n", type=int, default=300, help="evaluation scenes per split (default %(default)s)")
    ap.add_argument("--eval-batch-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/lrv_world"))
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    import torch
    from halluc.records import atomic_write_json, atomic_write_text
    torch.set_num_threads(args.threads)
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    data = make_data(args, args.out)
    rows = {"before": evaluate(args.model, "before", args, args.out)}
    ft = {}
    for arm in ("pos", "lrv"):
        d = train(args, arm, data[arm], args.out)
        ft[arm] = json.loads((d / "finetune.json").read_text())
        rows[f"after: {ARMS[arm]}"] = evaluate(str(d), f"ft-{arm}", args, args.out)
    lrv, pos, before = rows[f"after: {ARMS['lrv']}"], rows[f"after: {ARMS['pos']}"], rows["before"]
    gap = lrv["pope-adversarial"]["f1"] - pos["pope-adversarial"]["f1"]
    recall_drop = before[CAPTION_SPLIT]["recall"] - lrv[CAPTION_SPLIT]["recall"]
    verdict = {"adversarial_f1_gain_over_control": round(gap, 2), "target_f1_gain": 10.0,
               "caption_recall_drop": round(recall_drop, 2), "max_recall_drop": 3.0,
               "met": bool(gap >= 10.0 and recall_drop <= 3.0)}
    md = table(rows)
    res = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "results": rows, "finetune": {a: {k: v for k, v in f.items() if k != "log"} for a, f in ft.items()},
           "verdict": verdict, "seconds": round(time.time() - t0, 1)}
    atomic_write_json(args.out / "results.json", res)
    note = (f"\nadversarial POPE F1, LRV - control: {gap:+.1f} (target >= +10); caption recall on {CAPTION_SPLIT}, "
            f"before - LRV: {recall_drop:+.1f} (target <= 3); {'met' if verdict['met'] else 'NOT met'}.\n")
    atomic_write_text(args.out / "results.md", f"# LRV negatives on the controlled world\n\n{md}\n{note}")
    print(md + note)
    print(f"wrote {args.out}/results.json, results.md ({res['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
