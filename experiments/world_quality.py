"""Quality of a world VLM on held-out scenes: does it see, and does it hallucinate for the planted reason?

    python experiments/world_quality.py [--model builtin|DIR] [--n 300] [--out runs/world_quality.json]

Greedy captions on the test, bias, control and bias-hard splits (n scenes each), scored with
`halluc.world.metrics`; POPE (random, popular, adversarial) answers scored with the strict parser.
Targets (issue 3): test recall >= 90 and attribute accuracy >= 80; POPE random accuracy >= 85;
partner rate on bias (or bias-hard) >= 10 % and >= 3x the partner class's rate where its trigger is absent.
"""
import argparse
import json
import time
from pathlib import Path

from PIL import Image

from halluc.metrics.pope import score_pope
from halluc.models import generate_greedy, load
from halluc.world.builtin import split_dir
from halluc.world.metrics import load_scenes, score_world


def batched(xs, n):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def caption_split(model, processor, name, n, bs):
    d = split_dir(name, n)
    scenes = load_scenes(d)
    items = []
    for chunk in batched(list(scenes.values()), bs):
        imgs = [Image.open(Path(d) / s["image"]).convert("RGB") for s in chunk]
        for s, t in zip(chunk, generate_greedy(model, processor, imgs, ["describe the image ."] * len(chunk))):
            items.append((s["id"], s["image_id"], t))
    return score_world(items, scenes), items


def pope(model, processor, kind, n, bs):
    d = split_dir("world-pope", n)
    qs = [json.loads(l) for l in open(Path(d) / f"pope_{kind}.jsonl")]
    answers = {}
    for chunk in batched(qs, bs):
        imgs = [Image.open(Path(d) / q["image"]).convert("RGB") for q in chunk]
        for q, a in zip(chunk, generate_greedy(model, processor, imgs, [q["text"] for q in chunk], max_new_tokens=3)):
            answers[str(q["question_id"])] = a
    return score_pope(answers, {str(q["question_id"]): q for q in qs}, "strict").totals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--out", default="runs/world_quality.json")
    args = ap.parse_args()
    t0 = time.time()
    model, processor, _ = load(args.model)
    report = {"model": args.model}
    for name in ("world-test", "world-bias", "world-control", "world-bias-hard"):
        res, items = caption_split(model, processor, name, args.n, args.batch_size)
        report[name] = res.totals
        report[name]["examples"] = [t for _, _, t in items[:3]]
        t = res.totals
        print(f"{name:16s} CHAIR_s {t['chair_s']:5.1f} CHAIR_i {t['chair_i']:5.1f} recall {t['recall']:5.1f} "
              f"partner {t['partner_rate']:5.1f} (n={t['n_partner_eligible']}) control {t['partner_rate_control']:5.1f} "
              f"attr_err {t['attribute_error']:5.1f} rel_err {t['relation_error']:5.1f} count_err {t['count_error']:5.1f}")
    for kind in ("random", "popular", "adversarial"):
        t = pope(model, processor, kind, args.n, args.batch_size)
        report[f"pope-{kind}"] = t
        print(f"POPE {kind:12s} acc {t['accuracy']:5.1f} F1 {t['f1']:5.1f} yes {t['yes_ratio']:5.1f} unknown {t['unknown']}")
    report["seconds"] = round(time.time() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} ({report['seconds']}s)")


if __name__ == "__main__":
    main()
