"""Does contrastive decoding reduce the planted co-occurrence hallucination, and what does it cost?

    python experiments/vcd_bias.py [--model builtin|DIR] [--seeds 0 1 2] [--limit N] [--out runs/vcd_bias]

On the builtin world's bias split (300 scenes: a trigger visible, its partner absent) it decodes with
greedy, sampling, and VCD / ICD / M3ID at alpha in {0.5, 1, 2}, each in its greedy and its sampling
variant, for 3 seeds, through ``halluc decode`` (standard records, resumable: a rerun only fills what
is missing). Each run is scored with ``halluc.world.metrics.score_world``: CHAIR_s, CHAIR_i, recall and
the partner-hallucination rate. Output: ``results.json`` (per run and mean ± std over seeds),
``results.md`` (the table) and ``vcd_bias.png`` (metrics against alpha, baselines as lines).

Deterministic configurations (greedy, ICD/M3ID greedy) run once: their seeds would repeat them. For
M3ID, alpha scales its schedule alpha_t = alpha·(e^{0.02t} − 1) (alpha = 1 is the paper's).
experiments/vcd_bias.yaml records the configuration.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

METRICS = {"chair_s": "CHAIR_s", "chair_i": "CHAIR_i", "recall": "Recall", "partner_rate": "Partner"}
ALPHAS = (0.5, 1.0, 2.0)


def configs(alphas=ALPHAS) -> list[dict]:
    out = [{"name": "greedy", "method": "greedy", "set": [], "stochastic": False},
           {"name": "sample", "method": "sample", "set": [], "stochastic": True}]
    for m in ("vcd", "icd", "m3id"):
        for greedy in (True, False):
            for a in alphas:
                out.append({"name": f"{m}-{'greedy' if greedy else 'sample'}-a{a:g}", "method": m, "alpha": a,
                            "variant": "greedy" if greedy else "sample",
                            "set": [f"alpha={a:g}", f"greedy={str(greedy).lower()}"],
                            # VCD's noise depends on the seed even with argmax
                            "stochastic": (not greedy) or m == "vcd"})
    return out


def run_one(cfg, seed, args, out_dir: Path) -> Path:
    from halluc.decode import main as decode
    path = out_dir / f"{cfg['name']}-s{seed}.jsonl"
    argv = ["decode", "--method", cfg["method"], "--model", args.model, "--dataset", "world-bias", "--seed", str(seed),
            "--out", str(path), "--batch-size", str(args.batch_size), "--max-new-tokens", str(args.max_new_tokens),
            "--no-progress"]
    for s in cfg["set"]:
        argv += ["--set", s]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    if args.cpu_onednn:
        argv += ["--cpu-onednn"]
    rc = decode(argv)
    if rc != 0:
        raise SystemExit(f"halluc decode failed ({rc}): {' '.join(argv)}")
    return path


def score(path: Path, scenes: dict) -> dict:
    from halluc.world.metrics import score_world
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    return score_world([(r["id"], r["image_id"], r["text"]) for r in recs], scenes).totals


def summarise(rows: list[dict]) -> dict:
    out = {}
    for k in METRICS:
        vals = [r[k] for r in rows]
        out[k] = statistics.mean(vals)
        out[k + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    out["n_seeds"] = len(rows)
    return out


def table(results: list[dict]) -> str:
    head = "| config | " + " | ".join(METRICS.values()) + " | seeds |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for r in results:
        s = r["summary"]
        cells = [f"{s[k]:.1f} ± {s[k + '_std']:.1f}" for k in METRICS]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + f" | {s['n_seeds']} |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    by = {r["name"]: r["summary"] for r in results}
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
    colours = {"vcd": "C0", "icd": "C1", "m3id": "C2"}
    for ax, (k, label) in zip(axes, METRICS.items()):
        for base, style in (("greedy", "-"), ("sample", "--")):
            if base in by:
                ax.axhline(by[base][k], color="grey", linestyle=style, label=f"{base} baseline")
        for m, c in colours.items():
            for variant, style in (("greedy", "-"), ("sample", "--")):
                pts = [(a, by[f"{m}-{variant}-a{a:g}"]) for a in ALPHAS if f"{m}-{variant}-a{a:g}" in by]
                if pts:
                    ax.errorbar([a for a, _ in pts], [s[k] for _, s in pts], yerr=[s[k + "_std"] for _, s in pts],
                                color=c, linestyle=style, marker="o", capsize=3, label=f"{m} ({variant})")
        ax.set_xlabel("alpha")
        ax.set_title(label + " (%)")
        ax.set_xticks(ALPHAS)
    axes[0].legend(fontsize=7)
    fig.suptitle("Contrastive decoding on the world bias split (partner absent)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--limit", type=int, help="first N scenes only (a smoke run)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--only", nargs="+", help="config names to run (default: all)")
    ap.add_argument("--cpu-onednn", action="store_true", help="pass --cpu-onednn to halluc decode")
    ap.add_argument("--threads", type=int, help="torch CPU threads (use 1 beside another CPU job)")
    ap.add_argument("--out", type=Path, default=Path("runs/vcd_bias"))
    args = ap.parse_args()
    import torch
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    from halluc.records import atomic_write_json, atomic_write_text
    from halluc.world.builtin import split_dir
    from halluc.world.metrics import load_scenes
    scenes = load_scenes(split_dir("world-bias"))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = []
    for cfg in configs():
        if args.only and cfg["name"] not in args.only:
            continue
        runs = []
        for seed in (args.seeds if cfg["stochastic"] else args.seeds[:1]):
            path = run_one(cfg, seed, args, args.out)
            runs.append({"seed": seed, "file": str(path), **score(path, scenes)})
        res = {**{k: v for k, v in cfg.items() if k != "set"}, "set": cfg["set"], "runs": runs,
               "summary": summarise(runs)}
        results.append(res)
        s = res["summary"]
        print(f"{cfg['name']:<20} " + "  ".join(f"{METRICS[k]} {s[k]:5.1f}±{s[k + '_std']:4.1f}" for k in METRICS)
              + f"  ({time.time() - t0:.0f}s)", flush=True)
    atomic_write_json(args.out / "results.json", {"model": args.model, "seeds": args.seeds, "limit": args.limit,
                                                  "max_new_tokens": args.max_new_tokens, "results": results})
    atomic_write_text(args.out / "results.md", table(results))
    if plot(results, args.out / "vcd_bias.png"):
        print(f"wrote {args.out / 'vcd_bias.png'}")
    print(f"wrote {args.out / 'results.json'}, results.md ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
