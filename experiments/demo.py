"""`make demo` (for now): score the published LLaVA-1.5 outputs bundled in ../shared/data with
CHAIR (both normalisers) and POPE (three splits), and print the tables.

    python experiments/demo.py            # SHARED=/path/to/shared overrides ../shared

Later issues turn this into the full pipeline (decode -> correct -> score) on the controlled world.
"""
import json
import os
import sys
from pathlib import Path

from halluc.cli import main

shared = Path(os.environ.get("SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
ref = shared / "reference-outputs"
if not ref.is_dir():
    sys.exit(f"demo: reference outputs not found under {ref}; set SHARED=/path/to/shared")
out = Path("runs/demo")

rows = []
for variant in ("singularize", "lemma"):
    assert main(["eval", "chair", str(ref / "shield_llava15_chair.jsonl"), "--variant", variant,
                 "--out-dir", str(out / f"chair-{variant}")]) == 0
    rows.append(json.loads((out / f"chair-{variant}/results.json").read_text()))
    print()
for split in ("random", "popular", "adversarial"):
    assert main(["eval", "pope", str(ref / f"shield_llava15_pope_{split}.jsonl"), "--questions", f"coco-{split}",
                 "--parser", "vcd", "--out-dir", str(out / f"pope-{split}")]) == 0
    print()

print("LLaVA-1.5-7B (SHIELD's published outputs), CHAIR on 500 COCO val2014 images:")
print(f"{'variant':<12} {'CHAIR_s':>8} {'CHAIR_i':>8} {'Recall':>7} {'Len':>6}")
for r in rows:
    print(f"{r['variant']:<12} {r['chair_s']:8.2f} {r['chair_i']:8.2f} {r['recall']:7.2f} {r['len']:6.1f}")
print("\nPOPE (vcd parser):")
print(f"{'split':<12} {'Acc':>6} {'Prec':>6} {'Rec':>6} {'F1':>6} {'Yes%':>6}")
for split in ("random", "popular", "adversarial"):
    r = json.loads((out / f"pope-{split}/results.json").read_text())
    print(f"{split:<12} {r['accuracy']:6.2f} {r['precision']:6.2f} {r['recall']:6.2f} {r['f1']:6.2f} {r['yes_ratio']:6.2f}")
print(f"\nper-record scores and run manifests under {out}/")
