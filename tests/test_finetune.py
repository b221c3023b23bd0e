"""``halluc finetune``: the collator supervises the answer only and encodes prompts as inference does,
a few steps lower the loss (LoRA and full), LoRA save / load / merge round-trip, the merged folder loads
with ``halluc.models.load`` and decodes with ``halluc decode``; bad records are reported."""
import json
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

from halluc.finetune import (FinetuneConfig, LoraSpec, VlmCollator, finetune, lora_targets, main,  # noqa: E402
                             parse_lora, prepare_model, read_examples, save)
from halluc.models import chat_prompt, load  # noqa: E402

SPEC = dict(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=64,
            text_layers=2, text_heads=2, max_positions=64)


def small_builtin(seed=0):
    from halluc.world.vlm import VlmSpec, build
    return build(VlmSpec(**SPEC), seed=seed)


@pytest.fixture(scope="module")
def world_data(tmp_path_factory):
    """LRV records (halluc negatives) on a few world scenes."""
    from halluc.negatives import main as negatives
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


def test_collator_supervises_the_answer_only_and_encodes_prompts_as_inference(world_data):
    _, path = world_data
    model, processor = small_builtin()
    ex = read_examples(path, limit=6)
    batch = VlmCollator(processor)([{"image": e.image, "question": e.question, "answer": e.answer} for e in ex])
    tok = processor.tokenizer
    from halluc.decode import open_image
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
    good = [json.loads(x) for x in path.read_text().splitlines()[:3]]
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
    assert any(":4:" in w and "question" in w for w in where)


def test_cli_merged_model_decodes(world_data, model_dir, tmp_path, capsys):
    d, path = world_data
    out = tmp_path / "ft"
    rc = main(["finetune", "--model", str(model_dir), "--data", str(path), "--out", str(out), "--steps", "3",
               "--batch-size", "4", "--lr", "1e-3", "--lora", "r=4,alpha=8,targets=q_proj,v_proj", "--no-progress"])
    assert rc == 0
    man = json.loads((out / "run.json").read_text())
    assert man["command"] == "finetune" and man["summary"]["steps"] == 3
    from halluc.decode import main as decode
    q = [{"question_id": i, "image": f"images/train-{i:05d}.png", "text": "is there a star in the image ?"}
         for i in range(3)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(x) + "\n" for x in q))
    rc = decode(["decode", "--model", str(out), "--questions", str(tmp_path / "q.jsonl"), "--images", str(d / "train"),
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
