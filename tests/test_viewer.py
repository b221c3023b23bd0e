"""``halluc view``: the helpers (highlighting, image roots, boxes), the Streamlit app driven by
``AppTest`` (filters, record view, bad lines, refused images, deep link, world metrics) and one
real-browser check (the app served on 127.0.0.1, loaded in headless Chromium, screenshot saved), and
the real ``halluc view`` started the way a script or service starts it (stdin not a terminal, a fresh
HOME with no Streamlit credentials), which must serve HTTP instead of waiting on Streamlit's e-mail prompt.

Record files are written by hand in tmp_path next to a tiny PNG: nothing needs the builtin model.
"""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from halluc import viewer as V
from halluc.commands import view as VC

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
    at = AppTest.from_file(str(VC.APP), default_timeout=60)
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
    assert V.resolve_image({"image": "nope.png"}, base, roots)[1] == "image not found: nope.png"
    for bad in ("../y.png", "link.png", "/etc/passwd"):              # the page never shows where tmp is
        assert str(tmp_path) not in V.resolve_image({"image": bad}, base, roots)[1], bad
    assert "resolves to ../y.png" in V.resolve_image({"image": "link.png"}, base, roots)[1]
    fifo = tmp_path / "in" / "pipe.png"
    os.mkfifo(fifo)
    assert V.resolve_image({"image": "pipe.png"}, base, roots) == (fifo.resolve(), None)   # open_image refuses it
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
    VC.add_parser(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["view", str(tmp_path / "nope.jsonl")])
    assert args.func(args) == 2 and "nope.jsonl: no such file" in capsys.readouterr().err
    cmd = VC.command(8599)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and "127.0.0.1" in cmd
    assert json.loads(V.config([tmp_path / "a b;rm.jsonl"]))["files"] == [str((tmp_path / "a b;rm.jsonl").resolve())]


def test_labels_are_relative_to_the_files_folder(tmp_path):
    runs = tmp_path / "runs"
    a, b, c = runs / "a" / "corrected.jsonl", runs / "b" / "corrected.jsonl", runs / "vcd.jsonl"
    assert V.labels([str(a)]) == {str(a): "corrected.jsonl"}
    assert V.labels([str(a), str(c)]) == {str(a): "corrected.jsonl", str(c): "vcd.jsonl"}
    assert V.labels([str(a), str(b), str(c)]) == {str(a): "a/corrected.jsonl", str(b): "b/corrected.jsonl",
                                                  str(c): "vcd.jsonl"}
    deep = tmp_path / "runs" / "a" / "x" / "corrected.jsonl"
    assert V.labels([str(a), str(deep)]) == {str(a): "corrected.jsonl", str(deep): "x/corrected.jsonl"}
    assert json.loads(V.config([a, a.parent / "." / a.name]))["files"] == [str(a)]   # one file named twice: once
    assert V.relative(a, [tmp_path / "runs"]) == "a/corrected.jsonl"
    assert V.relative(a, [tmp_path / "elsewhere"]) == "corrected.jsonl"


def test_streamlit_settings_and_browser_flags():
    def opts(cmd):
        assert cmd[1:5] == ["-m", "streamlit", "run", str(VC.APP)]
        rest = cmd[5:]
        return dict(zip(rest[::2], rest[1::2]))
    quiet = opts(VC.command(8600))
    assert quiet["--server.headless"] == "true" and quiet["--server.port"] == "8600"
    assert quiet["--server.showEmailPrompt"] == "false" and quiet["--browser.gatherUsageStats"] == "false"
    shown = opts(VC.command(8600, "0.0.0.0", open_browser=True))
    assert shown["--server.headless"] == "false" and shown["--server.address"] == "0.0.0.0"
    assert shown["--server.showEmailPrompt"] == "false" and shown["--browser.gatherUsageStats"] == "false"

    import argparse
    ap = argparse.ArgumentParser()
    VC.add_parser(ap.add_subparsers(dest="command"))
    assert ap.parse_args(["view", "f.jsonl"]).open is False
    assert ap.parse_args(["view", "f.jsonl", "--headless"]).open is False           # older scripts still work
    assert ap.parse_args(["view", "f.jsonl", "--open"]).open is True
    assert ap.parse_args(["view", "f.jsonl", "--port", "65535"]).port == 65535
    assert ap.parse_args(["view", "f.jsonl", "--port", "1"]).port == 1


def test_help_documents_open_and_headless(capsys):
    with pytest.raises(SystemExit) as e:
        VC.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0 and "--open" in out and "--headless" in out and "prompt" in out


@pytest.mark.parametrize("port", ["0", "65536", "-1", "99999", "http", "80.5", ""])
def test_port_out_of_range_is_refused_at_parse_time(port, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(VC.subprocess, "Popen", lambda *a, **k: pytest.fail("streamlit started"))
    f = write(tmp_path / "c.jsonl", [A1])
    with pytest.raises(SystemExit) as e:
        VC.main([str(f), "--port", port])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--port" in err and "1..65535" in err and len(err.strip().splitlines()) == 1, err


def bad_inputs(tmp_path):
    """(argv, the path the error must name) for each kind of bad file argument."""
    good = write(tmp_path / "good.jsonl", [A1])
    (tmp_path / "folder.jsonl").mkdir()
    os.mkfifo(tmp_path / "fifo.jsonl")
    cases = {"missing": ([str(good), str(tmp_path / "nope.jsonl")], "nope.jsonl: no such file"),
             "directory": ([str(tmp_path / "folder.jsonl")], "folder.jsonl: is a directory"),
             "fifo": ([str(tmp_path / "fifo.jsonl"), str(good)], "fifo.jsonl: is a FIFO"),
             "images not a folder": ([str(good), "--images", str(good)], "good.jsonl: not a folder"),
             "images missing": ([str(good), "--images", str(tmp_path / "nodir")], "nodir: no such folder")}
    if os.geteuid() != 0:                                   # root reads any file
        locked = write(tmp_path / "locked.jsonl", [A1])
        locked.chmod(0)
        cases["unreadable"] = ([str(locked)], "locked.jsonl: not readable")
    return cases


@pytest.mark.parametrize("case", ["missing", "directory", "fifo", "images not a folder", "images missing", "unreadable"])
def test_bad_file_arguments_exit_2_before_streamlit(case, tmp_path, capsys, monkeypatch):
    cases = bad_inputs(tmp_path)
    if case not in cases:
        pytest.skip("running as root: every file is readable")
    argv, expect = cases[case]
    monkeypatch.setattr(VC.subprocess, "Popen", lambda *a, **k: pytest.fail("streamlit started on bad input"))
    assert VC.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expect in err and len(err.strip().splitlines()) == 1, err


def halluc_cmd() -> list[str]:
    """The installed ``halluc`` command (the console script beside this Python), else ``python -m halluc``."""
    exe = Path(sys.executable).with_name("halluc")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "halluc"]


def test_real_command_refuses_fifo_and_directory(tmp_path):
    cases = bad_inputs(tmp_path)
    for case in ("fifo", "directory"):
        argv, expect = cases[case]
        r = subprocess.run([*halluc_cmd(), "view", *argv, "--port", str(free_port())], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and expect in r.stderr, (case, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "http://" not in r.stderr, r.stderr


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


def page_text(at) -> str:
    """Every text the page shows: element bodies, captions, options, and table cells."""
    def walk(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    out = []
    for node in walk(at._tree):
        if type(node).__name__ in ("Table", "Dataframe"):
            out.append(node.value.to_string())
        elif getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
    return "\n".join(out)


def test_app_names_files_relative_to_their_folder(monkeypatch, tmp_path):
    runs = tmp_path / "runs"
    for d in ("a", "b"):
        (runs / d).mkdir(parents=True)
        Image.new("RGB", (16, 16)).save(runs / d / "img.png")
    a = write(runs / "a" / "corrected.jsonl", [A1, "{bad", dict(B2, image="gone.png")])
    b = write(runs / "b" / "corrected.jsonl", [dict(A1, method="vcd"), dict(C3, image="../../outside.png")])
    Image.new("RGB", (16, 16)).save(tmp_path / "outside.png")
    at = app(monkeypatch, [a, b], query={"id": "a1"})
    assert not at.exception
    assert list(at.table[0].value["file"]) == ["a/corrected.jsonl", "b/corrected.jsonl"]
    assert at.multiselect(key="files").options == ["a/corrected.jsonl", "b/corrected.jsonl"]
    assert "a/corrected.jsonl:2" in " ".join(w.value for w in at.warning)           # the bad line, named short
    assert len(at.get("image")) >= 2                                                  # a1's image in both files
    at.selectbox(key="record").select("b2").run()
    assert "image not found: gone.png" in " ".join(e.value for e in at.error)
    at.selectbox(key="record").select("c3").run()
    assert "outside the allowed image roots" in " ".join(e.value for e in at.error)
    for rid in ("a1", "b2", "c3"):
        at.selectbox(key="record").select(rid).run()
        assert str(tmp_path) not in page_text(at), rid                              # never an absolute path


BAD_IMAGES = {"corrupt": "corrupt or not an image", "folder": "is a directory", "pipe": "not a regular file",
              "oversized": "over the cap"}


@pytest.mark.parametrize("case", ["ok", *BAD_IMAGES])
def test_app_shows_a_message_for_a_bad_image(case, monkeypatch, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    Image.new("RGB", (16, 16), (40, 40, 40)).save(run / "img.png")
    (run / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 8)
    (run / "folder.png").mkdir()
    os.mkfifo(run / "pipe.png")
    image = {"ok": "img.png", "oversized": "img.png"}.get(case, f"{case}.png")
    f = write(run / "corrected.jsonl", [dict(A1, id=case, image=image)])
    if case == "oversized":
        monkeypatch.setenv("HALLUC_MAX_IMAGE_PIXELS", "100")                   # 16x16 = 256 px: over the cap
    try:
        at = app(monkeypatch, [f], query={"id": case})
        errors = " ".join(e.value for e in at.error)
        assert not at.exception
        assert "a red star ." in html_of(at)                                   # the record is shown around it
        if case == "ok":
            assert not errors and len(at.get("image")) == 1
        else:
            assert BAD_IMAGES[case] in errors and image in errors and not at.get("image"), errors
            assert str(tmp_path) not in errors, errors
    finally:                                 # should a reader block on the FIFO, a writer lets it go
        try:
            os.close(os.open(run / "pipe.png", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


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
    srv = subprocess.Popen([sys.executable, "-m", "halluc.commands.view", *map(str, files), "--port", str(port), "--headless"],
                           cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)      # what `halluc view` runs
    try:
        wait_serving(port, srv, tmp_path / "streamlit.log", timeout=60)
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


# ---------------------------------------------------------------- the real command, no terminal

def wait_serving(port: int, proc, log: Path, timeout: float = 90) -> None:
    """Until the server answers its health check; fails with the log when the command died or hung."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert proc.poll() is None, f"halluc view exited ({proc.returncode}):\n{log.read_text()}"
        assert time.time() < deadline, f"halluc view not serving after {timeout:.0f} s:\n{log.read_text()}"
        time.sleep(0.5)


def serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def no_terminal_env(tmp_path: Path, **extra) -> dict:
    """A script's or a service's environment: a fresh HOME (no ~/.streamlit, so no credentials.toml),
    no STREAMLIT_* settings inherited from whoever runs the tests."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    return {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), **extra}


def launch_and_stop(tmp_path: Path, argv: list[str], env: dict) -> str:
    """Start ``halluc view`` with stdin not a terminal, wait for it to serve the page, stop it with a TERM
    and check the Streamlit server went with it. Returns the command's output."""
    port = free_port()
    log_path = tmp_path / "view.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*halluc_cmd(), "view", *argv, "--port", str(port)], cwd=tmp_path, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_serving(port, proc, log_path)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                assert r.status == 200 and b"<html" in r.read().lower()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_path.read_text()
            deadline = time.time() + 20                    # the server is stopped with the command
            while serving(port) and time.time() < deadline:
                time.sleep(0.25)
            assert not serving(port), "the Streamlit server outlived halluc view"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            try:
                os.killpg(proc.pid, signal.SIGKILL)        # anything the command left in its session
            except (ProcessLookupError, PermissionError):
                pass
    return log_path.read_text()


def test_view_serves_with_no_terminal_and_no_credentials(files, tmp_path):
    out = launch_and_stop(tmp_path, [str(files[0])], no_terminal_env(tmp_path))
    assert "Email" not in out and "Welcome to Streamlit" not in out, out
    assert not (tmp_path / "home" / ".streamlit" / "credentials.toml").exists()


def test_view_open_serves_and_opens_a_browser(files, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened.txt"
    fake = bin_dir / "xdg-open"                            # the "browser" Streamlit starts on Linux
    fake.write_text(f"#!/bin/sh\necho \"$1\" >> '{opened}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = no_terminal_env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                          BROWSER=str(fake))
    out = launch_and_stop(tmp_path, [str(files[0]), "--open"], env)
    assert "Email" not in out and "Welcome to Streamlit" not in out, out
    assert opened.exists() and "http://" in opened.read_text(), out
