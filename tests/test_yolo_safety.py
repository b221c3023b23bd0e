"""yolo: a .pt (a pickle) is refused unless trusted; ``convert-yolo`` turns a trusted one into
safetensors + model.yaml once, and that folder loads without unpickling anything and detects exactly
what the .pt does. Broken folders and hostile yaml files are one-line BadInput naming the folder."""
import hashlib
import json
import pickle
import shutil
import subprocess
import sys

import pytest

import detectors
from halluc.errors import BadInput


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HALLUC_ALLOW_DOWNLOAD", raising=False)


class _Payload:
    """Unpickling this creates ``path``: the stand-in for code a hostile .pt runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def evil_pt(tmp_path, name="evil.pt"):
    marker = tmp_path / f"{name}.UNPICKLED"
    p = tmp_path / name
    p.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    return p, marker


def one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


from test_detectors import scene  # noqa: E402  (the same test picture)


# ---------------------------------------------------------------- refusing pickles

def test_pt_is_refused_without_trust_and_nothing_is_unpickled(tmp_path):
    pt, marker = evil_pt(tmp_path)
    for trust in ({}, {"trust_pickle": False}, {"trust_pickle": "false"}, {"trust_pickle": "0"}):
        with pytest.raises(BadInput) as e:
            detectors.load(f"yolo:{pt}", **trust)
        msg = one_line(e)
        assert "evil.pt" in msg and "pickle" in msg and "runs code" in msg
        assert f"halluc convert-yolo {pt} --out DIR --trust-pickle" in msg and "yolo:DIR" in msg
        assert "--trust-pickle to halluc correct" in msg
    assert not marker.exists()
    with pytest.raises(BadInput, match="trust_pickle='maybe': expected true or false"):
        detectors.load(f"yolo:{pt}", trust_pickle="maybe")
    assert not marker.exists()
    pickle.loads(pt.read_bytes())              # the control: unpickling it really runs the payload
    assert marker.exists()


def test_refusal_comes_before_torch_is_imported(tmp_path):
    pt, marker = evil_pt(tmp_path)
    code = ("import sys, detectors\n"
            "from halluc.errors import BadInput\n"
            f"try:\n    detectors.load({f'yolo:{pt}'!r})\nexcept BadInput:\n    pass\n"
            "else:\n    raise SystemExit('not refused')\n"
            "bad = [m for m in ('torch', 'ultralytics') if m in sys.modules]\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not marker.exists()


def test_detector_class_refuses_pt_too(tmp_path):
    pytest.importorskip("ultralytics")
    from detectors.base import DetectorConfig
    from detectors.labels import label_map
    from detectors.yolo import YoloDetector
    pt, marker = evil_pt(tmp_path)
    with pytest.raises(BadInput, match="pickle"):
        YoloDetector(pt, DetectorConfig(), label_map())
    assert not marker.exists()


def test_convert_refuses_without_trust(tmp_path):
    from detectors.yolo_convert import convert
    pt, marker = evil_pt(tmp_path)
    with pytest.raises(BadInput) as e:
        convert(pt, tmp_path / "out", trust_pickle=False)
    assert "pickle" in one_line(e) and "--trust-pickle" in one_line(e)
    assert not marker.exists() and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- a tiny checkpoint, converted

@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("ultralytics")
    from detectors.yolo_folder import import_ultralytics
    from halluc.assets import asset_path
    torch.set_num_threads(1)
    ultralytics = import_ultralytics()
    names = [line.split(", ")[0] for line in asset_path("coco_chair/synonyms.txt").read_text().splitlines()]
    m = ultralytics.YOLO("yolov8n.yaml")                        # built from the packaged config: no download
    m.model.names = dict(enumerate(names))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():                                       # confident, varied boxes from random weights
        for n, p in m.model.named_parameters():
            if ".cv3." in n and n.endswith(".2.bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 2)
            else:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    m.ckpt = {"train_args": {"imgsz": 96, "task": "detect"}}    # trained at 96: the default predict size
    d = tmp_path_factory.mktemp("tinyyolo")
    m.save(d / "tiny.pt")
    return d / "tiny.pt", names


@pytest.fixture(scope="module")
def converted(tiny_pt, tmp_path_factory):
    from detectors.yolo_convert import convert
    out = tmp_path_factory.mktemp("converted") / "tiny"
    assert convert(tiny_pt[0], out, trust_pickle=True) == out
    return out


ANY = dict(box_threshold=0, min_area=0)


def test_converted_folder_detects_exactly_what_the_pt_does(tiny_pt, converted):
    import torch
    pt, names = tiny_pt
    phrases = ["a man", "dogs", *names]
    ims = [scene(), scene(80, 64, 4), scene(64, 96, 9)]
    for kw in ({}, {"imgsz": 64}):                  # the trained size (from yolo.json), and an explicit one
        det_pt = detectors.load(f"yolo:{pt}", trust_pickle="true", **ANY, **kw)
        det_dir = detectors.load(f"yolo:{converted}", **ANY, **kw)
        want = det_pt.detect_batch(ims, [phrases, phrases, ["a man", "car"]])
        got = det_dir.detect_batch(ims, [phrases, phrases, ["a man", "car"]])
        assert sum(map(len, want)) > 5 and got == want
        assert det_dir.class_names == det_pt.class_names == dict(enumerate(names))
        a, b = det_pt.model.model.state_dict(), det_dir.model.model.state_dict()      # both fused by now
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the trained size matters: the folder must predict at 96 as the .pt does, not at ultralytics' 640
    at96 = detectors.load(f"yolo:{converted}", **ANY).detect(ims[0], phrases)
    assert at96 != detectors.load(f"yolo:{converted}", imgsz=640, **ANY).detect(ims[0], phrases)


def test_converted_folder_contents(tiny_pt, converted):
    import torch
    import ultralytics
    from safetensors import safe_open

    from halluc.yamlfile import load_yaml
    pt, names = tiny_pt
    assert sorted(p.name for p in converted.iterdir()) == ["model.safetensors", "model.yaml", "yolo.json"]
    meta = json.loads((converted / "yolo.json").read_text())
    assert meta["source"] == "tiny.pt" and meta["source_sha256"] == hashlib.sha256(pt.read_bytes()).hexdigest()
    assert meta["imgsz"] == 96 and meta["ultralytics"] == ultralytics.__version__ and meta["nc"] == 80
    doc = load_yaml(converted / "model.yaml")                   # halluc's strict reader: no aliases
    assert doc["names"] == names and doc["nc"] == 80 and doc["scale"] == "n"
    with safe_open(str(converted / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16, torch.int64}               # ultralytics saved half: fp16 is exact
    # deterministic: converting again writes the same bytes
    from detectors.yolo_convert import convert
    again = convert(pt, converted.parent / "again", trust_pickle=True)
    for name in ("model.safetensors", "model.yaml", "yolo.json"):
        assert (again / name).read_bytes() == (converted / name).read_bytes()


def test_fingerprint_hashes_safetensors_and_yaml(converted, tmp_path):
    det = detectors.load(f"yolo:{converted}")
    fp = det.fingerprint()
    assert fp["weights"] == hashlib.sha256((converted / "model.safetensors").read_bytes()).hexdigest()
    assert fp["model_yaml"] == hashlib.sha256((converted / "model.yaml").read_bytes()).hexdigest()
    assert fp["imgsz"] == 96 and fp["backend"] == "yolo"
    other = shutil.copytree(converted, tmp_path / "other")
    (other / "model.yaml").write_text((other / "model.yaml").read_text() + "# edited\n")
    fp2 = detectors.load(f"yolo:{other}").fingerprint()
    assert fp2["weights"] == fp["weights"] and fp2["model_yaml"] != fp["model_yaml"] and fp2 != fp


def test_fused_checkpoint_converts(tiny_pt, tmp_path):
    """A .pt saved after fuse() has no batch norms: the folder rebuilds the fused layout."""
    from detectors.yolo_folder import import_ultralytics
    from detectors.yolo_convert import convert
    pt, names = tiny_pt
    m = import_ultralytics().YOLO(str(pt))
    m.model.fuse(verbose=False)
    m.save(tmp_path / "fused.pt")
    out = convert(tmp_path / "fused.pt", tmp_path / "fused", trust_pickle=True)
    assert json.loads((out / "yolo.json").read_text())["fused"] is True
    want = detectors.load(f"yolo:{tmp_path / 'fused.pt'}", trust_pickle=True, **ANY).detect(scene(), names)
    assert want and detectors.load(f"yolo:{out}", **ANY).detect(scene(), names) == want


def test_trusted_pt_still_loads(tiny_pt):
    pt, _ = tiny_pt
    for trust in (True, "1", "TRUE"):
        assert detectors.load(f"yolo:{pt}", trust_pickle=trust).class_names[0] == "person"


def test_convert_checks_before_writing(tiny_pt, tmp_path, monkeypatch):
    """A conversion that would not read back exactly fails, and --out gets nothing."""
    import detectors.yolo_convert as yc
    real = yc._stored
    monkeypatch.setattr(yc, "_stored", lambda t: real(t) + 1 if t.is_floating_point() else real(t))
    with pytest.raises(BadInput, match="do not read back exactly"):
        yc.convert(tiny_pt[0], tmp_path / "out", trust_pickle=True)
    assert list((tmp_path / "out").iterdir()) == []


# ---------------------------------------------------------------- broken folders

def _variant(converted, tmp_path, name, edit):
    d = shutil.copytree(converted, tmp_path / name)
    edit(d)
    return d


def _yaml_edit(fn):
    def edit(d):
        import yaml
        doc = yaml.safe_load((d / "model.yaml").read_text())
        fn(doc)
        (d / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return edit


def _st_edit(fn):
    def edit(d):
        from safetensors.torch import load_file, save_file
        sd = load_file(str(d / "model.safetensors"))
        fn(sd)
        save_file(sd, str(d / "model.safetensors"))
    return edit


BROKEN = {
    "empty": (lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors is not a safetensors file"),
    "truncated": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-1000]),
                  "truncated or corrupt"),
    "garbage": (lambda d: (d / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{not json at all" + b"\0" * 64),
                "corrupt safetensors header"),
    "no-weights": (lambda d: (d / "model.safetensors").rename(d / "best.pt"),
                   "no model.safetensors in .*best.pt is a pickle: convert it once with halluc convert-yolo"),
    "no-yaml": (lambda d: (d / "model.yaml").unlink(), "no model.yaml in"),
    "bad-yaml": (lambda d: (d / "model.yaml").write_text("nc: 80\nbackbone: [[-1, 1, Conv\n"), "not valid YAML"),
    "alias-yaml": (lambda d: (d / "model.yaml").write_text("a: &x [1]\nb: *x\n"), "anchors and aliases"),
    "list-yaml": (lambda d: (d / "model.yaml").write_text("- 1\n"), "expected a mapping"),
    "names": (_yaml_edit(lambda doc: doc.update(names=doc["names"][:3])), "'names' must list the 80 class names"),
    "nc": (_yaml_edit(lambda doc: doc.pop("nc")), "'nc' .* must be a positive integer"),
    "layer": (_yaml_edit(lambda doc: doc["head"].__setitem__(0, "Conv")), r"head\[0\]: a layer must be"),
    "scale": (_yaml_edit(lambda doc: doc.update(scale="q")), "scale 'q' is not one of the 'scales'"),
    "channels": (_yaml_edit(lambda doc: doc.update(channels=1)), "only 3-channel"),
    "shape": (_yaml_edit(lambda doc: doc.update(nc=3, names=["a", "b", "c"])), "does not fit model.yaml: .* shape"),
    "architecture": (_yaml_edit(lambda doc: doc.update(scale="s")), "does not fit model.yaml: .* shape"),
    "missing-key": (_st_edit(lambda sd: sd.pop("model.0.conv.weight")),
                    "does not fit model.yaml: weights 1 missing .e.g. model.0.conv.weight"),
    "extra-key": (_st_edit(lambda sd: sd.__setitem__("model.99.w", sd["model.0.conv.weight"].clone())),
                  "1 unexpected .e.g. model.99.w"),
    "int-weights": (_st_edit(lambda sd: sd.__setitem__("model.0.conv.weight", sd["model.0.conv.weight"].long())),
                    "model.0.conv.weight is torch.int64"),
    "meta": (lambda d: (d / "yolo.json").write_text("{imgsz: 96"), "yolo.json:1: malformed JSON"),
    "meta-imgsz": (lambda d: (d / "yolo.json").write_text('{"imgsz": "big"}'), "imgsz must be a positive integer"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_folder_is_one_line_bad_input_naming_it(converted, tmp_path, case):
    edit, pattern = BROKEN[case]
    d = _variant(converted, tmp_path, case, edit)
    with pytest.raises(BadInput, match=pattern) as e:
        detectors.load(f"yolo:{d}")
    assert str(d) in one_line(e)


def test_yaml_cannot_run_code_or_unpickle(converted, tmp_path):
    """ultralytics' parse_model calls any name of its module's globals and evals ``activation``:
    a hostile yaml must be refused before it gets there."""
    pt, marker = evil_pt(tmp_path)
    code_marker = tmp_path / "EVAL_RAN"
    hostile = {
        "torch_safe_load": lambda doc: doc["backbone"].insert(0, [-1, 1, "torch_safe_load", [str(pt)]]),
        "attempt_load": lambda doc: doc["backbone"].insert(0, [-1, 1, "load_checkpoint", [str(pt)]]),
        "torchvision": lambda doc: doc["backbone"].insert(0, [-1, 1, "TorchVision", ["resnet18", "DEFAULT"]]),
        "dunder": lambda doc: doc["backbone"].insert(0, [-1, 1, "__builtins__", []]),
        "activation": lambda doc: doc.update(activation=f"open({str(code_marker)!r}, 'w')"),
        "activation-attr": lambda doc: doc.update(
            activation=f"nn.SiLU.__init__.__globals__['os'].system('touch {code_marker}')"),
        "activation-arg": lambda doc: doc.update(activation=f"nn.LeakyReLU(open({str(code_marker)!r}, 'w'))"),
    }
    for name, fn in hostile.items():
        d = _variant(converted, tmp_path, name, _yaml_edit(fn))
        with pytest.raises(BadInput, match="not a model layer this loader builds|activation") as e:
            detectors.load(f"yolo:{d}")
        assert str(d) in one_line(e)
    assert not marker.exists() and not code_marker.exists()
    # a plain activation passes the check (and then builds)
    d = _variant(converted, tmp_path, "silu", _yaml_edit(lambda doc: doc.update(activation="nn.SiLU()")))
    assert detectors.load(f"yolo:{d}").class_names[0] == "person"


# ---------------------------------------------------------------- the convert-yolo command

def _cli(argv):
    from halluc.commands.convert_yolo import add_parser
    from halluc.command import Parser
    ap = Parser(prog="halluc")
    ap.add_argument("--debug", action="store_true")
    add_parser(ap.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


def test_convert_yolo_command(tiny_pt, tmp_path, capsys):
    pt, marker = evil_pt(tmp_path)
    assert _cli(["convert-yolo", str(pt), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "pickle" in err and "--trust-pickle" in err
    assert not marker.exists() and not (tmp_path / "x").exists()

    out = tmp_path / "models" / "tiny"
    assert _cli(["convert-yolo", str(tiny_pt[0]), "--out", str(out), "--trust-pickle"]) == 0
    err = capsys.readouterr().err
    assert f"use --detector yolo:{out}" in err and "80 classes" in err
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "model.yaml", "yolo.json"}
    assert detectors.load(f"yolo:{out}").class_names[0] == "person"

    (tmp_path / "afile").write_text("")
    assert _cli(["convert-yolo", str(tiny_pt[0]), "--out", str(tmp_path / "afile"), "--trust-pickle"]) == 2
    assert "--out" in capsys.readouterr().err
    assert _cli(["convert-yolo", str(tmp_path / "nope.pt"), "--out", str(out), "--trust-pickle"]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:                      # --out is required
        _cli(["convert-yolo", str(tiny_pt[0]), "--trust-pickle"])
    assert e.value.code == 2
    help_text = _parser_help()
    assert "--trust-pickle" in help_text and "pickle" in help_text


def _parser_help() -> str:
    from halluc.commands.convert_yolo import add_parser
    from halluc.command import Parser
    ap = Parser(prog="halluc")
    sub = ap.add_subparsers(dest="command")
    return add_parser(sub).format_help()
