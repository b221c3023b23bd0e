"""``halluc decode``: caption images or answer questions with a VLM and a decode method.

    halluc decode --method vcd                                   # builtin model, builtin world's bias split
    halluc decode --method vcd --set alpha=1 --set greedy=true --dataset world-test --out vcd.jsonl
    halluc decode --model llava-hf/llava-1.5-7b-hf --template llava_v1 --coco-chair500 --images val2014/
    halluc decode --questions coco_pope_adversarial.jsonl --images val2014/ --method vcd
    torchrun --nproc_per_node 2 -m halluc decode ...             # shards by rank, merges in input order

Output: one record per input (DESIGN.md §2), scoreable directly by ``halluc eval chair|pope|world``;
``run.json`` next to it. A rerun skips ids already written (``--overwrite`` redoes them, ``--retry-errors``
the failed ones). A bad input (a missing, corrupt or oversized image, a prompt longer than the context) is
reported on stderr and keeps its record, with an ``error`` in place of the text; the rest is decoded.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from decoding import DECODERS
from halluc.command import at_least, guard, module_main, seed
from halluc.correct import COCO_IMAGE
from halluc.images import BadImage, open_image
from halluc.paths import input_dir, output_file

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CAPTION_PROMPT = "Please describe this image in detail."   # the CHAIR prompt of LLaVA-1.5/VCD/OPERA runs
WORLD_PROMPT = "describe the image ."                      # the builtin world model's caption prompt
COCO_ID = re.compile(r"COCO_\w+?_(\d{12})")


@dataclass
class Item:
    id: str
    image: Path
    prompt: str
    where: str                       # what to name in an error: file:line or the image path
    fields: dict = field(default_factory=dict)   # extra record fields: image_id, question_id


# ---------------------------------------------------------------- CLI

def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "decode", help="caption images / answer questions with a VLM: greedy, sample, beam, vcd, icd, vdd, m3id",
        description="Decode with a VLM and a decode method (DESIGN.md §5). With no input option it runs on the "
                    "builtin world's bias split. Output records are scoreable by `halluc eval` directly.")
    p.add_argument("--method", default="greedy", choices=list(DECODERS), help="decode method (default %(default)s)")
    p.add_argument("--model", default="builtin", help="builtin, a local folder, or a hub id already in the local "
                   "Hugging Face cache (default %(default)s)")
    src = p.add_argument_group("input (one of)")
    src.add_argument("--dataset", help="builtin world split: world-bias, world-test, world-control, world-bias-hard, "
                     "world-pope-random|popular|adversarial (default world-bias)")
    src.add_argument("--images", type=Path, help="a folder of images (alone: caption each; with --questions or "
                     "--coco-chair500: where their images are)")
    src.add_argument("--questions", type=Path, help="POPE-format question file (question_id, image, text); needs --images")
    src.add_argument("--coco-chair500", action="store_true", help="the 500 COCO val2014 images of the published CHAIR "
                     "runs, read as {images}/COCO_val2014_{id:012d}.jpg; needs --images")
    p.add_argument("--prompt", help=f"the prompt; with questions, {{question}} stands for each (default: "
                   f"'{CAPTION_PROMPT}', '{WORLD_PROMPT}' on world splits, '{{question}}' for questions)")
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
    p.set_defaults(func=run)
    return p


# ---------------------------------------------------------------- inputs

def _image_id(name: str):
    m = COCO_ID.search(name)
    return int(m.group(1)) if m else Path(name).stem


def load_items(args, errors: list[str]) -> tuple[list[Item], str, str]:
    """Inputs in order, the source's name (for default paths) and its kind (caption|question)."""
    n_src = sum(x is not None and x is not False for x in (args.dataset, args.questions, args.coco_chair500 or None))
    if n_src > 1 or (args.dataset and args.images):
        raise ValueError("give one input: --dataset, --questions, --coco-chair500 or --images alone")
    if (args.questions or args.coco_chair500) and not args.images:
        raise ValueError(f"{'--questions' if args.questions else '--coco-chair500'} needs --images DIR (where the images are)")
    if args.images is not None:
        input_dir(args.images, "--images")
    if args.questions:
        return _question_items(args.questions, args.images, args.prompt, errors), args.questions.stem, "question"
    if args.coco_chair500:
        return _chair500_items(args.images, args.prompt or CAPTION_PROMPT), "chair500", "caption"
    if args.images and not args.dataset:
        return _folder_items(args.images, args.prompt or CAPTION_PROMPT), args.images.name or "images", "caption"
    return _world_items(args.dataset or "world-bias", args.prompt, errors)


def _folder_items(folder: Path, prompt: str) -> list[Item]:
    if not folder.is_dir():
        raise FileNotFoundError(f"--images {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and not p.is_dir())
    if not files:
        raise FileNotFoundError(f"--images {folder}: no image files ({', '.join(sorted(IMAGE_EXTS))})")
    stems = [str(p.relative_to(folder).with_suffix("")) for p in files]
    dup = {s for s in stems if stems.count(s) > 1}          # a.jpg and a.png: keep the extension in the id
    return [Item(str(p.relative_to(folder)) if s in dup else s, p, prompt, str(p), {"image_id": _image_id(p.name)})
            for s, p in zip(stems, files)]


def _chair500_items(folder: Path, prompt: str) -> list[Item]:
    from halluc.assets import asset_path
    ids = json.loads(asset_path("coco_chair/chair500_ids.json").read_text())["image_ids"]
    out = []
    for i in ids:
        p = folder / COCO_IMAGE.format(i)
        out.append(Item(f"chair500/{i}", p, prompt, str(p), {"image_id": i}))
    return out


def _question_items(path: Path, folder: Path, prompt: str | None, errors: list[str]) -> list[Item]:
    from halluc.records import ReadReport, read_records
    report = ReadReport(echo=False)
    out = []
    for it in read_records(path, need_text=True, text_key="text", id_key="question_id",
                           required={"image": str}, report=report):
        img = folder / it.rec["image"]
        q = it.text
        fields = {"question_id": it.rec["question_id"], "image_id": it.rec.get("image_id", _image_id(it.rec["image"]))}
        out.append(Item(it.id, img, (prompt or "{question}").replace("{question}", q), f"{path}:{it.line}", fields))
    errors += [str(b) for b in report.bad]
    return out


def _world_items(name: str, prompt: str | None, errors: list[str]) -> tuple[list[Item], str, str]:
    from halluc.world.builtin import POPE_DATASETS, split_dir
    d = split_dir(name)                      # generated into the cache on first use
    if name in POPE_DATASETS:
        path = d / f"pope_{POPE_DATASETS[name]}.jsonl"
        items = _question_items(path, d, prompt, errors)
        for it in items:
            it.id = f"{name}/{it.id}"
        return items, name, "question"
    out = []
    for line in (d / "scenes.jsonl").open(encoding="utf-8"):
        s = json.loads(line)
        img = d / s["image"]
        out.append(Item(f"{name}/{s['image_id']}", img, prompt or WORLD_PROMPT, str(img), {"image_id": s["image_id"]}))
    return out, name, "caption"


# ---------------------------------------------------------------- distributed

def dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _barrier(world: int) -> None:
    """Wait for every rank (gloo process group; torchrun and accelerate set MASTER_ADDR)."""
    if world <= 1:
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def part_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.name}.rank{rank}-of-{world}")


def merge_parts(out: Path, order: list[str], world: int) -> int:
    """Rank 0: the final file = what it held + every rank's part, in input order, each id once; atomic."""
    from halluc.records import atomic_write_jsonl
    recs: dict[str, dict] = {}
    for p in [out, *(part_path(out, r, world) for r in range(world))]:
        if p.exists():
            for line in p.open("rb"):
                try:
                    r = json.loads(line) if line.endswith(b"\n") else None
                except ValueError:
                    r = None
                if not isinstance(r, dict) or r.get("id") is None:
                    continue                     # a torn or corrupt line: that id was decoded again
                old = recs.get(str(r["id"]))
                if old is None or (old.get("error") and not r.get("error")):   # a retried error gives way
                    recs[str(r["id"])] = r
    pos = {k: i for i, k in enumerate(order)}
    merged = sorted(recs.values(), key=lambda r: pos.get(str(r["id"]), len(pos)))
    atomic_write_jsonl(out, merged)
    for r in range(world):
        part_path(out, r, world).unlink(missing_ok=True)
    return len(merged)


# ---------------------------------------------------------------- the run

def _done_ids(path: Path, retry_errors: bool) -> set[str]:
    """Ids with a complete record in the final file (every rank skips them)."""
    out = set()
    if path.exists():
        for line in path.open("rb"):
            try:
                r = json.loads(line)
                if line.endswith(b"\n") and r.get("id") is not None and not (retry_errors and r.get("error")):
                    out.add(str(r["id"]))
            except (ValueError, AttributeError):
                pass
    return out


def _default_max_new(kind: str, source: str) -> int:
    if kind == "question":
        return 16
    return 96 if source.startswith("world-") else 512


def _run(args) -> int:
    import decoding
    from halluc.records import ResumableWriter, args_config, write_manifest

    t0 = time.perf_counter()
    rank, world = dist_env()
    from decoding.params import parse_assignments
    overrides = parse_assignments(args.params)
    if args.branches != "auto" and args.method not in decoding.CONTRASTIVE:
        raise ValueError(f"--branches applies to {', '.join(decoding.CONTRASTIVE)}, not {args.method}")
    kw = {} if args.branches == "auto" else {"batched": args.branches == "batched"}
    method = decoding.make(args.method, overrides, **kw)          # bad parameters fail before the model loads
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: must be >= 1")

    from halluc.models import resolve
    resolve(args.model)                  # a broken model folder is named before any output is made
    errors: list[str] = []
    items, source, kind = load_items(args, errors)
    if args.limit is not None:
        items = items[:args.limit]
    out = output_file(args.out or Path("runs") / f"{source}-{args.method}-s{args.seed}" / "captions.jsonl",
                      "--out" if args.out else "output")
    max_new = args.max_new_tokens or _default_max_new(kind, source)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)

    # Resume: ids in the final file are done for every rank; each rank appends to its own part file.
    if args.overwrite and rank == 0:
        out.unlink(missing_ok=True)
    _barrier(world)                      # nobody reads the final file while rank 0 may be deleting it
    done = set() if args.overwrite or world == 1 else _done_ids(out, args.retry_errors)
    mine = items[rank::world]
    path = out if world == 1 else part_path(out, rank, world)
    redo = (lambda r: bool(r.get("error"))) if args.retry_errors else None
    writer = ResumableWriter(path, overwrite=args.overwrite, redo=redo)
    todo = [it for it in mine if it.id not in done and it.id not in writer.done]
    n_resumed = len(mine) - len(todo)

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
    from decoding.methods import Example, PromptTooLong, template_used
    template = template_used(processor, args.template)
    base = {"model_id": info["model_id"], "method": args.method, "method_args": method.args(),
            "gen": {"max_new_tokens": max_new, **method.gen_info(model)}, "seed": args.seed,
            "prompt_template": template}

    from tqdm import tqdm
    bar = tqdm(total=len(todo), unit="img" if kind == "caption" else "q", desc=f"decode {args.method}",
               disable=args.no_progress or rank != 0, file=sys.stderr)
    n_ok, bad = 0, list(errors)
    t_loop = time.perf_counter()          # decoding alone: model loading and reading inputs left out

    def report(it: Item, msg: str) -> None:
        """The input's record is kept, with an ``error`` in place of a text (``--retry-errors`` redoes it)."""
        bad.append(f"{it.where}: {msg}")
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
                    report(it, str(e))
            while batch:
                exs = [Example(it.id, im, it.prompt) for it, im in batch]
                try:
                    outs = method.decode(model, processor, exs, max_new_tokens=max_new, seed=args.seed, template=template)
                except PromptTooLong as e:          # drop that input, decode the others
                    report(batch.pop(e.row)[0], str(e))
                    continue
                for (it, _), o in zip(batch, outs):
                    writer.write({"id": it.id, **it.fields, "image": str(it.image), "prompt": it.prompt,
                                  "text": o.text, **base})
                    n_ok += 1
                bar.update(len(batch))
                break
    finally:
        writer.close()
        bar.close()

    t_loop = time.perf_counter() - t_loop
    _barrier(world)
    n_total = None
    if rank == 0:
        if world > 1:
            n_total = merge_parts(out, [it.id for it in items], world)
        write_manifest(out.parent, command="decode", seed=args.seed, config=args_config(args),
            extra={"output": str(out), "model": info, "method": args.method, "method_args": method.args(),
                   "gen": base["gen"], "prompt_template": template, "world_size": world,
                   "summary": {"decoded": n_ok, "resumed": n_resumed, "skipped": len(bad),
                               "errors": len(bad) - len(errors), "bad_lines": len(errors),
                               "decode_seconds": round(t_loop, 3)}})
    if world > 1:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
    dt = time.perf_counter() - t0
    who = f"rank {rank}/{world}: " if world > 1 else ""
    print(f"{who}{n_ok} decoded, {n_resumed} already done, {len(bad) - len(errors)} failed (kept with an error), "
          f"{len(errors)} bad input lines skipped -> "
          f"{out if world == 1 or rank == 0 else path} ({dt:.1f}s)", file=sys.stderr)
    if rank == 0 and n_total is not None:
        print(f"merged {world} ranks: {n_total} records in {out}", file=sys.stderr)
    return 2 if bad and n_ok == 0 and n_resumed == 0 else 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.decode decode …`` (what ``torchrun -m`` needs; ``halluc decode`` is the same)."""
    return module_main(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
