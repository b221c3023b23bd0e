"""Reading JSONL records, tolerantly: every good record, every bad line reported (halluc.outputs writes them).

Every stage of halluc reads JSONL and only adds fields (DESIGN.md §2). This module is the one
place that reads them.

    report = ReadReport()
    for item in read_records("captions.jsonl", need_text=True, report=report):
        print(item.id, item.text)          # aliases resolved: caption/answer, question_id/image_id
    print(report.summary())                # "500 read, 2 skipped (...)"

A bad line (malformed JSON, non-UTF-8 bytes, a missing or mistyped field, a duplicate id) is
reported as ``file:line: field: message`` and skipped; the others are still read. With
``strict=True`` the first bad line raises :class:`BadInput` (the CLI exits with code 2).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

# Field aliases used by public tools, in order of preference.
TEXT_KEYS = ("text", "caption", "answer")
ID_KEYS = ("id", "question_id", "image_id")


from halluc.errors import BadInput  # noqa: E402  (re-exported: callers import it from here)


@dataclass
class BadLine:
    path: str
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class ReadReport:
    """What a read saw: good records and every bad line, for the run summary."""
    n_good: int = 0
    bad: list[BadLine] = field(default_factory=list)
    echo: bool = True  # print each bad line to stderr as it is found

    def add(self, bad: BadLine) -> None:
        self.bad.append(bad)
        if self.echo:
            print(f"error: {bad}", file=sys.stderr)

    def summary(self) -> str:
        return f"{self.n_good} read, {len(self.bad)} skipped"


@dataclass(frozen=True)
class Item:
    """One good input record. ``rec`` is the record as read; ``id`` is always a string."""
    id: str
    rec: dict
    line: int
    text: str | None = None


def _pick(rec: dict, override: str | None, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    if override:
        return override, rec.get(override)
    for k in keys:
        if k in rec:
            return k, rec[k]
    return None, None


class _Bad(Exception):
    """One line's problem: (field or None, message)."""


def _decode(raw: bytes, first: bool):
    """The line's JSON object, None for a blank line; _Bad otherwise."""
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]            # a UTF-8 byte-order mark (Windows editors) is not part of the record
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Bad(None, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})") from None
    if not line.strip():
        return None              # blank lines are not records
    try:
        rec = json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as e:
        raise _Bad(None, f"malformed JSON: {e.msg} at column {e.pos + 1}") from None
    if not isinstance(rec, dict):
        raise _Bad(None, f"expected a JSON object, got {type(rec).__name__}")
    return rec


def _record_id(rec: dict, id_key: str | None, seen: set[str]) -> str:
    k, v = _pick(rec, id_key, ID_KEYS)
    if k is None or v is None:
        raise _Bad(id_key or "id", f"missing (looked for {id_key or ', '.join(ID_KEYS)})")
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise _Bad(k, f"expected a string or integer id, got {type(v).__name__}")
    if str(v) in seen:
        raise _Bad(k, f"duplicate id {str(v)!r}")
    return str(v)


def _record_text(rec: dict, text_key: str | None) -> str:
    """The text field: the first alias present; a field of the wrong type is an error, never skipped."""
    k, v = _pick(rec, text_key, TEXT_KEYS)
    if (k is None or v is None) and isinstance(rec.get("error"), str):
        raise _Bad("error", f"no text: an earlier stage failed on this record ({rec['error']})")
    if k is None or v is None:
        raise _Bad(text_key or "text", f"missing (looked for {text_key or ', '.join(TEXT_KEYS)})")
    if not isinstance(v, str):
        raise _Bad(k, f"expected a string, got {type(v).__name__}")
    return v


def _check_fields(rec: dict, required: dict) -> None:
    for fld, typ in required.items():
        if fld not in rec:
            raise _Bad(fld, "missing")
        if isinstance(rec[fld], bool) or not isinstance(rec[fld], typ):
            names = "/".join(t.__name__ for t in (typ if isinstance(typ, tuple) else (typ,)))
            raise _Bad(fld, f"expected {names}, got {type(rec[fld]).__name__}")


def read_records(path: str | os.PathLike, *, need_text: bool = False, need_id: bool = True,
                 text_key: str | None = None, id_key: str | None = None,
                 required: dict[str, type | tuple[type, ...]] | None = None,
                 strict: bool = False, report: ReadReport | None = None) -> Iterator[Item]:
    """Yield the good records of a JSONL file; report and skip the bad ones.

    ``required`` maps further field names to the types they must have. Ids are compared as
    strings, so ``1`` and ``"1"`` are duplicates.
    """
    from halluc.paths import input_file
    report = report if report is not None else ReadReport()
    path = Path(path)

    def bad(line: int, fld: str | None, msg: str) -> None:
        b = BadLine(str(path), line, fld, msg)
        if strict:
            raise BadInput(str(b))
        report.add(b)

    input_file(path)             # a directory, FIFO or unreadable file: one clear error, never a hang
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise BadInput(f"{path}: cannot open: {e.strerror or e}") from None
    seen: set[str] = set()
    n_lines = 0
    with fh:
        for lineno, raw in enumerate(fh, 1):
            n_lines += 1
            try:
                rec = _decode(raw, lineno == 1)
                if rec is None:
                    continue
                rid = _record_id(rec, id_key, seen) if need_id else None
                text = _record_text(rec, text_key) if need_text else None
                _check_fields(rec, required or {})
            except _Bad as e:
                bad(lineno, *e.args)
                continue
            if rid is not None:
                seen.add(rid)
            report.n_good += 1
            yield Item(rid if rid is not None else str(lineno), rec, lineno, text)
    if n_lines == 0:
        bad(0, None, "file is empty (no records)")
