"""An experiment's report: the markdown table (mean ± std over seeds), and plots (CHAIR_i against recall,
and each swept parameter against CHAIR_i and recall). Column titles come from the registry.

    md = markdown(results); paths = plots(results, out)
"""
from __future__ import annotations

import sys
from pathlib import Path

from halluc.registry import title

COLUMNS = ("chair_s", "chair_i", "recall", "partner_rate", "attribute_error", "relation_error")
SHORT = {"random": "rand", "popular": "pop", "adversarial": "adv"}


def _cell(r: dict, k: str, digits: int = 1) -> str:
    if k not in r["mean"]:
        return "—"
    m = f"{r['mean'][k]:.{digits}f}"
    return m if r["n_seeds"] == 1 else f"{m} ± {r['std'][k]:.{digits}f}"


def table(rows: list[dict], splits: list[str], pope: bool = True) -> str:
    cols = [(title(k), k) for k in COLUMNS] + ([(f"POPE F1 {SHORT[s]}", f"pope_{s}_f1") for s in splits] if pope else [])
    head = ["method", *(c for c, _ in cols), "s/caption", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in rows:
        seeds = "1 (deterministic)" if r["deterministic"] else str(r["n_seeds"])
        lines.append("| " + " | ".join([r["name"], *(_cell(r, k) for _, k in cols), _cell(r, "s_per_caption", 3),
                                        seeds]) + " |")
    return "\n".join(lines) + "\n"


def plots(results: dict, out: Path) -> list[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'halluc[experiments]')", file=sys.stderr)
        return []
    written = []
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for i, r in enumerate(results["rows"]):
        m, s = r["mean"], r["std"]
        ax.errorbar(m["recall"], m["chair_i"], xerr=s["recall"], yerr=s["chair_i"], fmt="osD^vP<>*X"[i % 10],
                    capsize=3, color=f"C{i % 10}", alpha=0.8, label=r["name"])
        ax.annotate(r["name"], (m["recall"], m["chair_i"]), textcoords="offset points", xytext=(5, 4 + 7 * (i % 2)),
                    fontsize=7, color=f"C{i % 10}")
    ax.set_xlabel("recall (%)")
    ax.set_ylabel("CHAIR_i (%)")
    ax.set_title(f"{results['experiment']}: CHAIR_i against recall (mean ± std over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "chair_vs_recall.png", dpi=120)
    plt.close(fig)
    written.append(out / "chair_vs_recall.png")
    by_param: dict[str, list] = {}
    for name, rows in results["sweeps"].items():          # sweeps of one parameter share one figure
        by_param.setdefault(rows[0]["param"], []).append((name, rows))
    for param, sweeps in by_param.items():
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, k, label in ((axes[0], "chair_i", "CHAIR_i (%)"), (axes[1], "recall", "recall (%)")):
            for name, rows in sweeps:
                ax.errorbar([r["value"] for r in rows], [r["mean"][k] for r in rows], yerr=[r["std"][k] for r in rows],
                            marker="o", capsize=3, label=name)
            base = next((r for r in results["rows"] if r["method"] == "greedy" and r["model"] == "base"
                         and not r["correct"]), None)
            if base:
                ax.axhline(base["mean"][k], color="grey", linestyle="--", label=base["name"])
            ax.set_xlabel(param)
            ax.set_ylabel(label)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{results['experiment']}: {', '.join(n for n, _ in sweeps)} against {param}", fontsize=9)
        fig.tight_layout()
        path = out / f"chair_vs_{param}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def markdown(results: dict) -> str:
    cfg, p = results["config"], results["config"]["pope"]
    base = results["provenance"]["models"].get("base", {})
    lim = results["limits"]
    every = results["rows"] + [r for rows in results["sweeps"].values() for r in rows]
    pope, correct = any(r["pope"] for r in every), any(r["correct"] for r in every)
    md = [f"# {results['experiment']}" + (f": {cfg['description'].strip()}" if cfg.get("description") else ""), "",
          f"Model `{cfg['model']}` (weights sha256 {str(base.get('weights_sha256'))[:12]}); captions: "
          f"{cfg['captions']['dataset']}, {lim['captions'] or 'all'} scenes"
          + (f"; POPE: {lim['pope'] or 'all'} questions per split, {p['parser']} parser" if pope else "")
          + (f"; correction: {cfg['correct']['detector']}" if correct else "") + ". Percentages; "
          + (f"mean ± std over seeds {', '.join(map(str, results['seeds']))}. Deterministic rows (greedy decoding) "
             "give the same output for every seed and run once." if len(results["seeds"]) > 1
             else f"seed {results['seeds'][0]}."), "",
          table(results["rows"], p["splits"], pope=any(r["pope"] for r in results["rows"])),
          "Partner: the planted partner named while absent (trigger visible)."
          + (" A corrected row's POPE is its decoder's (the corrector edits captions, not yes/no answers)."
             if pope and correct else "")
          + " s/caption: decoding" + (" (+ correcting, detector included)" if correct else "")
          + " time per caption on this machine, model loading left out."]
    for name, rows in results["sweeps"].items():
        md += ["", f"## {name}: sweep of {rows[0]['param']}", "", table(rows, p["splits"], pope=any(r["pope"] for r in rows))]
    prov = results["provenance"]
    md += ["", f"git {prov['git']}; {', '.join(f'{k} {v}' for k, v in prov['versions'].items())}; "
               f"{results['seconds']:.0f} s ({results['stages']['run']} stages run, {results['stages']['skipped']} "
               f"reused). Command: `{results['command']}`."]
    return "\n".join(md) + "\n"
