"""``halluc view``: browse corrected captions in a local Streamlit app (read-only).

    halluc view runs/x/corrected.jsonl                          # http://127.0.0.1:8501
    halluc view greedy.jsonl vcd.jsonl corrected.jsonl --port 8600   # several files, joined by id
    halluc view corrected.jsonl --images val2014/               # COCO records: images under val2014/
    halluc view corrected.jsonl --open                          # also open it in a web browser
    # deep link to one record: http://127.0.0.1:8501/?id=world-bias/200001

The app (``halluc/viewer_app.py``) lists the records of every file, filters them, and shows one id at
a time across all files: the image with the detector's boxes coloured by verdict, original and
corrected text with the edits highlighted, and the claims with their evidence; run metrics on top.

Images are read only from under the allowed image roots; any other path is refused (shown, not read):
- with ``--images DIR``: DIR alone; relative image paths (and COCO ``image_id``s) are taken from DIR;
- without it: the directories of the input files (relative image paths are taken from the record's
  own file's directory) and, for world records (ids ``world-…``), the halluc world cache
  (``$HALLUC_CACHE/world``, default ``~/.cache/halluc/world``), where ``halluc decode`` puts the
  builtin splits' images.
Paths are resolved (``..`` and symlinks followed) before the check.

The file list reaches the app in the environment variable ``HALLUC_VIEW`` (JSON), never through a shell.
This module holds the pure helpers the app uses (no Streamlit import), so they are testable alone.

Streamlit is started with its settings on its command line (they override any ``~/.streamlit`` or
``./.streamlit`` config): no usage statistics, no first-run e-mail prompt (``server.showEmailPrompt``
false: without it, a machine with no ``~/.streamlit/credentials.toml`` waits on that prompt forever
when stdin is not a terminal), headless (no browser) unless ``--open``, no file watcher, stdin closed.
The page names files and images relative to their folder, never by absolute path.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from halluc.command import guard, module_main

ENV = "HALLUC_VIEW"
APP = Path(__file__).with_name("viewer_app.py")
VERDICT_COLOURS = {"supported": (22, 163, 74), "contradicted": (220, 38, 38), "unverifiable": (128, 128, 128)}


def port_number(s: str) -> int:
    """A TCP port, 1..65535 (``type=port_number``)."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number (1..65535), got {s!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {v}")
    return v


port_number.__name__ = "port number"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "view", help="browse corrected captions in a local Streamlit app",
        description="Start a read-only Streamlit viewer of halluc JSONL files (DESIGN.md §1). Several files "
                    "are shown side by side, joined by id. Images are read only from under --images, or by "
                    "default from the input files' folders and (world records) the halluc world cache. "
                    "Streamlit runs with settings of its own: headless (no browser opened; --open opens one), "
                    "no usage statistics, no first-run e-mail prompt, so it also serves from a script or "
                    "a service with no terminal.")
    p.add_argument("files", nargs="+", type=Path, help="JSONL files (corrected.jsonl, captions.jsonl, ...)")
    p.add_argument("--images", type=Path, help="the only folder images are read from; relative image paths and "
                   "COCO image ids refer to it")
    p.add_argument("--port", type=port_number, default=8501, help="port, 1..65535 (default %(default)s)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--open", action="store_true", help="open the viewer in a web browser once it serves")
    b.add_argument("--headless", action="store_false", dest="open",
                   help="do not open a browser (the default; kept for older scripts)")
    p.set_defaults(func=run)
    return p


def config(files, images=None) -> str:
    """The JSON the app reads from ``$HALLUC_VIEW`` (a file given twice is listed once)."""
    return json.dumps({"files": list(dict.fromkeys(str(Path(f).resolve()) for f in files)),
                       "images": str(Path(images).resolve()) if images else None})


def command(port: int, address: str = "127.0.0.1", open_browser: bool = False) -> list[str]:
    """The Streamlit command line: every setting that could stop or slow a start is given here, where it
    overrides the user's and the project's ``.streamlit/config.toml``."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", str(not open_browser).lower(),
            "--server.showEmailPrompt", "false", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false"]


def _run(args) -> int:
    from halluc.paths import input_dir, input_file
    for f in args.files:                      # a folder, FIFO, missing or unreadable file: one line, exit 2
        input_file(f)
    if args.images is not None:
        input_dir(args.images, "--images")
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("error: halluc view needs streamlit (pip install streamlit)", file=sys.stderr)
        return 2
    env = {**os.environ, ENV: config(args.files, args.images)}
    print(f"halluc view: http://{args.address}:{args.port}/  (Ctrl-C stops it)", file=sys.stderr)
    proc = subprocess.Popen(command(args.port, args.address, args.open), env=env, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))     # a TERM to halluc view stops the server too
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:                                   # never leave the server behind
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


run = guard(_run)


def labels(files) -> dict[str, str]:
    """Short unique names for the page: the file names, else the paths relative to the files' common
    folder (``a/corrected.jsonl``, ``b/corrected.jsonl``); never an absolute path."""
    files = list(files)
    short = {f: Path(f).name for f in files}
    if len(set(short.values())) == len(files):
        return short
    try:
        common = os.path.commonpath([str(Path(f).parent) for f in files])
    except ValueError:                         # different drives (Windows): names alone
        return short
    return {f: Path(os.path.relpath(f, common)).as_posix() for f in files}


def relative(path, folders) -> str:
    """``path`` relative to the first of ``folders`` it lies under, else its name: how the page shows it."""
    p = Path(path)
    for d in folders:
        d = Path(d)
        if p.is_relative_to(d) and p != d:
            return p.relative_to(d).as_posix()
    return p.name or str(p)


# ---------------------------------------------------------------- images

def is_world_record(rec: dict) -> bool:
    return str(rec.get("id", "")).startswith("world-")


def world_root() -> Path:
    from halluc.world.builtin import world_cache
    return world_cache()


def image_roots(files, images=None, world: bool = False) -> list[Path]:
    """Folders a record's image may be read from (see the module docstring)."""
    if images:
        return [Path(images).resolve()]
    roots = list(dict.fromkeys(Path(f).resolve().parent for f in files))
    return roots + [world_root().resolve()] if world else roots


def resolve_image(rec: dict, base: Path, roots: list[Path]) -> tuple[Path | None, str | None]:
    """(path, None) for an image under one of ``roots``; (None, why) otherwise. Relative paths are
    taken from ``base``; a record with only an integer ``image_id`` names a COCO val2014 file."""
    from halluc.correct import _image_path
    path = _image_path(rec, Path(base))           # an absolute image is kept, a relative one taken from base
    if path is None:
        return None, "the record names no image"
    img = rec.get("image")
    if not (isinstance(img, str) and img):
        img = Path(path).name                     # the COCO file an integer image_id names
    try:
        full = Path(path).resolve()
    except (OSError, ValueError, RuntimeError) as e:          # RuntimeError: a symlink loop (Python < 3.13)
        return None, f"image path {img!r} cannot be resolved: {getattr(e, 'strerror', None) or e}"
    if not any(full.is_relative_to(r) for r in roots):
        rel = os.path.relpath(full, Path(base).resolve()) if full.is_absolute() else str(full)
        same = Path(img) == full if Path(img).is_absolute() else Path(img).as_posix() == Path(rel).as_posix()
        where = "" if same else f" (it resolves to {Path(rel).as_posix()})"
        return None, (f"image path {img!r}{where} is outside the allowed image roots "
                      f"({', '.join(r.name + '/' for r in roots)}): refused")
    if not full.exists():                      # what is there (a FIFO, a corrupt file) is for open_image to say
        return None, f"image not found: {relative(full, [Path(base).resolve(), *roots])}"
    return full, None


def box_verdicts(claims: list) -> dict[tuple, str]:
    """Box (rounded xyxy) -> verdict to colour it with: contradicted when any claim citing the box was
    contradicted, else supported when one was supported, else unverifiable."""
    seen: dict[tuple, set] = {}
    for c in claims:
        for b in (c.get("boxes") or []) if isinstance(c, dict) else []:
            if isinstance(b, dict) and _is_box(b.get("box")):
                seen.setdefault(_key(b["box"]), set()).add(c.get("verdict"))
    return {k: next((v for v in ("contradicted", "supported") if v in vs), "unverifiable") for k, vs in seen.items()}


def _is_box(b) -> bool:
    return isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)


def _key(box) -> tuple:
    return tuple(round(float(v), 2) for v in box)


def draw_boxes(image, evidence: dict | None, claims: list, target: int = 384):
    """A copy of ``image`` scaled up (nearest neighbour, whole factor) to about ``target`` px, with every
    evidence box drawn in its verdict's colour and labelled ``phrase score``."""
    from PIL import ImageDraw, ImageFont
    w, h = image.size
    s = max(1, target // max(w, h))
    out = image.convert("RGB").resize((w * s, h * s), resample=0)
    ev = evidence if isinstance(evidence, dict) else {}
    size = ev.get("image_size")
    sx, sy = (w / size[0], h / size[1]) if isinstance(size, list) and len(size) == 2 and all(size) else (1.0, 1.0)
    verdicts = box_verdicts(claims)
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(10, min(16, 4 * s)))
    boxes = ev.get("boxes") if isinstance(ev.get("boxes"), dict) else {}
    for phrase, found in boxes.items():
        for b in found if isinstance(found, list) else []:
            if not (isinstance(b, dict) and _is_box(b.get("box"))):
                continue
            colour = VERDICT_COLOURS[verdicts.get(_key(b["box"]), "unverifiable")]
            x0, y0, x1, y1 = b["box"]
            xy = [x0 * sx * s, y0 * sy * s, x1 * sx * s, y1 * sy * s]
            draw.rectangle(xy, outline=colour, width=max(2, s // 2))
            score = b.get("score")
            label = f"{phrase} {score:.2f}" if isinstance(score, (int, float)) else str(phrase)
            tx, ty = xy[0], max(0, xy[1] - getattr(font, "size", 11) - 4)
            draw.rectangle(draw.textbbox((tx, ty), label, font=font), fill=colour)
            draw.text((tx, ty), label, fill=(255, 255, 255), font=font)
    return out


# ---------------------------------------------------------------- text

_STYLE = {"remove": "background:#fecaca;color:#7f1d1d;text-decoration:line-through",
          "old": "background:#fde68a;color:#78350f;text-decoration:line-through",
          "new": "background:#bbf7d0;color:#14532d"}


def _valid_edits(text: str, edits) -> list[dict] | None:
    """The edits sorted by span, or None when they are not well-formed non-overlapping spans of ``text``."""
    if not isinstance(edits, list):
        return None
    out, end = [], 0
    for e in sorted((e for e in edits if isinstance(e, dict)), key=lambda e: tuple(e.get("span") or (0, 0))):
        sp = e.get("span")
        if not (isinstance(sp, list) and len(sp) == 2 and all(isinstance(v, int) for v in sp)
                and end <= sp[0] <= sp[1] <= len(text) and isinstance(e.get("new", ""), str)):
            return None
        out.append(e)
        end = sp[1]
    return out if len(out) == len(edits) else None


def _tag(style: str, body: str, title: str) -> str:
    return f'<span style="{_STYLE[style]}" title="{html.escape(title, quote=True)}">{html.escape(body)}</span>'


def highlight(text: str, edits, corrected: str | None) -> tuple[str, str, str | None]:
    """(original HTML, corrected HTML, problem): the original with removed spans struck through in red
    and replaced ones in amber, the corrected text with the new words in green. Everything is escaped.
    When the edits do not rebuild ``corrected`` (a hand-edited file), both sides come back plain with a problem."""
    def plain(s):
        return html.escape(s or "")
    if corrected is None:
        return plain(text), "", None
    good = _valid_edits(text, edits if edits is not None else [])
    if good is None:
        return plain(text), plain(corrected), "the record's edits are malformed; shown without highlights"
    left, right, rebuilt, pos = [], [], [], 0
    for e in good:
        s, t = e["span"]
        new, why = e.get("new") or "", f"{e.get('op', 'edit')}: {e.get('reason', '')}"
        left.append(plain(text[pos:s]))
        right.append(plain(text[pos:s]))
        rebuilt.append(text[pos:s] + new)
        if t > s:
            left.append(_tag("old" if new else "remove", text[s:t], why))
        if new:
            right.append(_tag("new", new, why))
        pos = t
    left.append(plain(text[pos:]))
    right.append(plain(text[pos:]))
    if "".join(rebuilt) + text[pos:] != corrected:
        return plain(text), plain(corrected), "the record's edits do not rebuild its corrected_text; shown without highlights"
    return "".join(left), "".join(right), None


_MD = re.compile(r"([\\`*_\[\]<>#|~$])")


def md(value) -> str:
    """``value`` as literal text inside Streamlit markdown (st.warning, st.header, ...): no links, code or HTML."""
    return _MD.sub(r"\\\1", str(value))


def as_block(inner_html: str) -> str:
    return f'<div style="white-space:pre-wrap;line-height:1.6;font-size:0.95rem">{inner_html}</div>'


def claim_rows(claims) -> list[dict]:
    """The claims as table rows: kind, object, claimed value, verdict, evidence."""
    rows = []
    for c in claims if isinstance(claims, list) else []:
        if not isinstance(c, dict):
            continue
        boxes = [b for b in c.get("boxes") or [] if isinstance(b, dict)]
        scores = ", ".join(f"{b['score']:.2f}" for b in boxes if isinstance(b.get("score"), (int, float)))
        ev = [f"{len(boxes)} box{'es' if len(boxes) != 1 else ''}" + (f" ({scores})" if scores else "")] if boxes else []
        if c.get("observed") is not None:
            ev.append(f"seen: {c['observed']}")
        if c.get("reason"):
            ev.append(str(c["reason"]))
        claimed = c.get("value")
        rows.append({"kind": str(c.get("kind", "")) + (f" ({c['attribute']})" if c.get("attribute") else ""),
                     "object": " / ".join(map(str, c.get("objects") or [])), "text": str(c.get("text", "")),
                     "claimed": "present" if claimed is True else str(claimed),
                     "verdict": str(c.get("verdict", "")), "evidence": "; ".join(ev)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.viewer FILE …`` (``halluc view`` once wired into halluc.cli)."""
    return module_main(add_parser, argv, command="view")


if __name__ == "__main__":
    sys.exit(main())
