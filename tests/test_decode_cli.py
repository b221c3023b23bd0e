"""``halluc decode``: inputs (world splits, image folders, POPE questions, CHAIR-500), records that
``halluc eval`` scores directly, resume, bad input, and scale-out over 2 CPU processes (gloo).

A tiny random model of the builtin architecture (LLaVA with the world's word-level vocabulary) is
saved once per session and passed as ``--model DIR``.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

from halluc.cli import main                                        # noqa: E402

FAST = ["--no-progress", "--max-new-tokens", "8", "--batch-size", "2"]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_world_bias_records_score_with_eval_world(tiny_model, tmp_path):
    out = tmp_path / "c.jsonl"
    assert main(["decode", "--method", "vcd", "--model", str(tiny_model), "--limit", "4", "--out", str(out), *FAST]) == 0
    recs = lines(out)
    assert [r["id"] for r in recs] == [f"world-bias/{200001 + i}" for i in range(4)]
    r = recs[0]
    assert set(r) >= {"id", "image_id", "image", "prompt", "text", "model_id", "method", "method_args", "gen",
                      "seed", "prompt_template"}
    assert r["image_id"] == 200001 and r["method"] == "vcd" and r["prompt_template"] == "chat"
    assert r["method_args"]["noise_step"] == 500 and r["gen"] == {"max_new_tokens": 8, "do_sample": True,
                                                                  "branches": "batched"}
    man = json.loads((tmp_path / "run.json").read_text())
    assert man["command"] == "decode" and man["summary"].pop("decode_seconds") >= 0
    assert man["summary"] == {"decoded": 4, "resumed": 0, "skipped": 0, "errors": 0, "bad_lines": 0}
    from halluc.cli import main as halluc_main
    assert halluc_main(["eval", "world", str(out)]) == 0
    assert json.loads((tmp_path / "c.world" / "results.json").read_text())["n_captions"] == 4


def test_resume_interrupted_run_without_duplicates(tiny_model, tmp_path, capsys):
    out = tmp_path / "c.jsonl"
    args = ["decode", "--method", "icd", "--set", "greedy=true", "--model", str(tiny_model), "--out", str(out), *FAST]
    assert main([*args, "--limit", "5"]) == 0
    full = lines(out)
    # an interrupted run: two records and a torn third line
    text = out.read_text().splitlines(keepends=True)
    out.write_text("".join(text[:2]) + text[2][:25])
    assert main([*args, "--limit", "5"]) == 0
    assert "3 decoded, 2 already done" in capsys.readouterr().err
    assert lines(out) == full
    assert main([*args, "--limit", "5", "--overwrite"]) == 0
    assert lines(out) == full


def test_pope_questions_and_bad_items(tiny_model, tmp_path, capsys):
    from halluc.world.builtin import split_dir
    d = split_dir("world-pope-adversarial")
    qs = [json.loads(x) for x in (d / "pope_adversarial.jsonl").read_text().splitlines()[:4]]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i, q in enumerate(qs):
        shutil.copy(d / q["image"], imgs / f"img{i}.png")
        q["image"] = f"img{i}.png"
    qs[1]["image"] = "missing.png"                                  # missing image
    (imgs / "corrupt.png").write_bytes(b"not a png at all")
    qs[2]["image"] = "corrupt.png"                                  # corrupt image
    qs[3]["text"] = " ".join(["star"] * 80) + " ?"                  # longer than the context (64)
    qfile = tmp_path / "pope.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in qs) + "{not json\n")
    out = tmp_path / "answers.jsonl"
    rc = main(["decode", "--method", "m3id", "--model", str(tiny_model), "--questions", str(qfile), "--images", str(imgs),
               "--out", str(out), *FAST])
    err = capsys.readouterr().err
    assert rc == 0
    assert f"{qfile}:5: malformed JSON" in err
    assert f"{qfile}:2: image not found: {imgs / 'missing.png'}" in err
    assert f"{qfile}:3: cannot read image {imgs / 'corrupt.png'}: corrupt or not an image" in err
    assert f"{qfile}:4: prompt of" in err and "does not fit the model's context of 64" in err
    assert "1 decoded, 0 already done, 3 failed (kept with an error), 1 bad input lines skipped" in err
    recs = {r["question_id"]: r for r in lines(out)}
    assert sorted(recs) == sorted(q["question_id"] for q in qs)             # every input keeps its record
    good = recs[qs[0]["question_id"]]
    assert "error" not in good and isinstance(good["text"], str) and good["gen"]["max_new_tokens"] == 8
    assert all("text" not in recs[q["question_id"]] and recs[q["question_id"]]["error"] for q in qs[1:])
    from halluc.metrics.pope import load_questions, score_pope
    res = score_pope({str(k): r["text"] for k, r in recs.items() if "text" in r}, load_questions(str(qfile)), "vcd")
    assert res.totals["n"] == 1
    # --retry-errors decodes the failed ones again (still failing here) without duplicating any id
    assert main(["decode", "--method", "m3id", "--model", str(tiny_model), "--questions", str(qfile), "--images",
                 str(imgs), "--out", str(out), "--retry-errors", *FAST]) == 0
    assert "0 decoded, 1 already done, 3 failed" in capsys.readouterr().err
    again = [r["question_id"] for r in lines(out)]
    assert sorted(again) == sorted(recs) and len(again) == len(set(again))


def test_world_pope_dataset_and_chair500(tiny_model, tmp_path):
    out = tmp_path / "p.jsonl"
    assert main(["decode", "--dataset", "world-pope-random", "--model", str(tiny_model), "--limit", "2",
                 "--out", str(out), *FAST]) == 0
    r = lines(out)[0]
    assert r["id"].startswith("world-pope-random/") and "question_id" in r and r["prompt"].startswith("is there")
    # CHAIR-500: ids from the bundled list, images by COCO file name; the absent ones are reported
    ids = json.loads(Path(__import__("halluc").__file__).with_name("assets").joinpath(
        "coco_chair/chair500_ids.json").read_text())["image_ids"]
    assert len(ids) == 500 and ids[0] == 226988
    imgs = tmp_path / "val2014"
    imgs.mkdir()
    from PIL import Image
    for i in ids[:2]:
        Image.new("RGB", (40, 30), "red").save(imgs / f"COCO_val2014_{i:012d}.jpg")
    out = tmp_path / "chair.jsonl"
    assert main(["decode", "--coco-chair500", "--images", str(imgs), "--model", str(tiny_model), "--limit", "3",
                 "--out", str(out), *FAST]) == 0
    recs = lines(out)
    assert [r["image_id"] for r in recs] == ids[:3] and recs[0]["id"] == f"chair500/{ids[0]}"
    assert "text" in recs[1] and "image not found" in recs[2]["error"] and "text" not in recs[2]
    assert recs[0]["prompt"] == "Please describe this image in detail."


def test_image_folder_llava_v1_template(tiny_model, tmp_path):
    from PIL import Image
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.new("RGB", (50, 50), "blue").save(imgs / "b.png")
    Image.new("RGB", (50, 50), "green").save(imgs / "a.jpg")
    out = tmp_path / "o.jsonl"
    assert main(["decode", "--images", str(imgs), "--model", str(tiny_model), "--template", "llava_v1",
                 "--method", "vdd", "--prompt", "describe the image .", "--out", str(out), *FAST]) == 0
    recs = lines(out)
    assert [r["id"] for r in recs] == ["a", "b"] and all(r["prompt_template"] == "llava_v1" for r in recs)


@pytest.mark.parametrize("argv, message", [
    (["--set", "alfa=1"], "unknown parameter 'alfa' for vcd; valid: alpha, beta, greedy"),
    (["--set", "noise_step=1000"], "noise_step=1000: must be an integer in 0..999"),
    (["--set", "alpha"], "--set 'alpha': expected KEY=VALUE"),
    (["--model", "no-such-org/no-such-model"], "nothing can be downloaded here"),
    (["--questions", "q.jsonl"], "--questions needs --images DIR"),
])
def test_bad_arguments_are_named(tiny_model, tmp_path, capsys, argv, message):
    args = ["decode", "--method", "vcd", "--model", str(tiny_model), "--out", str(tmp_path / "o.jsonl"), *FAST, *argv]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_folder_without_weights(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert main(["decode", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o.jsonl"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "has config.json but no *.safetensors weights" in err and "nothing can be downloaded here" in err


def test_two_processes_match_one(tiny_model, tmp_path):
    """torchrun, 2 CPU ranks over gloo: shards by rank, rank 0 merges in input order = single process."""
    common = ["decode", "--method", "vcd", "--model", str(tiny_model), "--limit", "5", *FAST]
    assert main([*common, "--out", str(tmp_path / "one" / "c.jsonl")]) == 0
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "halluc", *common,
                        "--out", str(tmp_path / "two" / "c.jsonl")], capture_output=True, text=True, env=env,
                       cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "merged 2 ranks: 5 records" in r.stderr
    assert (tmp_path / "two" / "c.jsonl").read_text() == (tmp_path / "one" / "c.jsonl").read_text()
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["c.jsonl", "run.json"]
