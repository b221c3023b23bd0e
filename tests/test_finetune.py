"""``halluc finetune``: the collator supervises the answer only and encodes prompts as inference does,
a few steps lower the loss (LoRA and full), LoRA save / load / merge round-trip, the merged folder loads
with ``halluc.models.load`` and decodes with ``halluc decode``; bad records are reported."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_command
import torch
from PIL import Image

torch.set_num_threads(1)

from halluc.cli import main  # noqa: E402
from halluc.pipelines.finetune import (FinetuneConfig, LoraSpec, VlmCollator, finetune, lora_targets,  # noqa: E402
                                       parse_lora, prepare_model, read_examples, save)
from halluc.models import chat_prompt, load  # noqa: E402
from halluc.records import BadInput  # noqa: E402

SPEC = dict(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=64,
            text_layers=2, text_heads=2, max_positions=64)


def small_builtin(seed=0):
    from halluc.world.vlm import VlmSpec, build
    return build(VlmSpec(**SPEC), seed=seed)


@pytest.fixture(scope="module")
def world_data(tmp_path_factory):
    """LRV records (halluc negatives) on a few world scenes."""
    from halluc.cli import main as negatives
    from halluc.world.generate import generate
    d = tmp_path_factory.mktemp("ftworld")
    generate(d / "train", "train", 12, seed=1)
    out = d / "lrv" / "train.jsonl"
    assert negatives(["negatives", "--world", str(d / "train"), "--out", str(out), "--per-image", "4"]) == 0
    return d, out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from halluc.world.vlm import save as save_builtin
    d = tmp_path_factory.mktemp("smallvlm")
    model, processor = small_builtin()
    save_builtin(model, processor, d)
    return d


def absolute(rec: dict, data: Path) -> dict:
    """A record copied out of ``data``'s folder: its image path (relative to that folder) made absolute."""
    rec["image"] = str(data.parent / rec["image"])
    rec["images"] = [rec["image"]]
    return rec


def test_collator_supervises_the_answer_only_and_encodes_prompts_as_inference(world_data):
    _, path = world_data
    model, processor = small_builtin()
    ex = read_examples(path, limit=6)
    batch = VlmCollator(processor)([{"image": e.image, "question": e.question, "answer": e.answer} for e in ex])
    tok = processor.tokenizer
    from halluc.images import open_image
    for r, e in enumerate(ex):
        want = processor(images=[open_image(Path(e.image))], text=[chat_prompt(processor, e.question)],
                         return_tensors="pt")["input_ids"][0].tolist()
        ids = batch["input_ids"][r].tolist()
        assert ids[:len(want)] == want                               # the inference prompt, image tokens expanded
        answer = tok(e.answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        labels = batch["labels"][r].tolist()
        assert labels[:len(want)] == [-100] * len(want)
        assert labels[len(want):len(want) + len(answer)] == answer
        assert ids[len(want):len(want) + len(answer)] == answer
        assert all(x == -100 for x in labels[len(want) + len(answer):])
        assert tok.unk_token_id not in ids                           # world records: inside the vocabulary
    assert batch["pixel_values"].shape[0] == len(ex)


@pytest.mark.parametrize("full", [False, True])
def test_a_few_steps_lower_the_loss(world_data, tmp_path, full):
    _, path = world_data
    model, processor = small_builtin()
    data = read_examples(path)[:16]
    cfg = FinetuneConfig(steps=12, batch_size=8, lr=1e-2 if not full else 3e-3, warmup=0.0, full=full, logging_steps=4)
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    s = finetune("small", data, tmp_path / "ft", cfg, LoraSpec(dropout=0.0, targets=targets), model=model,
                 processor=processor, progress=False, log=lambda *_: None)
    assert s["loss_after"] < 0.9 * s["loss_before"], s
    assert s["train_loss"] < s["loss_before"]
    assert s["trainable"] < s["parameters"]
    if not full:    # r=8 adapters (A: 8 x in, B: out x 8) on 4 attention + 3 MLP projections in 2 layers
        h, m = 64, int(8 / 3 * 64)
        assert s["trainable"] == 2 * 8 * (4 * (h + h) + 2 * (h + m) + (m + h))
    assert (tmp_path / "ft" / "model.safetensors").exists() and (tmp_path / "ft" / "adapter").exists() is (not full)
    assert (tmp_path / "ft" / "finetune.json").exists()


def test_lora_save_load_merge_round_trip(world_data, tmp_path):
    from peft import PeftModel
    _, path = world_data
    model, processor = small_builtin()
    peft_model = prepare_model(model, FinetuneConfig(), LoraSpec(dropout=0.0))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:                                         # make the adapter matter
                p.normal_(0, 0.3)
    peft_model.eval()
    ex = read_examples(path, limit=4)
    batch = VlmCollator(processor)([{"image": e.image, "question": e.question, "answer": e.answer} for e in ex])
    with torch.no_grad():
        want = peft_model(**batch).logits
    save(peft_model, processor, tmp_path / "out")
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").exists()
    assert not list((tmp_path / "out").rglob("*.bin"))
    merged, proc2, info = load(str(tmp_path / "out"))                 # the path halluc decode --model takes
    with torch.no_grad():
        got = merged(**batch).logits
    assert torch.allclose(got, want, atol=1e-4)
    base, _ = small_builtin()
    with torch.no_grad():
        plain = base.eval()(**batch).logits
    assert not torch.allclose(plain, want, atol=1e-2)                 # the adapter changed the model
    reloaded = PeftModel.from_pretrained(base, tmp_path / "out" / "adapter").eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**batch).logits, want, atol=1e-4)
        assert torch.allclose(reloaded.merge_and_unload()(**batch).logits, want, atol=1e-4)
    assert proc2.tokenizer.get_vocab() == processor.tokenizer.get_vocab()


def test_lora_targets_the_language_model_only_unless_asked():
    model, _ = small_builtin()
    names = lora_targets(model, LoraSpec())
    assert names and all("language_model" in n and n.endswith(("q_proj", "v_proj")) for n in names)
    both = lora_targets(model, LoraSpec(scope="all"))
    assert any("vision_tower" in n for n in both) and set(names) < set(both)
    with pytest.raises(ValueError, match="match no linear layer.*q_proj"):
        lora_targets(model, LoraSpec(targets=("query",)))


def test_parse_lora():
    assert parse_lora("r=8,alpha=32,dropout=0.05,targets=q_proj,v_proj") == LoraSpec()
    s = parse_lora("targets=q_proj,k_proj,v_proj,o_proj,r=16,scope=all")
    assert s.targets == ("q_proj", "k_proj", "v_proj", "o_proj") and s.r == 16 and s.scope == "all"
    assert parse_lora("") == LoraSpec()
    with pytest.raises(ValueError, match="valid: r, alpha, dropout, targets, scope"):
        parse_lora("rank=8")
    with pytest.raises(ValueError, match="not key=value"):
        parse_lora("r=8,q_proj")
    with pytest.raises(ValueError):
        parse_lora("r=0")


def test_bad_records_are_reported_and_skipped(world_data, tmp_path, capsys):
    _, path = world_data
    good = [absolute(json.loads(x), path) for x in path.read_text().splitlines()[:3]]
    msgs_only = {"messages": good[1]["messages"], "images": good[1]["images"]}
    rows = [json.dumps(good[0]), "{broken", json.dumps({**good[2], "image": str(tmp_path / "nope.png"), "images": None}),
            json.dumps({"question": "is there a star in the image ?", "image": good[0]["image"]}), json.dumps(msgs_only)]
    f = tmp_path / "d.jsonl"
    f.write_text("\n".join(rows) + "\n")
    from halluc.records import ReadReport
    rep = ReadReport(echo=False)
    ex = read_examples(f, report=rep)
    assert [(e.question, e.answer) for e in ex] == [(good[0]["question"], good[0]["answer"]),
                                                     (good[1]["question"], good[1]["answer"])]
    where = sorted(str(b) for b in rep.bad)
    assert len(where) == 3 and all(str(f) in w for w in where)
    assert any(":2:" in w and "malformed JSON" in w for w in where)
    assert any(":3:" in w and "image not found" in w for w in where)
    assert any(":4:" in w and "answer: missing" in w for w in where)     # the field that is missing, named


def test_cli_merged_model_decodes(world_data, model_dir, tmp_path, capsys):
    d, path = world_data
    out = tmp_path / "ft"
    rc = main(["finetune", "--model", str(model_dir), "--data", str(path), "--out", str(out), "--steps", "3",
               "--batch-size", "4", "--lr", "1e-3", "--lora", "r=4,alpha=8,targets=q_proj,v_proj", "--no-progress"])
    assert rc == 0
    man = json.loads((out / "run.json").read_text())
    assert man["command"] == "finetune" and man["summary"]["steps"] == 3
    from halluc.commands.decode import main as decode
    q = [{"question_id": i, "image": f"images/train-{i:05d}.png", "text": "is there a star in the image ?"}
         for i in range(3)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(x) + "\n" for x in q))
    rc = decode(["--model", str(out), "--questions", str(tmp_path / "q.jsonl"), "--images", str(d / "train"),
                 "--out", str(tmp_path / "a.jsonl"), "--max-new-tokens", "2", "--no-progress"])
    assert rc == 0 and len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
    capsys.readouterr()
    assert main(["finetune", "--model", str(model_dir), "--data", str(path), "--out", str(out),
                 "--lora", "rank=4"]) == 2
    assert "valid: r, alpha" in capsys.readouterr().err


def test_trl_sft_trainer_path(world_data, tmp_path):
    pytest.importorskip("trl")
    _, path = world_data
    model, processor = small_builtin()
    cfg = FinetuneConfig(steps=3, batch_size=4, lr=1e-2, warmup=0.0, trainer="trl", logging_steps=1)
    s = finetune("small", read_examples(path)[:8], tmp_path / "ft", cfg, LoraSpec(dropout=0.0), model=model,
                 processor=processor, progress=False, log=lambda *_: None)
    assert s["steps"] == 3 and s["loss_after"] < s["loss_before"]
    load(str(tmp_path / "ft"))


def test_same_seed_same_weights_whatever_ran_before(world_data, tmp_path):
    from safetensors.torch import load_file
    _, path = world_data
    data = read_examples(path)[:8]
    cfg = FinetuneConfig(steps=2, batch_size=4, lr=1e-2, warmup=0.0, seed=3)
    for k in range(2):
        torch.rand(k + 5)                                   # global RNG state differs between the runs
        model, processor = small_builtin()
        finetune("small", data, tmp_path / f"ft{k}", cfg, LoraSpec(), model=model, processor=processor,
                 progress=False, log=lambda *_: None)
    a, b = (load_file(tmp_path / f"ft{k}" / "adapter" / "adapter_model.safetensors") for k in range(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- bad input (generated here, nothing committed)

def cli(argv, capsys):
    return run_command(["finetune", *argv], capsys)


def bad_images(d: Path, monkeypatch) -> dict[str, str]:
    """One bad image of each kind under ``d``: name -> what the report says. World images are 64x64
    (4096 px): the cap is set between them and the oversized one."""
    (d / "passwd.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(d / "trunc.png")
    (d / "trunc.png").write_bytes((d / "trunc.png").read_bytes()[:600])
    (d / "dir.png").mkdir()
    os.mkfifo(d / "fifo.png")
    Image.new("RGB", (100, 100)).save(d / "big.png")
    monkeypatch.setenv("HALLUC_MAX_IMAGE_PIXELS", "5000")
    return {"passwd.png": "corrupt or not an image", "trunc.png": "corrupt or not an image",
            "dir.png": "is a directory", "fifo.png": "not a regular file", "big.png": "over the cap",
            "gone.png": "image not found"}


def test_bad_records_are_skipped_with_file_line_and_training_goes_on(world_data, model_dir, tmp_path, monkeypatch,
                                                                    capsys, no_hang):
    _, path = world_data
    good = [absolute(json.loads(x), path) for x in path.read_text().splitlines()[:4]]
    bad = bad_images(tmp_path, monkeypatch)
    rows = [json.dumps(good[0]), "{broken", json.dumps(good[1])]
    rows += [json.dumps({**good[2], "image": str(tmp_path / name), "images": None}) for name in bad]
    rows += [json.dumps(good[3])]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "ft"
    rc, err = cli(["--model", model_dir, "--data", data, "--out", out, "--steps", "1", "--batch-size", "2",
                   "--lr", "1e-3", "--no-progress"], capsys)
    assert rc == 0, err
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert errors[0] == f"error: {data}:2: malformed JSON: Expecting property name enclosed in double quotes at column 2"
    for k, (name, what) in enumerate(bad.items()):
        line = errors[1 + k]
        assert line.startswith(f"error: {data}:{4 + k}: image: ") and name in line and what in line, line
    assert len(errors) == 1 + len(bad)
    ft = json.loads((out / "finetune.json").read_text())
    assert ft["examples"] == 3 and ft["skipped"] == 1 + len(bad) and ft["steps"] == 1
    assert any("fifo.png" in x for x in ft["skipped_first"])
    assert json.loads((out / "run.json").read_text())["data"]["skipped"] == 1 + len(bad)
    assert f"3 examples ({1 + len(bad)} skipped)" in err


def test_a_field_of_the_wrong_type_is_an_error_never_replaced_by_another(world_data, tmp_path):
    from halluc.records import ReadReport
    _, path = world_data
    g = absolute(json.loads(path.read_text().splitlines()[0]), path)        # question, answer, messages, image(s)
    rows = [{**g, "question": 7},                           # messages would give a question: not used
            {**g, "answer": ["yes"]},
            {**g, "answer": None},
            {**g, "image": ["x.png"]},                      # images would give a path: not used
            {k: v for k, v in g.items() if k != "image"} | {"images": g["image"]},
            {k: v for k, v in g.items() if k not in ("question", "answer")} | {"messages": "is there a star ?"},
            {k: v for k, v in g.items() if k not in ("question", "answer")},        # messages only: fine
            g]
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = ReadReport(echo=False)
    ex = read_examples(f, report=rep)
    assert [e.where for e in ex] == [f"{f}:7", f"{f}:8"]
    assert [str(b).removeprefix(f"{f}:") for b in rep.bad] == [
        "1: question: expected a string, got int",
        "2: answer: expected a string, got list",
        "3: answer: expected a string, got null",
        "4: image: expected a string, got list",
        "5: images: expected a list with one path string, got str",
        "6: messages: expected a list with one user and one assistant turn, each with text"]
    assert rep.n_good == 2
    with pytest.raises(BadInput, match=f"{f}:1: question: expected a string"):
        read_examples(f, strict=True)


def test_every_record_bad_is_one_error_and_no_training(world_data, model_dir, tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{broken\n{"question": "q", "answer": "a", "image": "nope.png"}\n')
    rc, err = cli(["--model", model_dir, "--data", data, "--out", tmp_path / "ft", "--steps", "1"], capsys)
    assert rc == 2 and err.splitlines()[-1] == f"error: {data}: no usable record (2 skipped, each reported above)"
    assert not (tmp_path / "ft").exists()


def test_default_max_length_is_the_model_context_and_long_records_fit_it(world_data, tmp_path):
    from types import SimpleNamespace
    from halluc.pipelines.finetune import DEFAULT_MAX_LENGTH, Example, context_length
    _, path = world_data
    model, processor = small_builtin()
    assert context_length(model) == SPEC["max_positions"] == 64
    assert context_length(SimpleNamespace(config=SimpleNamespace())) == DEFAULT_MAX_LENGTH == 2048
    data = read_examples(path)[:4]
    huge = Example("huge", data[0].image, data[0].question, " ".join(["star"] * 200_000))   # a 1 MB answer
    long_q = Example("long", data[0].image, " ".join(["star"] * 500), "yes", where="d.jsonl:9")
    batch = VlmCollator(processor, 64)([{"image": e.image, "question": e.question, "answer": e.answer}
                                        for e in (huge, data[1])])
    assert batch["input_ids"].shape[1] == 64 and (batch["labels"][0] != -100).sum() > 0
    logged = []
    s = finetune("small", [huge, long_q, *data], tmp_path / "ft", FinetuneConfig(steps=1, batch_size=2, lr=1e-3),
                 LoraSpec(), model=model, processor=processor, progress=False, log=logged.append,
                 skipped=["d.jsonl:2: malformed JSON"])
    assert s["max_length"] == 64 and s["examples"] == 5 and s["skipped"] == 2
    assert any(m.startswith("error: d.jsonl:9: question: the prompt is ") and "--max-length" in m for m in logged)
    with pytest.raises(ValueError, match="no training example fits the maximum length 64"):
        finetune("small", [long_q], tmp_path / "ft2", FinetuneConfig(steps=1), LoraSpec(), model=model,
                 processor=processor, progress=False, log=logged.append)


def test_max_length_default_is_said_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: the model's context" in out and "2048" in out


@pytest.mark.parametrize("opt,value,message", [
    ("--steps", "-1", "must be >= 0"), ("--epochs", "0", "must be in (0, ]"), ("--lr", "0", "must be in (0, ]"),
    ("--lr", "inf", "must be a finite number"), ("--batch-size", "0", "must be >= 1"),
    ("--grad-accum", "0", "must be >= 1"), ("--warmup", "1.5", "must be in [0, 1]"),
    ("--weight-decay", "-0.1", "must be in [0, ]"), ("--max-length", "8", "must be >= 16"),
    ("--limit", "0", "must be >= 1"), ("--threads", "0", "must be >= 1"), ("--logging-steps", "0", "must be >= 1"),
    ("--save-steps", "-1", "must be >= 0"), ("--seed", "-1", "must be in 0.."),
])
def test_numeric_options_are_bounded_at_parse_time(tmp_path, capsys, opt, value, message):
    rc, err = cli(["--data", tmp_path / "d.jsonl", "--out", tmp_path / "ft", opt, value], capsys)
    assert rc == 2 and f"argument {opt}: {message}" in err, err


def test_paths_and_model_are_checked_before_reading_or_training(world_data, model_dir, tmp_path, capsys, no_hang):
    _, path = world_data
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "file").write_text("x")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((model_dir / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not loaded")
    cases = [
        (["--data", tmp_path / "fifo.jsonl", "--out", tmp_path / "file"], "--out", "not a folder"),
        (["--data", tmp_path / "fifo.jsonl", "--out", tmp_path / "ft"], "--data", "FIFO"),
        (["--data", tmp_path, "--out", tmp_path / "ft"], "--data", "is a directory"),
        (["--data", path, "--images", tmp_path / "file", "--out", tmp_path / "ft"], "--images", "not a folder"),
        (["--data", path, "--model", pickled, "--out", tmp_path / "ft"], "--model", "pickle"),
    ]
    for argv, where, what in cases:
        rc, err = cli(argv, capsys)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ") and where in err and what in err, (argv, err)
    assert not (tmp_path / "ft").exists()
