"""The viewer behind ``halluc view`` (halluc/commands/view.py): browse corrected captions in a local
Streamlit app, read-only. This package holds the pure helpers (no Streamlit import, testable alone);
``halluc/viewer/app.py`` is the page.

    halluc view runs/x/corrected.jsonl                          # http://127.0.0.1:8501
    halluc view greedy.jsonl vcd.jsonl corrected.jsonl --port 8600   # several files, joined by id
    halluc view corrected.jsonl --images val2014/               # COCO records: images under val2014/
    halluc view corrected.jsonl --open                          # also open it in a web browser
    # deep link to one record: http://127.0.0.1:8501/?id=world-bias/200001

The app (``halluc/viewer/app.py``) lists the records of every file, filters them, and shows one id at
a time across all files: the image with the detector's boxes coloured by verdict, original and
corrected text with the edits highlighted, and the claims with their evidence; run metrics on top.

Images are read only from under the allowed image roots; any other path is refused (shown, not read):
- with ``--images DIR``: DIR alone; relative image paths (and COCO ``image_id``s) are taken from DIR;
- without it: the directories of the input files (relative image paths are taken from the record's
  own file's directory) and, for records a plug-in domain claims, its image folders (the world's:
  ``$HALLUC_CACHE/world``, where ``halluc decode`` puts the builtin splits' images).
Paths are resolved (``..`` and symlinks followed) before the check.

The file list reaches the app in the environment variable ``HALLUC_VIEW`` (JSON), never through a shell.
Streamlit is started with its settings on its command line (they override any ``~/.streamlit`` or
``./.streamlit`` config): no usage statistics, no first-run e-mail prompt (``server.showEmailPrompt``
false: without it, a machine with no ``~/.streamlit/credentials.toml`` waits on that prompt forever
when stdin is not a terminal), headless (no browser) unless ``--open``, no file watcher, stdin closed.
The page names files and images relative to their folder, never by absolute path.
"""
from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path


ENV = "HALLUC_VIEW"                   # the JSON config the app reads (files, images)
VERDICT_COLOURS = {"supported": (22, 163, 74), "contradicted": (220, 38, 38), "unverifiable": (128, 128, 128)}


def config(files, images=None) -> str:
    """The JSON the app reads from ``$HALLUC_VIEW`` (a file given twice is listed once)."""
    return json.dumps({"files": list(dict.fromkeys(str(Path(f).resolve()) for f in files)),
                       "images": str(Path(images).resolve()) if images else None})


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
    """Is the record a plug-in domain's (the controlled world's: ids ``world-…``)?"""
    from halluc.domains import plugin_for
    return plugin_for(rec, rec.get("image")) is not None


def plugin_roots() -> list[Path]:
    """Where plug-in domains keep their records' images (the world cache, for the builtin splits)."""
    from halluc.domains import plugins
    return [r for p in plugins() for r in p.image_roots()]


def image_roots(files, images=None, world: bool = False) -> list[Path]:
    """Folders a record's image may be read from (see the module docstring)."""
    if images:
        return [Path(images).resolve()]
    roots = list(dict.fromkeys(Path(f).resolve().parent for f in files))
    return roots + [r.resolve() for r in plugin_roots()] if world else roots


def resolve_image(rec: dict, base: Path, roots: list[Path]) -> tuple[Path | None, str | None]:
    """(path, None) for an image under one of ``roots``; (None, why) otherwise. Relative paths are
    taken from ``base``; a record with only an integer ``image_id`` names a COCO val2014 file."""
    from halluc.pipelines.inputs import image_path
    path = image_path(rec, Path(base))           # an absolute image is kept, a relative one taken from base
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
