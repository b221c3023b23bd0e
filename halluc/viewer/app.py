"""The Streamlit page behind ``halluc view`` (rules for files and images: halluc/viewer/__init__.py).

Started by ``halluc view``, which passes the files in ``$HALLUC_VIEW``; by hand:
``streamlit run halluc/viewer/app.py -- corrected.jsonl [more.jsonl ...] [--images DIR]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import streamlit as st

from halluc import viewer as V

VERDICTS = ("supported", "contradicted", "unverifiable")


def settings() -> dict:
    if os.environ.get(V.ENV):
        return json.loads(os.environ[V.ENV])
    ap = argparse.ArgumentParser(prog="halluc/viewer/app.py")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--images")
    a = ap.parse_args([x for x in sys.argv[1:] if x != "--"])
    return json.loads(V.config(a.files, a.images))


@st.cache_data(show_spinner=False)
def load(path: str, mtime: float):
    """(records, problems): the file's good records as halluc.records.Item, and every bad line."""
    from halluc.records import BadInput, ReadReport, read_records
    report = ReadReport(echo=False)
    try:
        items = list(read_records(path, need_text=True, report=report))
    except BadInput as e:
        return [], [str(e)]
    return items, [str(b) for b in report.bad]


@st.cache_data(show_spinner=False)
def world_metrics(path: str, mtime: float) -> list[dict]:
    """The metrics of the plug-in domain that claims the file's records (the world's), of the text and of
    the corrected text, ground truth found as `halluc eval <plug-in>` finds it."""
    from types import SimpleNamespace
    from halluc.domains import plugin_for
    from halluc.registry import names, resolve, title
    items = [it for it in load(path, mtime)[0] if "image_id" in it.rec]
    owners = {getattr(plugin_for(it.rec, it.rec.get("image")), "name", None) for it in items}
    if not items or len(owners) != 1 or (name := owners.pop()) not in names("metric"):
        return []
    metric = resolve("metric", name)
    truth = metric.ground_truth(SimpleNamespace(world=None), items)
    items = [it for it in items if str(it.rec["image_id"]) in truth]
    out = []
    for which, get in (("before (text)", lambda it: it.text), ("after (corrected_text)", lambda it: it.rec.get("corrected_text"))):
        rows = [(it.id, it.rec["image_id"], get(it)) for it in items if isinstance(get(it), str)]
        if rows:
            t = metric.score(SimpleNamespace(), rows, truth).totals
            out.append({"text": which, "captions": len(rows), **{title(k): f"{t[k]:.1f}" for k in metric.columns}})
    return out


def row(label: str, path: str, it) -> dict:
    rec = it.rec
    claims = rec.get("claims") if isinstance(rec.get("claims"), list) else []
    corrected = rec.get("corrected_text") if isinstance(rec.get("corrected_text"), str) else None
    return {"file": label, "path": path, "id": it.id, "line": it.line, "rec": rec, "text": it.text,
            "corrected": corrected, "claims": claims, "method": str(rec.get("method", "?")),
            "changed": corrected is not None and corrected != it.text,
            "contradicted": sum(isinstance(c, dict) and c.get("verdict") == "contradicted" for c in claims)}


# ---------------------------------------------------------------- data

cfg = settings()
st.set_page_config(page_title="halluc view", layout="wide")
st.title("halluc view")
files = list(cfg.get("files") or [])
if not files:
    st.error("no input file (halluc view FILE.jsonl ...)")
    st.stop()
names = V.labels(files)


def tidy(message, f: str) -> str:
    """A reader's message with the file's absolute path shown as the page names the file."""
    return str(message).replace(f, names[f])


rows, stats, corrected_files = [], [], set()
for f in files:
    try:
        items, bad = load(f, os.path.getmtime(f))
    except OSError as e:
        st.error(f"{V.md(names[f])}: cannot read: {V.md(e.strerror or tidy(e, f))}")
        continue
    bad = [tidy(b, f) for b in bad]
    rs = [row(names[f], f, it) for it in items]
    rows += rs
    if bad:
        st.warning(f"{V.md(names[f])}: {len(bad)} malformed line(s) skipped, the other records are shown:\n\n"
                   + "\n".join(f"- {V.md(b)}" for b in bad[:20]) + ("\n- …" if len(bad) > 20 else ""))
    lacking = [r for r in rs if r["corrected"] is None]
    if rs and len(lacking) == len(rs):
        st.info(f"{V.md(names[f])}: no record has a corrected_text (captions only)")
    else:
        corrected_files.add(f)
        if lacking:
            st.warning(f"{V.md(names[f])}: {len(lacking)} record(s) without a corrected_text: "
                       + ", ".join(V.md(r["id"]) for r in lacking[:10]) + (" …" if len(lacking) > 10 else ""))
    verdicts = [c.get("verdict") for r in rs for c in r["claims"] if isinstance(c, dict)]
    stats.append({"file": names[f], "records": len(rs), "bad lines": len(bad),
                  "corrected": len(rs) - len(lacking), "changed": sum(r["changed"] for r in rs),
                  "claims": len(verdicts), **{v: verdicts.count(v) for v in VERDICTS},
                  "errors": sum(bool(r["rec"].get("error")) for r in rs)})

with st.expander("Run metrics", expanded=True):
    st.table(stats, hide_index=True)
    world = []
    for f in files:
        if os.path.isfile(f) and any(V.is_world_record(r["rec"]) for r in rows if r["path"] == f):
            try:
                world += [{"file": names[f], **m} for m in world_metrics(f, os.path.getmtime(f))]
            except Exception as e:  # noqa: BLE001 - metrics are extra; the records still show
                st.info(f"{V.md(names[f])}: no world metrics ({type(e).__name__}: {V.md(tidy(e, f))})")
    if world:
        st.caption("Controlled-world metrics (%), as `halluc eval world` computes them, before and after correction")
        st.table(world, hide_index=True)

# ---------------------------------------------------------------- filters

sb = st.sidebar
sb.header("Filter")
pick_files = sb.multiselect("files", list(names.values()), default=list(names.values()), key="files")
methods = sorted({r["method"] for r in rows})
pick_methods = sb.multiselect("method", methods, default=methods, key="methods")
only_changed = sb.checkbox("changed only", key="changed")
only_contra = sb.checkbox("with contradicted claims", key="contradicted")
query = sb.text_input("search (id or text)", key="search").strip().lower()


def keep(r) -> bool:
    return (r["file"] in pick_files and r["method"] in pick_methods and (r["changed"] or not only_changed)
            and (r["contradicted"] > 0 or not only_contra)
            and (not query or any(query in (s or "").lower() for s in (r["id"], r["text"], r["corrected"]))))


ids = list(dict.fromkeys(r["id"] for r in rows if keep(r)))
all_ids = set(r["id"] for r in rows)
if "record" not in st.session_state:                  # first run of this session: follow the deep link ?id=
    want = st.query_params.get("id")
    if want and want in all_ids:
        st.session_state.record = want                 # the default filters pass every record
    elif want:
        st.warning(f"?id={V.md(want)}: no record with this id in the files")
if st.session_state.get("record") not in ids:
    st.session_state.record = ids[0] if ids else None
marks = {r["id"]: "" for r in rows}
for r in rows:
    marks[r["id"]] += (" ✎" if r["changed"] and "✎" not in marks[r["id"]] else "") + \
                      (" ✗" if r["contradicted"] and "✗" not in marks[r["id"]] else "")
choice = sb.selectbox(f"record ({len(ids)} of {len(all_ids)} ids)", ids, key="record",
                      format_func=lambda i: f"{i}{marks.get(i, '')}")
sb.caption("✎ changed by the correction, ✗ has contradicted claims")
if choice is None:
    st.warning("no record matches the filters")
    st.stop()
if st.query_params.get("id") != choice:
    st.query_params["id"] = choice

# ---------------------------------------------------------------- one record


def show_image(r, container) -> None:
    roots = V.image_roots(files, cfg.get("images"), world=V.is_world_record(r["rec"]))
    base = Path(cfg["images"]) if cfg.get("images") else Path(r["path"]).parent
    path, problem = V.resolve_image(r["rec"], base, roots)
    if problem:
        container.error(V.md(problem))
        return
    from halluc.images import BadImage, open_image
    name = V.relative(path, [base.resolve(), *roots])        # as the page shows it: never the absolute path
    try:
        im = open_image(path)          # a FIFO, a folder, a corrupt or oversized file: BadImage, never a hang
    except BadImage as e:
        container.error(V.md(str(e).replace(str(path), name)))
        return
    try:
        img = V.draw_boxes(im, r["rec"].get("evidence"), r["claims"])
    except Exception as e:  # noqa: BLE001 - a bad image is this record's problem only
        container.error(f"cannot draw image {V.md(name)}: {type(e).__name__}: {V.md(e)}")
        return
    ev = r["rec"].get("evidence")
    container.image(img, width="stretch", caption=f"{name}: {ev.get('detector', '?')} boxes: green supported, "
                    "red contradicted, grey no verdict" if isinstance(ev, dict) else name)


def show(r) -> None:
    rec, where = r["rec"], V.md(f"{r['file']}:{r['line']}")
    if rec.get("error"):
        st.warning(f"{where}: correction error: {V.md(rec['error'])}")
    if r["path"] in corrected_files and r["corrected"] is None:
        st.warning(f"{where}: this record has no corrected_text")
    if r["corrected"] is None:
        left, right = st.columns([1, 2])
        show_image(r, left)
        right.markdown("**text**")
        right.html(V.as_block(V.highlight(r["text"], None, None)[0]))       # escaped, no highlights
        return
    old, new, problem = V.highlight(r["text"], rec.get("edits"), r["corrected"])
    if problem:
        st.warning(V.md(problem))
    a, b, c = st.columns([1, 1, 1])
    show_image(r, a)
    b.markdown("**original**")
    b.html(V.as_block(old))
    c.markdown("**corrected**" + (" (unchanged)" if not r["changed"] else ""))
    c.html(V.as_block(new))
    claims = V.claim_rows(r["claims"])
    st.markdown(f"**claims** ({len(claims)}: " + ", ".join(
        f"{sum(x['verdict'] == v for x in claims)} {v}" for v in VERDICTS) + ")")
    if claims:
        st.table(claims, hide_index=True)


mine = [r for r in rows if r["id"] == choice and r["file"] in pick_files]
first = mine[0]["rec"] if mine else {}
st.header(V.md(choice))
st.caption(" · ".join(f"{k}: {V.md(first[k])}" for k in ("image_id", "prompt", "model_id") if k in first))
if len(mine) > 1:
    st.subheader("Side by side")
    for col, r in zip(st.columns(len(mine)), mine):
        col.markdown(f"**{V.md(r['file'])}** · {V.md(r['method'])}" + (f" · {r['contradicted']} contradicted" if r["claims"] else ""))
        old, new, _ = V.highlight(r["text"], r["rec"].get("edits"), r["corrected"])
        col.html(V.as_block(new if r["corrected"] is not None else old))     # the final text of each file
detail = [r for r in mine if r["corrected"] is not None] or mine    # caption-only files: in "Side by side"
for r in detail:
    st.subheader(V.md(f"{r['file']} · line {r['line']} · {r['method']}"))
    try:
        show(r)
    except Exception as e:  # noqa: BLE001 - one odd record must not hide the others
        st.error(f"{V.md(r['file'])}:{r['line']}: cannot show this record: {type(e).__name__}: {V.md(e)}")
