"""``halluc view``: the helpers (highlighting, image roots, boxes), the Streamlit app driven by
``AppTest`` (filters, record view, bad lines, refused images, deep link, world metrics) and one
real-browser check (the app served on 127.0.0.1, loaded in headless Chromium, screenshot saved).

Record files are written by hand in tmp_path next to a tiny PNG: nothing needs the builtin model.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from halluc import viewer as V

st_testing = pytest.importorskip("streamlit.testing.v1", reason="halluc view needs streamlit")
AppTest = st_testing.AppTest
ROOT = Path(__file__).resolve().parents[1]

A1 = {"id": "a1", "image": "img.png", "method": "greedy", "text": "a red star and a cat .",
      "corrected_text": "a red star .",
      "edits": [{"op": "remove", "span": [10, 20], "old": " and a cat", "new": "", "reason": "no cat detected"}],
      "claims": [{"kind": "existence", "span": [6, 10], "text": "star", "objects": ["star"], "value": True,
                  "verdict": "supported", "boxes": [{"box": [2, 2, 10, 10], "score": 0.9}]},
                 {"kind": "existence", "span": [17, 20], "text": "cat", "objects": ["cat"], "value": True,
                  "verdict": "contradicted", "reason": "no cat detected"}],
      "evidence": {"detector": "fake", "image_size": [16, 16],
                   "boxes": {"star": [{"box": [2, 2, 10, 10], "score": 0.9, "label": "star"}]}}}
B2 = {"id": "b2", "image": "img.png", "method": "greedy", "text": "a <b>star</b> & co .",
      "corrected_text": "a <b>star</b> & co .", "edits": [], "claims": []}
C3 = {"id": "c3", "image": "../outside.png", "method": "greedy", "text": "a blue moon .",
      "corrected_text": "a red moon .",
      "edits": [{"op": "replace", "span": [2, 6], "old": "blue", "new": "red", "reason": "colour: blue claimed, red seen"}],
      "claims": [{"kind": "attribute", "attribute": "colour", "span": [2, 6], "text": "blue", "objects": ["moon"],
                  "value": "blue", "verdict": "contradicted", "observed": "red"}]}
D4 = {"id": "d4", "image": "img.png", "method": "greedy", "text": "a ring ."}        # no corrected_text


def write(path: Path, lines) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    Image.new("RGB", (16, 16), (40, 40, 40)).save(run / "img.png")
    Image.new("RGB", (16, 16), (255, 255, 255)).save(tmp_path / "outside.png")     # exists, but outside the root
    corrected = write(run / "corrected.jsonl", [A1, B2, "{not json", C3, D4])
    vcd = write(run / "vcd.jsonl", [{"id": "a1", "image": "img.png", "method": "vcd", "text": "a big red star ."},
                                    {"id": "b2", "image": "img.png", "method": "vcd", "text": "a star ."}])
    return corrected, vcd


def app(monkeypatch, files, images=None, query=None):
    monkeypatch.setenv(V.ENV, V.config(files, images))
    at = AppTest.from_file(str(V.APP), default_timeout=60)
    if query:
        at.query_params.update(query)
    return at.run()


def ids(at) -> list[str]:
    """The record ids the selectbox offers (its options are shown as "id ✎ ✗")."""
    return [o.split()[0] for o in at.selectbox(key="record").options]


def html_of(at) -> str:
    return "\n".join(h.value for h in at.html)


# ---------------------------------------------------------------- helpers

def test_highlight_escapes_and_marks_edits():
    old, new, problem = V.highlight(A1["text"], A1["edits"], A1["corrected_text"])
    assert problem is None
    assert "line-through" in old and "and a cat" in old and "no cat detected" in old
    assert "cat" not in new and "a red star" in new
    old, new, problem = V.highlight(C3["text"], C3["edits"], C3["corrected_text"])
    assert ">blue</span>" in old and ">red</span>" in new
    old, new, _ = V.highlight(B2["text"], [], B2["corrected_text"])
    assert "<b>" not in old + new and "&lt;b&gt;star&lt;/b&gt; &amp; co" in new
    assert V.md("[x](javascript:y) <b>`c`") == r"\[x\](javascript:y) \<b\>\`c\`"      # literal in st.warning etc.
    bad = [{"op": "remove", "span": [0, 99], "new": ""}]
    assert V.highlight("abc", bad, "")[2] and V.highlight("abc", [], "abd")[2]       # malformed / not rebuilding


def test_resolve_image_roots(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "in" / "x.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "y.png")
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "y.png")
    roots = V.image_roots([tmp_path / "in" / "f.jsonl"])
    base = tmp_path / "in"
    assert V.resolve_image({"image": "x.png"}, base, roots)[0] == (tmp_path / "in" / "x.png").resolve()
    for bad in ("../y.png", str(tmp_path / "y.png"), "link.png", "/etc/passwd"):
        path, why = V.resolve_image({"image": bad}, base, roots)
        assert path is None and "refused" in why, bad
    assert "not found" in V.resolve_image({"image": "nope.png"}, base, roots)[1]
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    assert V.image_roots([tmp_path / "in" / "f.jsonl"], world=True)[-1] == (tmp_path / "cache" / "world").resolve()
    assert V.image_roots([tmp_path / "in" / "f.jsonl"], images=tmp_path, world=True) == [tmp_path.resolve()]


def test_draw_boxes_scales_up_and_colours_by_verdict():
    img = V.draw_boxes(Image.new("RGB", (16, 16)), A1["evidence"], A1["claims"])
    assert img.size == (384, 384)
    assert img.getpixel((2 * 24, 6 * 24)) == V.VERDICT_COLOURS["supported"]       # left edge of the star's box
    contra = [dict(A1["claims"][0], verdict="contradicted")]
    assert V.draw_boxes(Image.new("RGB", (16, 16)), A1["evidence"], contra).getpixel((48, 144)) == \
        V.VERDICT_COLOURS["contradicted"]
    assert V.draw_boxes(Image.new("RGB", (16, 16)), A1["evidence"], []).getpixel((48, 144)) == \
        V.VERDICT_COLOURS["unverifiable"]


def test_cli_refuses_missing_file_and_passes_files_in_env(tmp_path, capsys):
    import argparse
    ap = argparse.ArgumentParser()
    V.add_parser(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["view", str(tmp_path / "nope.jsonl")])
    assert args.func(args) == 2 and "not a file" in capsys.readouterr().err
    cmd = V.command(8599)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and "127.0.0.1" in cmd
    assert json.loads(V.config([tmp_path / "a b;rm.jsonl"]))["files"] == [str((tmp_path / "a b;rm.jsonl").resolve())]


# ---------------------------------------------------------------- the app (AppTest)

def test_app_filters_and_record_view(monkeypatch, files):
    at = app(monkeypatch, files)
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "malformed" in warnings and "corrected.jsonl:3" in warnings           # the bad line, by file:line
    assert "without a corrected_text" in warnings and "d4" in warnings
    assert ids(at) == ["a1", "b2", "c3", "d4"]
    stats = at.table[0].value
    assert list(stats["records"]) == [4, 2] and list(stats["contradicted"]) == [2, 0]

    at.checkbox(key="changed").check().run()
    assert ids(at) == ["a1", "c3"]
    at.selectbox(key="record").select("c3").run()
    assert "refused" in " ".join(e.value for e in at.error)                      # ../outside.png
    assert ">red</span>" in html_of(at) and at.query_params["id"] == "c3"
    at.selectbox(key="record").select("a1").run()
    assert "a red star ." in html_of(at) and not at.error
    assert "side by side" in " ".join(s.value for s in at.subheader).lower()       # corrected + vcd, joined by id

    at.checkbox(key="changed").uncheck().run()
    at.text_input(key="search").input("moon").run()
    assert ids(at) == ["c3"]
    at.text_input(key="search").input("").run()
    at.multiselect(key="methods").select("vcd").unselect("greedy").run()
    assert ids(at) == ["a1", "b2"]
    at.multiselect(key="methods").select("greedy").run()
    at.checkbox(key="contradicted").check().run()
    assert ids(at) == ["a1", "c3"]
    assert not at.exception


def test_app_deep_link_and_missing_corrected_text(monkeypatch, files):
    at = app(monkeypatch, files, query={"id": "d4"})
    assert at.selectbox(key="record").value == "d4"
    assert at.header[0].value == "d4"
    assert any("no corrected_text" in w.value for w in at.warning)
    at = app(monkeypatch, files, query={"id": "zz"})
    assert any("zz" in w.value for w in at.warning) and at.selectbox(key="record").value == "a1"


def test_app_images_root_option(monkeypatch, files, tmp_path):
    at = app(monkeypatch, files, images=tmp_path / "run", query={"id": "a1"})   # img.png under --images: shown
    assert not at.error and len(at.get("image")) >= 1
    at = app(monkeypatch, files, images=tmp_path / "run", query={"id": "c3"})   # ../outside.png
    assert "outside the allowed image roots" in " ".join(e.value for e in at.error)


def test_app_world_metrics(monkeypatch, tmp_path):
    split = tmp_path / "split"
    (split / "images").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(split / "images" / "s0.png")
    scene = {"id": "s0", "image_id": 7, "image": "images/s0.png",
             "objects": [{"cls": "star", "colour": "red", "size": "large", "box": [8, 8, 30, 30], "visible": True}]}
    write(split / "scenes.jsonl", [scene])
    rec = {"id": "world-t/7", "image_id": 7, "image": str(split / "images" / "s0.png"), "method": "greedy",
           "text": "a large red star and a large blue moon .", "corrected_text": "a large red star .",
           "edits": [{"op": "remove", "span": [16, 38], "old": " and a large blue moon", "new": "", "reason": "no moon"}]}
    at = app(monkeypatch, [write(tmp_path / "c.jsonl", [rec])])
    world = at.table[1].value
    assert list(world["text"]) == ["before (text)", "after (corrected_text)"]
    assert list(world["CHAIR_s"]) == ["100.0", "0.0"]
    assert not at.error                                   # the image is under the input file's folder


# ---------------------------------------------------------------- a real browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--window-size=1400,1600"]


@pytest.fixture(scope="session")
def chromium():
    exe = shutil.which("chromium")
    if exe is None:
        apt = shutil.which("apt-get")
        if apt is None:
            pytest.skip("chromium not installed and no apt-get to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in ([apt, "install", "-y", "--no-install-recommends", "chromium"], [apt, "update"],
                    [apt, "install", "-y", "--no-install-recommends", "chromium"]):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if cmd[1] == "install" and r.returncode == 0:
                break
        exe = shutil.which("chromium")
        if exe is None:
            pytest.skip(f"chromium not installed and `apt-get install -y chromium` failed: {r.stderr.strip()[-300:]}")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_browser_renders_record(files, tmp_path, chromium):
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    srv = subprocess.Popen([sys.executable, "-m", "halluc.viewer", *map(str, files), "--port", str(port), "--headless"],
                           cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)      # what `halluc view` runs
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert srv.poll() is None and time.time() < deadline, (tmp_path / "streamlit.log").read_text()
            time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/?id=a1"
        dom, tries, deadline = "", 0, time.time() + 90
        while time.time() < deadline:           # client-side rendering; a cold server needs a few page loads
            tries += 1
            dom = subprocess.run([chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", "--dump-dom", url],
                                 capture_output=True, text=True, timeout=120).stdout
            if "a red star ." in dom:
                break
        (tmp_path / "dom.html").write_text(dom)
        assert re.search(r">\s*a1\s*<", dom) and "a red star ." in dom and "and a cat" in dom, \
            f"not rendered after {tries} page loads; DOM tail: {dom[-1500:]}"
        shot = tmp_path / "viewer_screenshot.png"
        subprocess.run([chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=20000", f"--screenshot={shot}", url],
                       capture_output=True, timeout=120, cwd=tmp_path)
        assert shot.stat().st_size > 1000
        (ROOT / "runs").mkdir(exist_ok=True)
        shutil.copy(shot, ROOT / "runs" / "viewer_screenshot.png")
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()
        log.close()
