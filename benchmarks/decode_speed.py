"""Time per generated token: greedy vs VCD with both branches in one forward of 2B rows (batched) vs
VCD with two forwards per token (sequential, the reference implementation's way).

    python benchmarks/decode_speed.py                       # builtin model + a ~100M random LLaVA, CPU
    python benchmarks/decode_speed.py --device cuda --dtype bfloat16
    python benchmarks/decode_speed.py --builtin /tmp/vlm_smoke --tokens 32 --repeats 3 --threads 1

Batch-1 decoding reads every weight once per token, so it is bound by memory bandwidth (or, for a
tiny model, by per-forward overhead); a forward of 2 rows costs little more than one of 1. Targets:
batched VCD <= 1.3x greedy, and batched >= 1.5x faster than sequential.

On the CPU each model runs twice: with PyTorch's default matmuls (MKL, which computes fewer than 4
rows as one matrix-vector product per row, so 2 rows read the weights twice) and with oneDNN linears
(decoding/cpu.py: both rows in one pass). On a machine shared with another job use --threads 1:
multi-threaded MKL waiting on a busy core distorts every number.

Per-token time = (time for N tokens - time for 1 token) / (N - 1): the prefill (image encoding and
prompt) is left out. EOS is ignored so every method generates exactly N tokens. Runs are
interleaved and the median kept, so a neighbour's load hits all methods alike.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from PIL import Image


def load_builtin(spec: str, dtype, device):
    """The builtin world model; while it is not trained yet, a random model of the same architecture
    (same speed) stands in."""
    from halluc.models import load
    try:
        model, processor, _ = load(spec, dtype=dtype, device=device)
        return model, processor, spec
    except FileNotFoundError:
        from halluc.world.vlm import build
        model, processor = build()
        return model.to(device=device, dtype=getattr(torch, dtype) if dtype else None).eval(), processor, \
            f"{spec} (not found: random weights, same architecture)"


def methods():
    from halluc.registry import make_decoder as make
    return {
        "greedy": make("greedy"),                                   # transformers' generate
        "vcd-batched": make("vcd", {"greedy": "true"}, batched=True),
        "vcd-sequential": make("vcd", {"greedy": "true"}, batched=False),
    }


def time_decode(method, model, processor, examples, n: int) -> float:
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    method.decode(model, processor, examples, max_new_tokens=n, ignore_eos=True)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def bench(name, model, processor, args) -> dict:
    rng = np.random.default_rng(0)
    prompt = "describe the image ." if "builtin" in name else "what is in this photo ?"
    from decoding.methods import Example
    examples = [Example(f"b{i}", Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)), prompt)
                for i in range(args.batch_size)]
    ms = methods()
    for m in ms.values():                                            # warm-up
        m.decode(model, processor, examples, max_new_tokens=2, ignore_eos=True)
    runs = {k: [] for k in ms}
    for _ in range(args.repeats):
        for k, m in ms.items():
            full = time_decode(m, model, processor, examples, args.tokens)
            one = time_decode(m, model, processor, examples, 1)
            runs[k].append((full - one) / (args.tokens - 1))
    per_tok = {k: statistics.median(v) for k, v in runs.items()}
    n_params = sum(p.numel() for p in model.parameters())
    return {"model": name, "params_m": round(n_params / 1e6, 1), "batch": args.batch_size, "tokens": args.tokens,
            "ms_per_token": {k: round(1000 * v, 3) for k, v in per_tok.items()},
            "batched_over_greedy": per_tok["vcd-batched"] / per_tok["greedy"],
            "sequential_over_batched": per_tok["vcd-sequential"] / per_tok["vcd-batched"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builtin", default="builtin", help="builtin model spec/folder (default %(default)s)")
    ap.add_argument("--no-100m", action="store_true", help="skip the ~100M random LLaVA")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--kernels", default="mkl,onednn", help="CPU matmul variants to run, comma-separated "
                    "(mkl = PyTorch's default, onednn = decoding/cpu.py); default %(default)s")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    kernels = args.kernels.split(",") if args.device == "cpu" and args.dtype in (None, "float32") else ["default"]
    rows = []
    for kind in ("builtin", "100m"):
        if kind == "100m" and args.no_100m:
            continue
        for k in kernels:
            if kind == "builtin":
                model, processor, label = load_builtin(args.builtin, args.dtype, args.device)
                label = f"builtin: {label}"
            else:
                from halluc.testing import build
                torch.manual_seed(0)
                model, processor = build("llava", size="100m")
                model = model.to(device=args.device, dtype=getattr(torch, args.dtype) if args.dtype else None)
                label = "random LLaVA ~100M"
            if k == "onednn":
                from decoding.cpu import use_onednn_linears
                use_onednn_linears(model)
            rows.append(bench(f"{label} [{k}]", model, processor, args))
            del model
    print(f"\ndevice {args.device}, dtype {args.dtype or 'float32'}, batch {args.batch_size}, {args.tokens} tokens, "
          f"median of {args.repeats}, torch threads {torch.get_num_threads()}")
    print(f"{'model [cpu matmul]':<58} {'params':>7} {'greedy':>8} {'vcd-2B':>8} {'vcd-seq':>8} {'2B/greedy':>10} {'seq/2B':>7}")
    for r in rows:
        t = r["ms_per_token"]
        print(f"{r['model'][:58]:<58} {r['params_m']:>6.1f}M {t['greedy']:>6.2f}ms {t['vcd-batched']:>6.2f}ms "
              f"{t['vcd-sequential']:>6.2f}ms {r['batched_over_greedy']:>9.2f}x {r['sequential_over_batched']:>6.2f}x")
    for r in rows:
        ok = r["batched_over_greedy"] <= 1.3 and r["sequential_over_batched"] >= 1.5
        print(f"targets (2B/greedy <= 1.3x, seq/2B >= 1.5x) {'met    ' if ok else 'NOT met'}: {r['model']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": args.device, "dtype": args.dtype, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
