"""The decode stage: caption images or answer questions with a VLM and a registered decode method.

    summary = run(args)             # args from add_options(parser): --method vcd --dataset world-bias ...

Output: one record per input (DESIGN.md §2), scoreable directly by ``halluc eval``, and ``run.json``
beside it. A rerun skips ids already written (``--overwrite`` redoes them, ``--retry-errors`` the
failed ones). A bad input (a missing, corrupt or oversized image, a prompt longer than the context) is
reported on stderr and keeps its record, with an ``error`` in place of the text. Under torchrun each
rank decodes every world-th input and rank 0 merges (halluc/pipelines/distributed.py).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from halluc.command import at_least, parse_assignments, seed
from halluc.images import BadImage, open_image
from halluc.paths import output_file
from halluc.pipelines import distributed as dist
from halluc.pipelines.inputs import CAPTION_PROMPT, DEFAULT_DATASET, Item, load_items


def add_options(p) -> None:
    from halluc.registry import names
    p.add_argument("--method", default="greedy", choices=names("decoder"), help="decode method (default %(default)s)")
    p.add_argument("--model", default="builtin", help="builtin, a local folder, or a hub id already in the local "
                   "Hugging Face cache (default %(default)s)")
    src = p.add_argument_group("input (one of)")
    src.add_argument("--dataset", choices=names("dataset"), metavar="DATASET",
                     help=f"a registered dataset: {', '.join(names('dataset'))} (default {DEFAULT_DATASET})")
    src.add_argument("--images", type=Path, help="a folder of images (alone: caption each; with --questions or "
                     "--coco-chair500: where their images are)")
    src.add_argument("--questions", type=Path, help="POPE-format question file (question_id, image, text); needs --images")
    src.add_argument("--coco-chair500", action="store_true", help="the 500 COCO val2014 images of the published CHAIR "
                     "runs, read as {images}/COCO_val2014_{id:012d}.jpg; needs --images")
    p.add_argument("--prompt", help=f"the prompt; with questions, {{question}} stands for each (default: "
                   f"'{CAPTION_PROMPT}', the dataset's own on registered datasets, '{{question}}' for questions)")
    p.add_argument("--template", default="chat", choices=["chat", "llava_v1", "plain"],
                   help="prompt template: the processor's chat template, the llava_v1 conversation of the "
                        "published LLaVA-1.5 CHAIR/POPE numbers, or the bare prompt (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="params",
                   help="a method parameter, e.g. --set alpha=1 --set greedy=true (unknown keys name the valid ones)")
    p.add_argument("--out", type=Path, help="output JSONL (default runs/<input>-<method>-s<seed>/captions.jsonl)")
    p.add_argument("--batch-size", type=at_least(1), default=8)
    p.add_argument("--limit", type=at_least(1), help="only the first N inputs")
    p.add_argument("--max-new-tokens", type=at_least(1), help="default 96 on world captions, 16 for questions, "
                   "512 otherwise")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--overwrite", action="store_true", help="start the output afresh instead of resuming")
    p.add_argument("--retry-errors", action="store_true", help="on resume, decode again the inputs whose "
                   "record holds an error (a missing or corrupt image, a prompt too long)")
    p.add_argument("--branches", choices=["auto", "batched", "sequential"], default="auto",
                   help="contrastive methods: both branches as one forward of 2B rows, or two forwards "
                        "(default auto: batched where the model allows)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="model dtype (default: the checkpoint's)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cpu, or cuda:LOCAL_RANK under torchrun)")
    p.add_argument("--device-map", help="transformers device_map, e.g. auto (spreads one model over devices)")
    p.add_argument("--cpu-onednn", action="store_true", help="CPU float32: compute linear layers with oneDNN, "
                   "which reads the weights once for the 2 rows of batched contrastive decoding (MKL reads them "
                   "twice); results agree to float rounding")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def make_method(args):
    """The decode method, its parameters checked before any model is loaded."""
    from halluc.registry import make_decoder, names
    contrastive = names("decoder", contrastive=True)
    if args.branches != "auto" and args.method not in contrastive:
        raise ValueError(f"--branches applies to {', '.join(contrastive)}, not {args.method}")
    kw = {} if args.branches == "auto" else {"batched": args.branches == "batched"}
    return make_decoder(args.method, parse_assignments(args.params), **kw)


def load_model(args, rank: int, world: int):
    from halluc.models import load
    device = args.device
    if device is None and world > 1 and args.device_map is None:
        import torch
        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    model, processor, info = load(args.model, dtype=args.dtype, device=device, device_map=args.device_map)
    if args.cpu_onednn:
        from decoding.cpu import use_onednn_linears
        use_onednn_linears(model)
    return model, processor, info


def _max_new(args, source) -> int:
    if args.max_new_tokens:
        return args.max_new_tokens
    return 16 if source.kind == "question" else source.max_new_tokens or 512


def run(args) -> dict:
    """Decode ``args``' inputs; returns the summary (counts, output path, seconds)."""
    from halluc.outputs import ResumableWriter
    t0 = time.perf_counter()
    rank, world = dist.dist_env()
    method = make_method(args)                   # bad parameters fail before the model loads
    from halluc.models import resolve
    resolve(args.model)                          # a broken model folder is named before any output is made
    errors: list[str] = []
    source = load_items(args, errors)
    items = source.items[:args.limit] if args.limit is not None else source.items
    out = output_file(args.out or Path("runs") / f"{source.name}-{args.method}-s{args.seed}" / "captions.jsonl",
                      "--out" if args.out else "output")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)

    # Resume: ids in the final file are done for every rank; each rank appends to its own part file.
    if args.overwrite and rank == 0:
        out.unlink(missing_ok=True)
    dist.barrier(world)                  # nobody reads the final file while rank 0 may be deleting it
    done = set() if args.overwrite or world == 1 else dist.done_ids(out, args.retry_errors)
    mine = items[rank::world]
    path = out if world == 1 else dist.part_path(out, rank, world)
    redo = (lambda r: bool(r.get("error"))) if args.retry_errors else None
    writer = ResumableWriter(path, overwrite=args.overwrite, redo=redo)
    todo = [it for it in mine if it.id not in done and it.id not in writer.done]
    s = {"decoded": 0, "resumed": len(mine) - len(todo), "failed": 0, "bad_lines": len(errors),
         "rank": rank, "world": world, "out": out, "part": path}
    try:
        model, processor, info = load_model(args, rank, world)
        s |= _decode_all(args, method, model, processor, info, todo, writer, _max_new(args, source), source.kind)
    finally:
        writer.close()
    dist.barrier(world)
    if rank == 0:
        if world > 1:
            s["merged"] = dist.merge_parts(out, [it.id for it in items], world)
        _manifest(args, s)
    dist.finish(world)
    s["seconds"] = time.perf_counter() - t0
    return s


def _decode_all(args, method, model, processor, info, todo: list[Item], writer, max_new: int, kind: str) -> dict:
    """Decode ``todo`` in batches: each output record written as soon as its batch is done."""
    from tqdm import tqdm
    from decoding.methods import Example, PromptTooLong, template_used
    template = template_used(processor, args.template)
    base = {"model_id": info["model_id"], "method": args.method, "method_args": method.args(),
            "gen": {"max_new_tokens": max_new, **method.gen_info(model)}, "seed": args.seed,
            "prompt_template": template}
    bar = tqdm(total=len(todo), unit="img" if kind == "caption" else "q", desc=f"decode {args.method}",
               disable=args.no_progress or dist.dist_env()[0] != 0, file=sys.stderr)
    n_ok = n_failed = 0
    t_loop = time.perf_counter()          # decoding alone: model loading and reading inputs left out

    def failed(it: Item, msg: str) -> None:
        """The input's record is kept, with an ``error`` in place of a text (``--retry-errors`` redoes it)."""
        nonlocal n_failed
        n_failed += 1
        print(f"error: {it.where}: {msg}", file=sys.stderr)
        writer.write({"id": it.id, **it.fields, "image": str(it.image), "prompt": it.prompt, "error": msg, **base})
        bar.update(1)

    try:
        for i in range(0, len(todo), args.batch_size):
            batch = []
            for it in todo[i:i + args.batch_size]:
                try:
                    batch.append((it, open_image(it.image)))
                except BadImage as e:
                    failed(it, str(e))
            while batch:
                exs = [Example(it.id, im, it.prompt) for it, im in batch]
                try:
                    outs = method.decode(model, processor, exs, max_new_tokens=max_new, seed=args.seed, template=template)
                except PromptTooLong as e:          # drop that input, decode the others
                    failed(batch.pop(e.row)[0], str(e))
                    continue
                for (it, _), o in zip(batch, outs):
                    writer.write({"id": it.id, **it.fields, "image": str(it.image), "prompt": it.prompt,
                                  "text": o.text, **base})
                    n_ok += 1
                bar.update(len(batch))
                break
    finally:
        bar.close()
    return {"decoded": n_ok, "failed": n_failed, "decode_seconds": time.perf_counter() - t_loop, "info": info,
            "method_args": method.args(), "gen": base["gen"], "template": template}


def _manifest(args, s: dict) -> None:
    from halluc.provenance import args_config, write_manifest
    write_manifest(s["out"].parent, command="decode", seed=args.seed, config=args_config(args),
                   extra={"output": str(s["out"]), "model": s["info"], "method": args.method,
                          "method_args": s["method_args"], "gen": s["gen"], "prompt_template": s["template"],
                          "world_size": s["world"],
                          "summary": {"decoded": s["decoded"], "resumed": s["resumed"],
                                      "skipped": s["failed"] + s["bad_lines"], "errors": s["failed"],
                                      "bad_lines": s["bad_lines"], "decode_seconds": round(s["decode_seconds"], 3)}})
