"""Provenance: what ran, with which configuration, code and package versions (``run.json``), and the
hashes results are keyed on.

    write_manifest(out_dir, command="decode", config=args_config(args), seed=0, extra={...})
    sha256_files([weights])
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from halluc.outputs import atomic_write_json


_VERSIONED = ("halluc", "torch", "transformers", "spacy", "numpy", "ultralytics", "peft", "trl")


def sha256_files(paths) -> str:
    """sha256 over the files' contents, in the order given, read in blocks (weights can be large)."""
    import hashlib
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def package_versions(names: tuple[str, ...] = _VERSIONED) -> dict[str, str]:
    """Installed versions, read from metadata (importing torch just to ask would cost seconds)."""
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_hash() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def args_config(args) -> dict:
    """A command's parsed arguments as JSON-ready config for run.json (paths as strings, lists too)."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return str(v) if isinstance(v, Path) else v
    return {k: plain(v) for k, v in vars(args).items() if k not in ("func", "debug")}


def write_manifest(out_dir: str | os.PathLike, *, command: str, config: dict, seed: int | None = None,
                   argv: list[str] | None = None, extra: dict | None = None) -> Path:
    """Write ``run.json``: what ran, with which configuration, code and package versions."""
    man = {
        "command": command,
        "config": config,
        "seed": seed,
        "argv": list(sys.argv if argv is None else argv),
        "git": git_hash(),
        "versions": package_versions(),
        "host": platform.node(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    path = Path(out_dir) / "run.json"
    atomic_write_json(path, man)
    return path
