"""Scale-out of a stage over processes (torchrun / accelerate launch): each rank takes every
world-th input and appends to its own part file; rank 0 merges the parts into the final file in
input order, each id once, atomically.

    rank, world = dist_env()
    path = out if world == 1 else part_path(out, rank, world)
    ... barrier(world) ...
    merge_parts(out, [it.id for it in items], world)          # rank 0
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def dist_env() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def barrier(world: int) -> None:
    """Wait for every rank (gloo process group; torchrun and accelerate set MASTER_ADDR)."""
    if world <= 1:
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def finish(world: int) -> None:
    if world > 1:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


def part_path(out: Path, rank: int, world: int) -> Path:
    return out.with_name(f"{out.name}.rank{rank}-of-{world}")


def _complete_records(path: Path):
    """The complete, valid records of a JSONL file (a torn or corrupt line is simply not one)."""
    for line in path.open("rb"):
        try:
            r = json.loads(line) if line.endswith(b"\n") else None
        except ValueError:
            r = None
        if isinstance(r, dict) and r.get("id") is not None:
            yield r


def done_ids(path: Path, retry_errors: bool) -> set[str]:
    """Ids with a complete record in the final file (every rank skips them)."""
    if not path.exists():
        return set()
    return {str(r["id"]) for r in _complete_records(path) if not (retry_errors and r.get("error"))}


def merge_parts(out: Path, order: list[str], world: int) -> int:
    """Rank 0: the final file = what it held + every rank's part, in input order, each id once; atomic."""
    from halluc.outputs import atomic_write_jsonl
    recs: dict[str, dict] = {}
    for p in [out, *(part_path(out, r, world) for r in range(world))]:
        if p.exists():
            for r in _complete_records(p):
                old = recs.get(str(r["id"]))
                if old is None or (old.get("error") and not r.get("error")):   # a retried error gives way
                    recs[str(r["id"])] = r
    pos = {k: i for i, k in enumerate(order)}
    merged = sorted(recs.values(), key=lambda r: pos.get(str(r["id"]), len(pos)))
    atomic_write_jsonl(out, merged)
    for r in range(world):
        part_path(out, r, world).unlink(missing_ok=True)
    return len(merged)
