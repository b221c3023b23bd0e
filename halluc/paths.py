"""Paths a user hands in, checked before anything is read or written, and the cache folder.

    src = input_file(args.file, "captions")         # BadInput: "captions x.jsonl: is a directory, not a file"
    out = output_file(args.out, "--out")            # an existing folder, a FIFO, an unwritable parent: BadInput
    text = read_text(args.synonyms, "--synonyms")   # UTF-8 (a BOM is dropped); bad bytes name file and line
    data = read_json(path, "--gt")                  # .json or .json.gz; malformed JSON names file and line

Why checks instead of letting ``open`` fail: a FIFO given as an input blocks ``open`` forever, a
directory gives a traceback deep inside a reader, and a missing output folder is only found after
an hour of decoding. Every message names the path and, where the user typed it, the option.
"""
from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

from halluc.errors import BadInput

MAX_SIDE_FILE = 256 << 20     # a synonym table, a YAML, a meta.json: far larger is a wrong file


def cache_dir() -> Path:
    """Where derived data (world splits, built CHAIR tables, detections) is cached: $HALLUC_CACHE,
    else $XDG_CACHE_HOME/halluc, else ~/.cache/halluc."""
    root = os.environ.get("HALLUC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "halluc")
    return Path(root)


def _label(path, what: str | None) -> str:
    return f"{what} {path}" if what else str(path)


def _kind(mode: int) -> str:
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def file_problem(path) -> str | None:
    """Why ``path`` cannot be read as a regular file ("no such file", "is a directory", "is a FIFO, not
    a regular file", ...), or None. Stat first: ``open`` on a FIFO would block forever."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file"
    if not stat.S_ISREG(st.st_mode):
        return f"is {_kind(st.st_mode)}, not a regular file"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    return None


def input_file(path, what: str | None = None) -> Path:
    """``path`` as a readable regular file, or BadInput saying what it is instead."""
    problem = file_problem(path)
    if problem:
        raise BadInput(f"{_label(path, what)}: {problem}")
    return Path(path)


def input_dir(path, what: str | None = None) -> Path:
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{_label(path, what)}: no such folder")
    if not p.is_dir():
        raise BadInput(f"{_label(path, what)}: not a folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise BadInput(f"{_label(path, what)}: not readable (permission denied)")
    return p


def _writable_parent(p: Path, label: str) -> None:
    """The nearest existing ancestor of ``p`` must be a folder we may create entries in."""
    anc = p.parent
    while not anc.exists():
        if anc == anc.parent:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise BadInput(f"{label}: {anc} is not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise BadInput(f"{label}: cannot write in {anc} (permission denied)")


def output_file(path, what: str | None = None) -> Path:
    """``path`` as a file that can be created or replaced: not a folder, not a FIFO, in a writable place."""
    p = Path(path)
    label = _label(path, what)
    if p.is_symlink() and not p.exists():
        raise BadInput(f"{label}: a dangling symbolic link")
    if p.exists():
        problem = file_problem(p)
        if problem and "permission" not in problem:
            raise BadInput(f"{label}: {problem}; give a file path")
        if not os.access(p, os.W_OK):
            raise BadInput(f"{label}: not writable (permission denied)")
    _writable_parent(p, label)
    return p


def output_dir(path, what: str | None = None) -> Path:
    """``path`` as a folder that exists and is writable, or can be created."""
    p = Path(path)
    label = _label(path, what)
    if p.exists():
        if not p.is_dir():
            raise BadInput(f"{label}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise BadInput(f"{label}: cannot write in it (permission denied)")
        return p
    _writable_parent(p / "x", label)
    return p


def read_bytes(path, what: str | None = None, max_bytes: int = MAX_SIDE_FILE) -> bytes:
    p = input_file(path, what)
    size = p.stat().st_size
    if size > max_bytes:
        raise BadInput(f"{_label(path, what)}: {size:,} bytes, over the {max_bytes:,}-byte limit for this file")
    data = p.read_bytes()
    if p.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise BadInput(f"{_label(path, what)}: not a valid gzip file ({e})") from None
    return data


def decode_text(data: bytes, label: str) -> str:
    """UTF-8 (an optional BOM dropped); bad bytes are reported with their line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise BadInput(f"{label}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x} at column {col})") from None


def read_text(path, what: str | None = None, max_bytes: int = MAX_SIDE_FILE) -> str:
    return decode_text(read_bytes(path, what, max_bytes), _label(path, what))


def read_json(path, what: str | None = None, max_bytes: int = 4 << 30):
    """A JSON document (``.json`` or ``.json.gz``); errors name the file, line and column."""
    label = _label(path, what)
    text = read_text(path, what, max_bytes)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{label}:{e.lineno}: malformed JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise BadInput(f"{label}: JSON nested too deeply") from None
