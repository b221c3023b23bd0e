"""JSONL records: tolerant reading, resumable appending, atomic final files, run manifests.

Every stage of halluc reads JSONL and only adds fields (DESIGN.md §2). This module is the one
place that touches those files.

    report = ReadReport()
    for item in read_records("captions.jsonl", need_text=True, report=report):
        print(item.id, item.text)          # aliases resolved: caption/answer, question_id/image_id
    print(report.summary())                # "500 read, 2 skipped (...)"

    with ResumableWriter("out.jsonl") as w:   # appends, flushes per record, skips ids already there
        for item in items:
            if item.id not in w.done:
                w.write({...})

A bad line (malformed JSON, non-UTF-8 bytes, a missing or mistyped field, a duplicate id) is
reported as ``file:line: field: message`` and skipped; the others are still read. With
``strict=True`` the first bad line raises :class:`BadInput` (the CLI exits with code 2).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
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


def read_records(path: str | os.PathLike, *, need_text: bool = False, need_id: bool = True,
                 text_key: str | None = None, id_key: str | None = None,
                 required: dict[str, type | tuple[type, ...]] | None = None,
                 strict: bool = False, report: ReadReport | None = None) -> Iterator[Item]:
    """Yield the good records of a JSONL file; report and skip the bad ones.

    ``required`` maps further field names to the types they must have. Ids are compared as
    strings, so ``1`` and ``"1"`` are duplicates.
    """
    report = report if report is not None else ReadReport()
    path = Path(path)

    def bad(line: int, fld: str | None, msg: str) -> None:
        b = BadLine(str(path), line, fld, msg)
        if strict:
            raise BadInput(str(b))
        report.add(b)

    from halluc.paths import input_file
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
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]            # a UTF-8 byte-order mark (Windows editors) is not part of the record
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad(lineno, None, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
                continue
            if not line.strip():
                continue  # blank lines are not records
            try:
                rec = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as e:
                bad(lineno, None, f"malformed JSON: {e.msg} at column {e.pos + 1}")
                continue
            if not isinstance(rec, dict):
                bad(lineno, None, f"expected a JSON object, got {type(rec).__name__}")
                continue
            rid = None
            if need_id:
                k, v = _pick(rec, id_key, ID_KEYS)
                if k is None or v is None:
                    bad(lineno, id_key or "id", f"missing (looked for {id_key or ', '.join(ID_KEYS)})")
                    continue
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    bad(lineno, k, f"expected a string or integer id, got {type(v).__name__}")
                    continue
                rid = str(v)
                if rid in seen:
                    bad(lineno, k, f"duplicate id {rid!r}")
                    continue
            text = None
            if need_text:
                k, v = _pick(rec, text_key, TEXT_KEYS)
                if (k is None or v is None) and isinstance(rec.get("error"), str):
                    bad(lineno, "error", f"no text: an earlier stage failed on this record ({rec['error']})")
                    continue
                if k is None or v is None:
                    bad(lineno, text_key or "text", f"missing (looked for {text_key or ', '.join(TEXT_KEYS)})")
                    continue
                if not isinstance(v, str):
                    bad(lineno, k, f"expected a string, got {type(v).__name__}")
                    continue
                text = v
            problem = None
            for fld, typ in (required or {}).items():
                if fld not in rec:
                    problem = (fld, "missing")
                elif isinstance(rec[fld], bool) or not isinstance(rec[fld], typ):
                    names = "/".join(t.__name__ for t in (typ if isinstance(typ, tuple) else (typ,)))
                    problem = (fld, f"expected {names}, got {type(rec[fld]).__name__}")
                if problem:
                    break
            if problem:
                bad(lineno, *problem)
                continue
            if rid is not None:
                seen.add(rid)
            report.n_good += 1
            yield Item(rid if rid is not None else str(lineno), rec, lineno, text)
    if n_lines == 0:
        bad(0, None, "file is empty (no records)")


# ---------------------------------------------------------------- writing

def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole file so that readers see either the old or the new content, never half. The file
    gets the mode a plain ``open`` would give it (0666 less the umask), not mkstemp's private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# What this process has appended in the current command, for the "interrupted: ..." line.
_WRITES: dict[str, list[int]] = {}      # path -> [records written now, records there before]


def start_run() -> None:
    _WRITES.clear()


def interrupted_summary() -> str:
    if not _WRITES:
        return "nothing written yet; run the same command to start again"
    parts = [f"{now} records written to {p}" + (f" ({before} from earlier runs)" if before else "")
             for p, (now, before) in _WRITES.items()]
    return "; ".join(parts) + "; run the same command to resume"


class OutputLocked(BadInput):
    pass


class ResumableWriter:
    """Append-only JSONL output that survives interruption, for one run at a time.

    Each record is one ``write`` of a whole line to an unbuffered file, so a killed run loses at most
    the line being written. On open, every complete, valid line is kept and its id collected in
    ``done`` (a rerun skips them); a torn or corrupt line anywhere is dropped (the file is rewritten
    atomically without it) and said on stderr, so its id is simply done again. An exclusive lock
    (``.<name>.lock`` beside the file) refuses a second run on the same output. ``overwrite=True``
    starts from an empty file; ``redo`` (a predicate on records) drops matching records so that
    they are done again (``--retry-errors``).
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, id_key: str = "id",
                 redo=None, quiet: bool = False):
        from halluc.paths import output_file
        self.path = output_file(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.id_key, self.quiet = id_key, quiet
        self.done: set[str] = set()
        self.n_written = 0
        self._lock = self._take_lock()
        try:
            if overwrite:
                self.path.unlink(missing_ok=True)
            elif self.path.exists():
                self._scan(redo)
            self._fh = open(self.path, "ab", buffering=0)
        except BaseException:
            self._release()
            raise
        _WRITES[str(self.path)] = [0, len(self.done)]

    def _take_lock(self):
        """flock on ``.<name>.lock``, removed again on close. A lock file unlinked by a finishing run
        between our open and our flock would leave two holders, so the locked inode must still be
        the one at the path, else we try again."""
        import fcntl
        lock = self.path.with_name(f".{self.path.name}.lock")
        for _ in range(100):
            fh = open(lock, "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                who = fh.read().strip()
                fh.close()
                raise OutputLocked(f"{self.path}: another run is writing this file{f' (pid {who})' if who else ''}; "
                                   "wait for it to finish, or give another output path") from None
            try:
                same = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()))
                fh.flush()
                self._lock_path = lock
                return fh
            fh.close()
        raise OutputLocked(f"{self.path}: could not take the output lock {lock}")

    def _release(self) -> None:
        if self._lock is not None:
            Path(self._lock_path).unlink(missing_ok=True)    # while still holding it: see _take_lock
            self._lock.close()
            self._lock = None

    def _valid(self, raw: bytes):
        if not raw.endswith(b"\n"):
            return None
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(rec, dict) or rec.get(self.id_key) is None:
            return None
        return rec

    def _scan(self, redo) -> None:
        keep, n_bad, n_redo, seen = [], 0, 0, set()
        with open(self.path, "rb") as f:
            lines = f.readlines()
        for raw in lines:
            rec = self._valid(raw)
            if rec is None:
                n_bad += raw.strip() != b""
                continue
            rid = str(rec[self.id_key])
            if rid in seen:
                n_bad += 1              # a duplicate (two old runs at once): keep the first
                continue
            if redo is not None and redo(rec):
                n_redo += 1
                continue
            seen.add(rid)
            keep.append(raw)
        self.done = seen
        if len(keep) != len(lines):
            if not self.quiet and n_bad:
                print(f"warning: {self.path}: dropped {n_bad} torn, corrupt or duplicate line(s); "
                      "their records are done again", file=sys.stderr)
            atomic_write_text(self.path, b"".join(keep).decode("utf-8"))

    def write(self, rec: dict) -> None:
        data = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
        end = self._fh.tell()
        try:
            n = self._fh.write(data)
            if n != len(data):
                raise OSError(f"short write ({n} of {len(data)} bytes)")
        except BaseException:
            try:                        # never leave half a line behind (disk full, interrupted)
                os.ftruncate(self._fh.fileno(), end)
            except OSError:
                pass
            raise
        self.n_written += 1
        _WRITES[str(self.path)][0] += 1
        if rec.get(self.id_key) is not None:
            self.done.add(str(rec[self.id_key]))

    def close(self) -> None:
        try:
            if not self._fh.closed:
                os.fsync(self._fh.fileno())
                self._fh.close()
        finally:
            self._release()

    def __enter__(self) -> "ResumableWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------- provenance

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
    return {k: plain(v) for k, v in vars(args).items() if k != "func"}


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
