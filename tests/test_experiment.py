"""halluc experiment: the YAML schema's errors, a tiny experiment end to end, and stage reuse."""
import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

from halluc.commands.experiment import main
from halluc.pipelines.experiment.config import ConfigError, load_config
from halluc.pipelines.experiment.runner import Runner

TINY = """\
    # halluc experiment run tiny.yaml
    name: tiny
    seeds: [0]
    captions: {dataset: world-bias, limit: 10, max_new_tokens: 24}
    pope: {splits: [random], limit: 10, parser: strict}
    rows:
      - {name: greedy, decode: {method: greedy}}
      - {name: VCD + correct, decode: {method: vcd, set: {alpha: 1, beta: 0.1}}, correct: true}
"""


def write(tmp_path, text, name="exp.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("body, where, names", [
    ("sedds: [0]\nrows: [{name: a, decode: {method: greedy}}]", "sedds", ["unknown key", "valid: name"]),
    ("rows: [{name: a, decod: {method: greedy}}]", "rows[0].decod", ["unknown key", "valid: name, model, decode"]),
    ("rows: [{name: a, decode: {method: vcdd}}]", "rows[0].decode.method", ["'vcdd'", "valid: greedy"]),
    ("rows: [{name: a, decode: {method: vcd, set: {alfa: 1}}}]", "rows[0].decode.set", ["alfa", "alpha"]),
    ("captions: {limit: ten}\nrows: [{name: a, decode: {method: greedy}}]", "captions.limit", ["expected int"]),
    ("pope: {parser: loose}\nrows: [{name: a, decode: {method: greedy}}]", "pope.parser", ["loose", "strict"]),
    ("rows: [{name: a, model: lrv, decode: {method: greedy}}]", "rows[0].model", ["'lrv'"]),
    ("finetune: {lrv: {negatives: {neg_ration: 0.4}, finetune: {}}}\nrows: [{name: a, decode: {method: greedy}}]",
     "finetune.lrv.negatives.neg_ration", ["unknown key", "neg_ratio"]),
    ("rows: [{name: a, decode: {method: greedy}}]\nsweeps: [{name: s, decode: {method: vcd}, param: alpha, "
     "values: [x]}]", "sweeps[0].values", ["numbers"]),
    ("rows: []", "rows", ["non-empty"]),
])
def test_schema_errors_name_file_and_key(tmp_path, body, where, names):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: {where}"), msg
    for n in names:
        assert n in msg, msg


def test_bad_file_exits_2_with_the_message(tmp_path, capsys):
    path = write(tmp_path, "rows: [{name: a, decode: {method: vcdd}}]")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: rows[0].decode.method" in err and not (tmp_path / "out").exists()


def test_shipped_experiments_are_valid():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "experiments"
    for name in sorted(p.name for p in root.glob("*.yaml") if p.name != "world_yolo.yaml"):
        text = (root / name).read_text()
        assert text.startswith(f"# halluc experiment run experiments/{name}\n")
        cfg = load_config(root / name)
        assert cfg["rows"]
    table = load_config(root / "world_table.yaml")
    assert {r.name for r in table["rows"]} >= {"greedy", "VCD", "LRV", "VCD + correct", "LRV + VCD + correct"}
    assert {r.param for r in table["sweep_rows"]} == {"alpha"}
    assert [r.stochastic for r in table["rows"][:2]] == [False, True]     # greedy runs once, VCD per seed


def test_stage_skips_resumes_and_redoes(tmp_path):
    cfg = load_config(write(tmp_path, TINY))
    r = Runner(cfg, tmp_path / "run", [0], None)
    calls = []
    d = tmp_path / "run" / "st"
    out = d / "out.jsonl"
    fn = lambda fresh: calls.append(fresh) or out.write_text("{}\n") and {"n": 1}
    r.stage(d, "st", {"a": 1}, fn, out)
    r.stage(d, "st", {"a": 1}, fn, out)                       # done, same key: skipped
    assert calls == [False] and r.tally == {"run": 1, "skipped": 1}
    (d / "stage.json").write_text(json.dumps({"key": {"a": 1}, "done": False}))
    r.stage(d, "st", {"a": 1}, fn, out)                       # interrupted: resumed, not started afresh
    r.stage(d, "st", {"a": 2}, fn, out)                       # another key: redone from scratch
    out.unlink()
    r.stage(d, "st", {"a": 2}, fn, out)                       # its output was deleted: done again
    assert calls == [False, False, True, False]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    path = write(tmp, TINY)
    out = tmp / "run"
    assert main(["run", str(path), "--out", str(out), "--limit", "3", "--threads", "1"]) == 0
    return path, out


def test_tiny_experiment_end_to_end(tiny_run, capsys):
    _, out = tiny_run
    table = (out / "table.md").read_text()
    head = next(line for line in table.splitlines() if line.startswith("| method"))
    for col in ("CHAIR_s", "CHAIR_i", "Recall", "Partner", "Attr err", "Rel err", "POPE F1 rand", "s/caption", "seeds"):
        assert col in head
    assert "| greedy |" in table and "1 (deterministic)" in table and "| VCD + correct |" in table
    res = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in res["rows"]] == ["greedy", "VCD + correct"]
    for r in res["rows"]:
        assert r["n_seeds"] == 1 and r["runs"][0]["n_captions"] == 3
        assert {"chair_s", "chair_i", "recall", "partner_rate", "attribute_error", "relation_error",
                "pope_random_f1", "s_per_caption"} <= set(r["mean"])
    vcd = res["rows"][1]
    corrected = [json.loads(x) for x in open(vcd["runs"][0]["files"]["corrected"])]
    assert len(corrected) == 3 and all("corrected_text" in x for x in corrected)
    prov = res["provenance"]
    assert len(prov["models"]["base"]["weights_sha256"]) == 64 and "torch" in prov["versions"] and "git" in prov
    if importlib.util.find_spec("matplotlib"):
        assert (out / "chair_vs_recall.png").exists()
    assert res["view"] == [vcd["runs"][0]["files"]["corrected"]]


def test_rerun_skips_finished_stages(tiny_run, capsys):
    path, out = tiny_run
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("stage.json")}
    assert len(stamps) >= 8          # decode x2, pope x2, correct, three scores
    capsys.readouterr()
    assert main(["run", str(path), "--out", str(out), "--limit", "3"]) == 0
    cap = capsys.readouterr()
    res = json.loads((out / "results.json").read_text())
    assert res["stages"]["run"] == 0 and res["stages"]["skipped"] >= len(stamps)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("stage.json")} == stamps
    assert "halluc view" in cap.out and " …" not in cap.err       # no stage ran


def test_finetune_row_trains_once_in_the_run_folder(tmp_path):
    path = write(tmp_path, """\
        seeds: [0]
        captions: {limit: 2, max_new_tokens: 16}
        pope: {splits: []}
        finetune:
          lrv:
            negatives: {world: world-train, limit: 8, neg_ratio: 0.4, seed: 0}
            finetune: {steps: 2, batch_size: 4, lr: 1.0e-3, seed: 0}
        rows:
          - {name: LRV, model: lrv, decode: {method: greedy}}
    """)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--threads", "1"]) == 0
    res = json.loads((out / "results.json").read_text())
    lrv = res["provenance"]["models"]["lrv"]
    assert lrv["path"] == str(out / "finetune-lrv" / "model") and len(lrv["weights_sha256"]) == 64
    assert lrv["weights_sha256"] != res["provenance"]["models"]["base"]["weights_sha256"]
    assert res["rows"][0]["runs"][0]["files"]["captions"].startswith(str(out / "lrv-greedy"))
    assert main(["run", str(path), "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["stages"]["run"] == 0


def test_zero_and_false_options_reach_the_stage():
    """A YAML value of 0 (``neg_ratio: 0.0`` of a positives-only control) is an option, not an absent
    one: 0 == False in Python, and dropping it silently trained the control on the default ratio."""
    from halluc.pipelines.experiment.config import _flags
    assert _flags({"neg_ratio": 0.0, "seed": 0, "full": False, "lora": None, "per_image": 4, "strict": True}) == \
        ["--neg-ratio", "0", "--seed", "0", "--per-image", "4", "--strict"]
    cfg = load_config(Path(__file__).resolve().parents[1] / "experiments" / "lrv_world.yaml")
    assert "--neg-ratio" in _flags(cfg["finetune"]["control"]["negatives"])
