"""A content-addressed detection cache (SQLite, JSON values) and the weight-file hashes behind fingerprints.

    det = CachedDetector(detectors.load("hf-grounding-dino:PATH"))   # or detectors.load(..., cache=True)
    det.detect(image, ["dog", "cat"])     # computed once; the same pixels + phrases + fingerprint hit

Key = sha256 of {image: sha256 of the decoded pixels (mode, size, bytes) — or the image id for
backends keyed by id (oracles) —, backend name, fingerprint (weights hash, thresholds), sorted
distinct phrases}. Pixels rather than file bytes: the same picture re-encoded or passed as an array
must hit. Values are JSON, never pickle: a shared cache file must not be able to run code.

The database lives at ``cache_dir()/detections.sqlite`` (``HALLUC_CACHE`` moves it) in WAL mode,
so any number of processes can read while one writes; writers wait (busy timeout) rather than fail.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

from detectors.base import Detection, as_image, detect_batch
from halluc.provenance import sha256_files

_SCHEMA = """
CREATE TABLE IF NOT EXISTS detections (key TEXT PRIMARY KEY, backend TEXT, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
"""


def default_path() -> Path:
    from halluc.paths import cache_dir
    return cache_dir() / "detections.sqlite"


class DetectionCache:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")     # concurrent readers beside one writer
            except sqlite3.OperationalError:                # e.g. a file system without shared memory
                pass
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def get(self, key: str) -> list[Detection] | None:
        with self._lock:
            row = self._db().execute("SELECT value FROM detections WHERE key = ?", (key,)).fetchone()
        return None if row is None else decode(row[0])

    def put(self, key: str, backend: str, dets: list[Detection]) -> None:
        with self._lock:
            self._db().execute("INSERT OR REPLACE INTO detections VALUES (?, ?, ?)", (key, backend, encode(dets)))

    def file_sha256(self, path: str | os.PathLike) -> str:
        """sha256 of a file's content, recomputed only when its size or mtime changes (weights are big)."""
        p = Path(path).resolve()
        st = p.stat()
        with self._lock:
            row = self._db().execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path = ?",
                                     (str(p),)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        digest = sha256_files([p])
        with self._lock:
            self._db().execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                               (str(p), st.st_size, st.st_mtime_ns, digest))
        return digest

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def encode(dets: list[Detection]) -> str:
    return json.dumps([asdict(d) for d in dets])


def decode(text: str) -> list[Detection]:
    return [Detection(d["phrase"], None if d["box"] is None else tuple(d["box"]), float(d["score"]), d.get("label"))
            for d in json.loads(text)]


def image_digest(image) -> str:
    im = as_image(image)
    h = hashlib.sha256(f"{im.mode}|{im.size[0]}x{im.size[1]}|".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def files_digest(paths, cache: DetectionCache | None = None) -> str:
    """One digest over several files (weights, configs, vocab), by name and content."""
    cache = cache or DetectionCache()
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(f"{p.name}:{cache.file_sha256(p)}\n".encode())
    return h.hexdigest()


class CachedDetector:
    """Wraps any Detector; answers repeated questions from the cache without calling it."""

    def __init__(self, inner, cache: DetectionCache | None = None):
        self.inner = inner
        self.cache = cache or DetectionCache()
        self.name = inner.name

    def fingerprint(self) -> dict:
        return self.inner.fingerprint()         # BaseDetector computes it once and keeps it

    def key(self, image, phrases: list[str], image_id=None) -> str:
        if getattr(self.inner, "keyed_by", "image") == "image_id" or image is None:
            if image_id is None:
                raise ValueError(f"{self.name}: neither an image nor an image_id to key the cache on")
            img = f"id:{image_id}"
        else:
            img = image_digest(image)
        blob = json.dumps({"image": img, "backend": self.name, "fingerprint": self.fingerprint(),
                           "phrases": sorted(set(phrases))}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def detect(self, image, phrases: list[str], *, image_id=None) -> list[Detection]:
        return self.detect_batch([image], [phrases], [image_id])[0]

    def detect_batch(self, images, phrases_per_image, image_ids=None) -> list[list[Detection]]:
        image_ids = list(image_ids) if image_ids is not None else [None] * len(images)
        images = [as_image(im) for im in images]          # decode paths once, for hashing and detecting
        keys = [self.key(im, ph, i) for im, ph, i in zip(images, phrases_per_image, image_ids)]
        out = [self.cache.get(k) for k in keys]
        miss = [j for j, o in enumerate(out) if o is None]
        if miss:
            fresh = detect_batch(self.inner, [images[j] for j in miss], [phrases_per_image[j] for j in miss],
                                 [image_ids[j] for j in miss])
            for j, dets in zip(miss, fresh):
                self.cache.put(keys[j], self.name, dets)
                out[j] = dets
        return out

    def __getattr__(self, attr):                # config, keyed_by, ... of the wrapped backend
        if attr == "inner":                     # not yet set (copy, unpickle): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)
