"""Writing outputs so that nothing is ever torn or lost: atomic whole files, and resumable JSONL.

    atomic_write_json("results.json", totals)          # readers see the old or the new file, never half
    with ResumableWriter("out.jsonl") as w:             # appends, one whole line per write, skips ids done
        for item in items:
            if item.id not in w.done:
                w.write({...})

Files get the mode a plain ``open`` would give them (0666 less the umask). While a command runs, what
it appended is counted, so that Ctrl-C can say how many records reached which file.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from halluc.errors import BadInput


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
