"""CHAIR speed on 500 published LLaVA-1.5 captions (OPERA's greedy log), per protocol, side by side:
the whole ``halluc eval chair --protocol P`` command in a fresh process, and the NLTK-identical
pieces of the lemma protocols against NLTK itself (what the own re-implementations buy).

    python benchmarks/chair_speed.py [--repeat 3]        # SHARED=/path/to/shared overrides ../shared

Target (issue 16): ``--protocol opera`` on 500 captions in under 5 s end to end on the 2-core dev
machine (OPERA's own scorer needs about 16 s for 1,500 captions here).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--shared", default=os.environ.get("SHARED", Path(__file__).resolve().parents[2] / "shared"))
args = ap.parse_args()
shared = Path(args.shared) / "data"
log = shared / "reference-outputs/opera_llava15_greedy.jsonl"
captions = [json.loads(line)["caption"] for line in log.open(encoding="utf-8")]


def best_of(fn, n=args.repeat) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


print(f"{len(captions)} captions ({log.name})\n")
print("whole command, fresh process (best of %d):" % args.repeat)
with tempfile.TemporaryDirectory() as d:
    for protocol in ("chair", "opera", "halc"):
        cmd = [sys.executable, "-m", "halluc", "eval", "chair", str(log), "--protocol", protocol, "--out-dir", d]
        wall = best_of(lambda: subprocess.run(cmd, check=True, capture_output=True))
        print(f"  --protocol {protocol:<6} {wall:5.2f} s   {len(captions) / wall:6.0f} captions/s")

print("\nthe lemma protocols' pieces, halluc against NLTK (first call includes loading):")
import nltk  # noqa: E402
import nltk.data  # noqa: E402
nltk.data.path.insert(0, str(shared / "nltk_data"))
from nltk.stem import WordNetLemmatizer  # noqa: E402

from halluc.text.lemma import lemmatize, pos_tag_many, wordnet_pos  # noqa: E402
from halluc.text.tokenize import word_tokenize  # noqa: E402

lower = [c.lower() for c in captions]
t = time.perf_counter()
ours = [word_tokenize(c) for c in lower]
t_ours = time.perf_counter() - t
t = time.perf_counter()
ref = [nltk.word_tokenize(c) for c in lower]
t_ref = time.perf_counter() - t
assert ours == ref
print(f"  tokenize   halluc {t_ours:6.3f} s   nltk.word_tokenize      {t_ref:6.3f} s   ({t_ref / t_ours:5.1f}x)")
t = time.perf_counter()
tags = pos_tag_many(ours)
print(f"  tag        nltk's PerceptronTagger (used as is)     {time.perf_counter() - t:6.3f} s")
pairs = [(w, wordnet_pos(p)) for toks, ts in zip(ours, tags) for w, p in zip(toks, ts)]
t = time.perf_counter()
mine = [lemmatize(w, p) for w, p in pairs]
t_ours = time.perf_counter() - t
wnl = WordNetLemmatizer()
t = time.perf_counter()
theirs = [wnl.lemmatize(w, p) for w, p in pairs]
t_ref = time.perf_counter() - t
assert mine == theirs
print(f"  lemmatize  halluc {t_ours:6.3f} s   WordNetLemmatizer       {t_ref:6.3f} s   ({t_ref / t_ours:5.1f}x; "
      f"{len(pairs):,} tokens, identical)")
