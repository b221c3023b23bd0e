"""`make demo`: the pipeline on the controlled world, end to end, then the metrics against published numbers.

    python experiments/demo.py            # SHARED=/path/to/shared overrides ../shared

1. ``halluc experiment run experiments/demo.yaml --out runs/demo/world``: the builtin model captions the
   first 100 scenes of the world's bias split greedily and with VCD, both sets are corrected
   Woodpecker-style (world-yolo), and everything is scored: CHAIR, recall, partner rate, attribute and
   relation errors, POPE F1 on 100 questions per split, seconds per caption. Prints the table.
2. Parity (when ../shared/data is there, a few seconds): CHAIR (every protocol) and POPE of SHIELD's
   published LLaVA-1.5-7B outputs, which must give the published CHAIR_s 36.60 / CHAIR_i 10.30 and
   POPE random accuracy 91.37 / F1 91.18; and OPERA's greedy log under --protocol opera (45.00 / 12.73).
3. Prints the ``halluc view …`` command that opens the corrected captions in the viewer.

A rerun reuses every finished stage (runs/demo/world/*/stage.json); delete runs/demo to start afresh.
"""
import contextlib
import io
import json
import os
import shlex
import sys
import time
from pathlib import Path

from halluc.cli import main as halluc

ROOT = Path(__file__).resolve().parents[1]
OUT = Path("runs/demo")
t0 = time.perf_counter()

rc = halluc(["experiment", "run", os.path.relpath(ROOT / "experiments" / "demo.yaml"), "--out", str(OUT / "world")])
if rc != 0:
    sys.exit(rc)
world = json.loads((OUT / "world" / "results.json").read_text())

shared = Path(os.environ.get("SHARED", ROOT.parent / "shared")) / "data"
ref = shared / "reference-outputs"
if ref.is_dir():
    t1 = time.perf_counter()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):      # each command prints its own table; one summary below
        for protocol in ("chair", "opera", "halc"):
            assert halluc(["eval", "chair", str(ref / "shield_llava15_chair.jsonl"), "--protocol", protocol,
                           "--out-dir", str(OUT / f"shield/chair-{protocol}")]) == 0
        assert halluc(["eval", "chair", str(ref / "opera_llava15_greedy.jsonl"), "--protocol", "opera",
                       "--out-dir", str(OUT / "opera/chair-opera")]) == 0
        for split in ("random", "popular", "adversarial"):
            assert halluc(["eval", "pope", str(ref / f"shield_llava15_pope_{split}.jsonl"), "--questions",
                           f"coco-{split}", "--parser", "vcd", "--out-dir", str(OUT / f"shield/pope-{split}")]) == 0
    res = lambda name, src="shield": json.loads((OUT / src / name / "results.json").read_text())
    print("\nParity: the metrics on SHIELD's published LLaVA-1.5-7B outputs (500 COCO val2014 images); "
          "published CHAIR_s 36.60, CHAIR_i 10.30; POPE random acc 91.37, F1 91.18")
    for v in ("chair", "opera", "halc"):
        r = res(f"chair-{v}")
        print(f"  CHAIR ({v:<11}) CHAIR_s {r['chair_s']:6.2f}  CHAIR_i {r['chair_i']:6.2f}  recall {r['recall']:6.2f}")
    for split in ("random", "popular", "adversarial"):
        r = res(f"pope-{split}")
        print(f"  POPE  ({split:<11}) acc {r['accuracy']:6.2f}  F1 {r['f1']:6.2f}  yes {r['yes_ratio']:6.2f}  (vcd parser)")
    r = res("chair-opera", "opera")
    print(f"OPERA's published greedy LLaVA-1.5 log, --protocol opera: CHAIR_s {r['chair_s']:.2f}, CHAIR_i "
          f"{r['chair_i']:.2f} (the paper's scorer: 45.00 / 12.73)")
    print(f"  ({time.perf_counter() - t1:.1f}s; per-record scores under {OUT}/shield/ and {OUT}/opera/)")
else:
    print(f"\n(parity check skipped: no reference outputs under {ref}; set SHARED=/path/to/shared)")

print(f"\ndemo done in {time.perf_counter() - t0:.0f}s; table and plots in {OUT}/world/")
print("Open the corrected captions (original and corrected side by side; needs pip install 'halluc[view]'):")
print("  halluc view " + " ".join(map(shlex.quote, world["view"])))
