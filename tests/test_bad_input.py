"""Every command against every class of bad input (generated here; nothing committed): one line on
stderr naming the file (and line and field for a record), exit status 2, no traceback, and every good
record still in the output.

Classes: OS errors on any path (a directory, a FIFO, an unwritable or non-folder output place, side
inputs too); images (corrupt, not a file, over the pixel cap, a FIFO); model folders (corrupt,
truncated or empty safetensors, pickle-only, no config.json); tables and vocabularies; labels and
fields; numbers (bounds at parse time, the option named); text (BOM, bad bytes, captions with no
letters); wrong ground truth (world records against COCO's table); YAML (anchors, duplicate keys,
size, names that escape runs/). Interrupted and concurrent runs are in test_resume.py; training data
in test_negatives.py and test_finetune.py; the viewer in test_viewer.py; pickles in
test_yolo_safety.py.
"""
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import run_command
from PIL import Image

from halluc.cli import main

ROOT = Path(__file__).resolve().parents[1]
COCO_ID = 226988          # in the builtin CHAIR table


run = run_command


def one_error(err: str, *names) -> str:
    """The error line: exactly one, no traceback, naming each of ``names``."""
    assert "Traceback" not in err, err
    lines = [x for x in err.splitlines() if "error:" in x and not x.startswith("warning")]
    assert len(lines) >= 1, err
    for n in names:
        assert any(str(n) in x for x in lines), f"{n!r} not named in: {err}"
    return lines[0]


def jsonl(path: Path, recs, raw_lines=()) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + "".join(raw_lines), encoding="utf-8")
    return path


def fifo(tmp_path: Path, name: str) -> Path:
    p = tmp_path / name
    os.mkfifo(p)
    return p


def bomb_png(path: Path, w: int = 20000, h: int = 20000) -> Path:
    """A valid PNG header claiming w x h pixels (400 Mpx): opening it is cheap, decoding it is not."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def subprocess_halluc(args, timeout=90):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "halluc", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ---------------------------------------------------------------- OS errors on every path

@pytest.fixture
def captions(tmp_path) -> Path:
    return jsonl(tmp_path / "caps.jsonl", [{"image_id": COCO_ID, "caption": "A woman sits at a table with pizza."},
                                           {"image_id": COCO_ID, "id": "b", "caption": "A dog on a sofa."}])


@pytest.mark.parametrize("head, tail", [(["eval", "chair"], []), (["eval", "pope"], ["--questions", "coco-random"]),
                                        (["eval", "world"], []), (["correct"], ["--detector", "oracle:coco"])])
def test_directory_as_input(head, tail, tmp_path, capsys):
    rc, err = run([*head, tmp_path, *tail], capsys)
    assert rc == 2 and "is a directory" in one_error(err, tmp_path)


@pytest.mark.parametrize("args", [
    ["eval", "chair", "{fifo}"],
    ["eval", "chair", "{caps}", "--synonyms", "{fifo}"],
    ["eval", "chair", "{caps}", "--gt", "{fifo}"],
    ["experiment", "run", "{fifo}"],
    ["decode", "--questions", "{fifo}", "--images", "{tmp}"],
])
def test_fifo_never_hangs(args, tmp_path, captions):
    f = fifo(tmp_path, "pipe")
    argv = [a.format(fifo=f, caps=captions, tmp=tmp_path) for a in args]
    r = subprocess_halluc(argv)                       # a blocking open would hit the timeout
    assert r.returncode == 2, r.stderr
    assert "not a regular file" in one_error(r.stderr, f)


def test_side_inputs_that_are_directories(tmp_path, captions, capsys):
    d = tmp_path / "d"
    d.mkdir()
    for argv, name in ((["eval", "chair", captions, "--synonyms", d], d),
                       (["eval", "chair", captions, "--gt", d], d),          # a folder without COCO files
                       (["experiment", "run", d], d),
                       (["correct", captions, "--detector", "oracle:coco", "--synonyms", d], d)):
        rc, err = run(argv, capsys)
        assert rc == 2, argv
        one_error(err, name)


def test_outputs_that_cannot_be_written(tmp_path, captions, capsys):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    d = tmp_path / "outdir"
    d.mkdir()
    cases = [(["eval", "chair", captions, "--out-dir", a_file], "not a folder", a_file),
             (["eval", "chair", captions, "--out-dir", a_file / "sub"], "not a folder", a_file),
             (["correct", captions, "--detector", "oracle:coco", "--out", d], "is a directory", d),
             (["correct", captions, "--detector", "oracle:coco", "--out", a_file / "o.jsonl"], "not a folder", a_file),
             (["decode", "--out", d, "--limit", "1"], "is a directory", d),
             (["world", "generate", "--out", a_file, "--n", "2"], "not a folder", a_file),
             (["world", "train", "--out", a_file], "not a folder", a_file),
             (["experiment", "run", ROOT / "experiments" / "demo.yaml", "--out", a_file], "not a folder", a_file)]
    for argv, what, name in cases:
        rc, err = run(argv, capsys)
        assert rc == 2, argv
        assert what in one_error(err, name), argv
    assert a_file.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes through permissions")
def test_permissions(tmp_path, captions, capsys):
    captions.chmod(0)
    rc, err = run(["eval", "chair", captions], capsys)
    assert rc == 2 and "permission denied" in one_error(err, captions)
    captions.chmod(0o644)
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    rc, err = run(["eval", "chair", captions, "--out-dir", ro / "x"], capsys)
    assert rc == 2 and "permission denied" in one_error(err, ro)


# ---------------------------------------------------------------- images

@pytest.fixture
def image_folder(tmp_path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (40 * i, 90, 160)).save(d / f"good{i}.png")
    (d / "text.png").write_text("root:x:0:0:root:/root:/bin/bash\n")           # a text file named .png
    good = (d / "good0.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    bomb_png(d / "bomb.png")
    os.mkfifo(d / "pipe.png")
    (d / "folder.png").mkdir()
    return d


def test_decode_keeps_every_input_and_names_each_bad_image(tiny_model, image_folder, tmp_path, capsys):
    out = tmp_path / "caps.jsonl"
    rc, err = run(["decode", "--model", tiny_model, "--images", image_folder, "--out", out, "--no-progress",
                   "--max-new-tokens", "4", "--batch-size", "3"], capsys)
    assert rc == 0 and "Traceback" not in err
    recs = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    bad = {"text", "truncated", "bomb", "pipe"}     # a folder named .png is not an input at all
    assert set(recs) == {"good0", "good1", *bad}
    assert all(isinstance(recs[k]["text"], str) and "error" not in recs[k] for k in ("good0", "good1"))
    assert "over the cap" in recs["bomb"]["error"] and "not a regular file" in recs["pipe"]["error"]
    assert "corrupt or not an image" in recs["text"]["error"] and "corrupt" in recs["truncated"]["error"]
    for k in bad:
        assert f"{image_folder / k}.png" in err


def test_pixel_cap_is_configurable(tmp_path, monkeypatch):
    from halluc.images import BadImage, open_image
    p = tmp_path / "i.png"
    Image.new("RGB", (40, 40)).save(p)
    assert open_image(p).size == (40, 40)
    monkeypatch.setenv("HALLUC_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(BadImage, match="over the cap of 0.001 Mpx"):
        open_image(p)
    monkeypatch.setenv("HALLUC_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(BadImage, match="HALLUC_MAX_IMAGE_PIXELS"):
        open_image(p)


def test_correct_keeps_records_whose_image_is_bad(image_folder, tmp_path, capsys):
    src = jsonl(tmp_path / "w.jsonl", [
        {"id": f"x{i}", "image": str(image_folder / name), "text": "There is a dog next to a cat."}
        for i, name in enumerate(["good0.png", "bomb.png", "pipe.png", "text.png"])])
    out = tmp_path / "fixed.jsonl"
    rc, err = run(["correct", src, "--detector", "world-yolo", "--out", out, "--no-progress", "--no-cache"], capsys)
    assert rc == 0 and "Traceback" not in err
    recs = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(recs) == ["x0", "x1", "x2", "x3"] and "error" not in recs["x0"]
    assert all("error" in recs[k] and recs[k]["corrected_text"] == recs[k]["text"] for k in ("x1", "x2", "x3"))


# ---------------------------------------------------------------- model folders

def _model_copy(tiny_model: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(tiny_model, dst)
    return dst


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated or corrupt"),
    ("empty", "not a safetensors file"),
    ("garbage", "not a safetensors file"),
    ("pickle-only", "pytorch_model.bin: pickle"),
    ("no-config", "has no config.json"),
    ("bad-config", "config.json is not valid JSON"),
])
def test_model_folder_damage(damage, message, tiny_model, tmp_path, capsys):
    m = _model_copy(tiny_model, tmp_path / "m")
    w = next(m.glob("*.safetensors"))
    if damage == "truncate":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif damage == "empty":
        w.write_bytes(b"")
    elif damage == "garbage":
        w.write_bytes(b"\x00" * 4 + os.urandom(200))
    elif damage == "pickle-only":
        w.rename(m / "pytorch_model.bin")
    elif damage == "no-config":
        (m / "config.json").unlink()
    else:
        (m / "config.json").write_text("{ nope")
    rc, err = run(["decode", "--model", m, "--out", tmp_path / "o.jsonl", "--limit", "1", "--no-progress"], capsys)
    assert rc == 2
    assert message in one_error(err, m)
    assert not (tmp_path / "o.jsonl").exists()


# ---------------------------------------------------------------- tables and vocabularies

@pytest.mark.parametrize("table, message", [
    ({str(COCO_ID): "dining table"}, "expected a list of object names"),
    ({str(COCO_ID): [3, 4]}, "expected a list of object names"),
    ({}, "non-empty JSON object"),
    ([["dog"]], "non-empty JSON object"),
    ({str(COCO_ID): ["unicorn"]}, "not in the vocabulary"),
])
def test_gt_table_schema(table, message, tmp_path, captions, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(table))
    rc, err = run(["eval", "chair", captions, "--gt", gt], capsys)
    assert rc == 2 and message in one_error(err, gt)


def test_gt_malformed_json_names_the_line(tmp_path, captions, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text('{\n  "1": ["dog"],\n  oops\n}')
    rc, err = run(["eval", "chair", captions, "--gt", gt], capsys)
    assert rc == 2 and "malformed JSON" in one_error(err, f"{gt}:3")


@pytest.mark.parametrize("content, message", [("", "no synonym lines"), ("\n\n  \n", "no synonym lines"),
                                              (", dog\n", "empty canonical name"), (b"dog\xff\n", "not valid UTF-8")])
def test_synonyms_file(content, message, tmp_path, captions, capsys):
    syn = tmp_path / "syn.txt"
    syn.write_bytes(content if isinstance(content, bytes) else content.encode())
    rc, err = run(["eval", "chair", captions, "--synonyms", syn, "--gt", tmp_path / "none.json"], capsys)
    assert rc == 2 and message in one_error(err, syn)


# ---------------------------------------------------------------- labels and fields

def test_pope_label_that_is_not_yes_or_no_is_a_bad_line(tmp_path, capsys):
    qs = [{"question_id": i, "image": "x.jpg", "text": "Is there a dog?", "label": lab}
          for i, lab in enumerate(["yes", "no", "maybe", "Yes "])]
    qfile = jsonl(tmp_path / "q.jsonl", qs)
    ans = jsonl(tmp_path / "a.jsonl", [{"question_id": i, "text": "yes"} for i in range(4)])
    rc, err = run(["eval", "pope", ans, "--questions", qfile, "--out-dir", tmp_path / "s"], capsys)
    assert rc == 0
    assert "expected yes or no, got 'maybe'" in one_error(err, f"{qfile}:3: label")
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert res["n"] == 3 and res["n_skipped"] == 1            # the three good questions are all scored


def test_wrong_type_is_never_replaced_by_another_field(tmp_path, capsys):
    caps = jsonl(tmp_path / "c.jsonl", [{"image_id": COCO_ID, "id": "a", "text": 7, "caption": "A dog."},
                                        {"image_id": COCO_ID, "id": "b", "text": "A dog."}])
    rc, err = run(["eval", "chair", caps, "--out-dir", tmp_path / "s"], capsys)
    assert rc == 0 and "expected a string, got int" in one_error(err, f"{caps}:1: text")
    assert [r["id"] for r in map(json.loads, (tmp_path / "s" / "scores.jsonl").read_text().splitlines())] == ["b"]


# ---------------------------------------------------------------- numbers

@pytest.mark.parametrize("argv, option", [
    (["decode", "--limit", "-1"], "--limit"),
    (["decode", "--limit", "0"], "--limit"),
    (["decode", "--batch-size", "0"], "--batch-size"),
    (["decode", "--seed", str(2 ** 70)], "--seed"),
    (["decode", "--max-new-tokens", "abc"], "--max-new-tokens"),
    (["correct", "x.jsonl", "--limit", "-1"], "--limit"),
    (["world", "generate", "--out", "o", "--n", "-3"], "--n"),
    (["world", "generate", "--out", "o", "--contrast", "nan"], "--contrast"),
    (["world", "generate", "--out", "o", "--pair-prob", "1.5"], "--pair-prob"),
    (["world", "generate", "--out", "o", "--seed", str(2 ** 70)], "--seed"),
    (["experiment", "run", "x.yaml", "--limit", "0"], "--limit"),
])
def test_numbers_are_checked_at_parse_time(argv, option, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, err = run(argv, capsys)
    assert rc == 2
    line = one_error(err, f"argument {option}")
    assert len(err.strip().splitlines()) == 1, err          # one line, no usage block
    assert not (tmp_path / "o").exists()                       # nothing half-made
    assert "see halluc" in line


def test_decode_parameter_values(tiny_model, tmp_path, capsys):
    for kv, message in (("alpha=nan", "finite"), ("alpha=x", "expected a float"), ("nope=1", "unknown parameter")):
        rc, err = run(["decode", "--method", "vcd", "--set", kv, "--model", tiny_model, "--out", tmp_path / "o.jsonl"],
                      capsys)
        assert rc == 2 and message in one_error(err, kv.split("=")[0])


def test_world_generate_limits(tmp_path, capsys):
    rc, err = run(["world", "generate", "--out", tmp_path / "w", "--n", "100000"], capsys)
    assert rc == 2 and "at most 99999" in one_error(err, "--n")
    rc, err = run(["world", "generate", "--out", tmp_path / "w", "--pair", "star:star"], capsys)
    assert rc == 2 and "two different classes" in one_error(err, "--pair")
    assert not (tmp_path / "w").exists()


# ---------------------------------------------------------------- text

def test_bom_costs_no_record(tmp_path, capsys):
    caps = tmp_path / "c.jsonl"
    caps.write_bytes(b"\xef\xbb\xbf" + b"".join(json.dumps({"image_id": COCO_ID, "id": i, "text": "A dog."}).encode()
                                               + b"\n" for i in ("a", "b")))
    rc, err = run(["eval", "chair", caps, "--out-dir", tmp_path / "s"], capsys)
    assert rc == 0 and "error" not in err
    assert json.loads((tmp_path / "s" / "results.json").read_text())["n_captions"] == 2


def test_bad_bytes_name_the_file_and_line(tmp_path, capsys):
    caps = tmp_path / "c.jsonl"
    good = json.dumps({"image_id": COCO_ID, "id": "a", "text": "A dog."}).encode() + b"\n"
    caps.write_bytes(good + b'{"image_id": 1, "text": "caf\xe9"}\n' + good.replace(b'"a"', b'"c"'))
    rc, err = run(["eval", "chair", caps, "--out-dir", tmp_path / "s"], capsys)
    assert rc == 0 and "not valid UTF-8" in one_error(err, f"{caps}:2")
    assert json.loads((tmp_path / "s" / "results.json").read_text())["n_captions"] == 2


def test_captions_without_letters_get_an_error(tmp_path, capsys):
    caps = jsonl(tmp_path / "c.jsonl", [{"image_id": COCO_ID, "id": "emoji", "text": "\U0001F600\U0001F436 \U0001F355!"},
                                        {"image_id": COCO_ID, "id": "zw", "text": "\u200b\u200d\ufeff"},
                                        {"image_id": COCO_ID, "id": "ok", "text": "A woman sits at a table."}])
    out = tmp_path / "f.jsonl"
    rc, err = run(["correct", caps, "--detector", "oracle:coco", "--out", out, "--no-progress", "--no-cache"], capsys)
    assert rc == 0 and "Traceback" not in err
    recs = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert "no letters" in recs["emoji"]["error"] and "no letters" in recs["zw"]["error"] and "error" not in recs["ok"]


# ---------------------------------------------------------------- wrong ground truth

def test_world_records_are_not_scored_against_coco(tmp_path, capsys):
    caps = jsonl(tmp_path / "c.jsonl", [{"id": "world-bias/200001", "image_id": 200001, "text": "a red star ."}])
    rc, err = run(["eval", "chair", caps], capsys)
    assert rc == 2 and "halluc eval world" in one_error(err, f"{caps}:1", "controlled-world")


# ---------------------------------------------------------------- YAML

@pytest.mark.parametrize("text, message", [
    ("name: x\na: &a [1, 2]\nb: [*a, *a]\n", "anchors and aliases"),
    ("name: x\nname: y\n", "duplicate key 'name'"),
    ("name: ../..\nrows: [{name: g, decode: {method: greedy}}]\n", "not a plain name"),
    ("rows: [{name: g, decode: {method: greedy}}]\ncaptions: {limit: 0}\n", "captions.limit: must be >= 1"),
    ("rows: [{name: g, decode: {method: greedy}}]\nseeds: [1180591620717411303424]\n", "seeds"),
    ("rows: [\n", "not valid YAML"),
])
def test_experiment_yaml(text, message, tmp_path, capsys):
    y = tmp_path / "e.yaml"
    y.write_text(text)
    rc, err = run(["experiment", "run", y, "--out", tmp_path / "runs"], capsys)
    assert rc == 2 and message in one_error(err, y)
    assert not (tmp_path / "runs").exists()


def test_billion_laughs_fails_fast(tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    y = tmp_path / "laughs.yaml"
    y.write_text("\n".join(lines) + "\n")
    r = subprocess_halluc(["experiment", "run", y], timeout=30)
    assert r.returncode == 2 and "anchors and aliases" in one_error(r.stderr, y)


def test_yaml_size_cap(tmp_path, capsys):
    y = tmp_path / "big.yaml"
    y.write_text("# " + "x" * (1 << 20) + "\n")
    rc, err = run(["experiment", "run", y], capsys)
    assert rc == 2 and "over the" in one_error(err, y)


# ---------------------------------------------------------------- the boundary itself

def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    rc, err = run(["--debug", "eval", "chair", tmp_path], capsys)
    assert rc == 2 and "Traceback" in err
    monkeypatch.setenv("HALLUC_DEBUG", "1")
    rc, err = run(["eval", "chair", tmp_path], capsys)
    assert rc == 2 and "Traceback" in err


def test_a_bug_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch, captions):
    import halluc.metrics.chair as chair
    monkeypatch.setattr(chair.Chair, "score", lambda *a, **k: 1 / 0)
    rc, err = run(["eval", "chair", captions, "--out-dir", tmp_path / "s"], capsys)
    assert rc == 1 and "unexpected ZeroDivisionError" in one_error(err) and "--debug" in err


# ---------------------------------------------------------------- a world split's own files

@pytest.fixture
def split(tmp_path, capsys) -> Path:
    d = tmp_path / "split"
    assert main(["world", "generate", "--out", str(d), "--split", "test", "--n", "4"]) == 0
    capsys.readouterr()
    return d


def test_world_scenes_with_a_corrupt_line(split, tmp_path, capsys):
    scenes = [json.loads(x) for x in (split / "scenes.jsonl").read_text().splitlines()]
    lines = (split / "scenes.jsonl").read_text().splitlines(True)
    lines[1] = "{broken\n"
    (split / "scenes.jsonl").write_text("".join(lines))
    caps = jsonl(tmp_path / "c.jsonl", [{"id": f"w{i}", "image_id": s["image_id"], "text": s["caption"]}
                                        for i, s in enumerate(scenes)])
    rc, err = run(["eval", "world", caps, "--world", split, "--out-dir", tmp_path / "s"], capsys)
    assert rc == 0
    one_error(err, f"{split / 'scenes.jsonl'}:2", f"{caps}:2")      # the scene, then the caption it orphans
    assert json.loads((tmp_path / "s" / "results.json").read_text())["n_captions"] == 3


def test_world_folder_that_is_not_a_split(tmp_path, capsys, captions):
    (tmp_path / "empty").mkdir()
    rc, err = run(["eval", "world", captions, "--world", tmp_path / "empty"], capsys)
    assert rc == 2 and "no scenes.jsonl" in one_error(err, tmp_path / "empty")


def test_world_meta_that_is_not_json(split, tmp_path, capsys):
    (split / "meta.json").write_text("{not json")
    s = json.loads((split / "scenes.jsonl").read_text().splitlines()[0])
    caps = jsonl(tmp_path / "c.jsonl", [{"id": "world-x/1", "image": str(split / s["image"]), "image_id": s["image_id"],
                                         "text": s["caption"]}])
    rc, err = run(["correct", caps, "--detector", f"oracle:world:{split}", "--out", tmp_path / "o.jsonl",
                   "--no-progress", "--no-cache"], capsys)
    assert rc == 2 and "malformed JSON" in one_error(err, f"{split / 'meta.json'}:1")


def test_output_that_is_a_fifo(tmp_path, captions):
    f = fifo(tmp_path, "out.jsonl")
    r = subprocess_halluc(["correct", captions, "--detector", "oracle:coco", "--out", f])
    assert r.returncode == 2 and "FIFO" in one_error(r.stderr, f)


def test_pickle_checkpoints_are_refused_by_the_command(tmp_path, captions, capsys):
    pt = tmp_path / "best.pt"
    pt.write_bytes(b"\x80\x04not really a pickle")
    rc, err = run(["correct", captions, "--detector", f"yolo:{pt}", "--out", tmp_path / "o.jsonl"], capsys)
    assert rc == 2 and "pickle" in one_error(err, pt) and "convert-yolo" in err
    assert not (tmp_path / "o.jsonl").exists()
