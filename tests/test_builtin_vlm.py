"""The builtin world VLM: it loads offline through the Auto classes, it sees (captions name the
objects that are there), prompts are encoded in training exactly as the processor encodes them,
and the training recipe lowers its losses on a tiny configuration."""
from pathlib import Path

import numpy as np
import pytest
import torch

from halluc.models import builtin_path, chat_prompt, generate_greedy, load
from halluc.world.language import parse_caption, questions
from halluc.world.scene import Obj, Scene, WorldConfig, render, sample_scene
from halluc.world.train import TrainConfig, make_data, train_lm, train_tower
from halluc.world.train_examples import NAMED, NEXT, WORD, collate, encode_examples, look_targets
from halluc.world.train_losses import KEEP_SIZES, keep_loss
from halluc.world.vlm import VlmSpec, build, format_prompt

torch.set_num_threads(1)

# The shipped checkpoint is produced by `halluc world train` (issue 3); until it is committed the
# tests that need it say so instead of failing on a missing file.
needs_checkpoint = pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "halluc/assets/builtin_vlm/config.json").exists(),
                                      reason="builtin checkpoint not trained into halluc/assets/builtin_vlm yet")


@pytest.fixture(scope="module")
def builtin():
    return load("builtin")


@needs_checkpoint
def test_builtin_is_a_llava_checkpoint(builtin):
    model, processor, info = builtin
    assert type(model).__name__ == "LlavaForConditionalGeneration" and type(processor).__name__ == "LlavaProcessor"
    assert info["model_id"] == "builtin"
    size = sum(f.stat().st_size for f in builtin_path().glob("*.safetensors"))
    assert size <= 20 * 2**20
    assert not list(builtin_path().glob("*.bin")) and not list(builtin_path().glob("*.pt"))


@needs_checkpoint
def test_builtin_sees_the_scene(builtin):
    model, processor, _ = builtin
    cfg = WorldConfig()
    rng = np.random.default_rng(123)
    scenes = [sample_scene(cfg, rng, str(i)) for i in range(12)]
    texts = generate_greedy(model, processor, [render(s, cfg, rng) for s in scenes], ["describe the image ."] * 12)
    hits = total = 0
    for s, t in zip(scenes, texts):
        said = {m.cls for m in parse_caption(t).mentions}
        vis = {o.cls for o in s.visible()}
        hits += len(said & vis)
        total += len(vis)
    # A blind captioner names a visible class ~25 % of the time; the quality targets themselves
    # (recall >= 0.9 ...) are measured by experiments/world_quality.py on 300 scenes.
    assert hits / total >= 0.6, list(zip([sorted(o.cls for o in s.visible()) for s in scenes], texts))


@needs_checkpoint
def test_builtin_answers_existence_questions(builtin):
    model, processor, _ = builtin
    cfg = WorldConfig()
    rng = np.random.default_rng(7)
    scenes = [sample_scene(cfg, rng, str(i)) for i in range(16)]
    qa = [questions(s, cfg, rng)[0] if i % 2 else questions(s, cfg, rng)[2] for i, s in enumerate(scenes)]
    answers = generate_greedy(model, processor, [render(s, cfg, rng) for s in scenes], [q for q, _ in qa], 3)
    assert np.mean([a == want for a, (_, want) in zip(answers, qa)]) >= 0.75, list(zip(qa, answers))


def test_training_encoding_equals_processor_encoding():
    model, processor = build(VlmSpec())
    img = render(sample_scene(WorldConfig(), np.random.default_rng(0)), WorldConfig())
    q = "is there a star in the image ?"
    assert chat_prompt(processor, q) == format_prompt(q)
    want = processor(images=[img], text=[format_prompt(q)], return_tensors="pt")["input_ids"][0].tolist()
    caps, qas = encode_examples(processor, [("a red star .", [(q, "yes")])], model.config.image_seq_length)
    assert qas[0][1] == want
    assert caps[0][2] == processor.tokenizer("a red star .", add_special_tokens=False)["input_ids"] + [
        processor.tokenizer.eos_token_id]


def test_look_targets_point_at_the_named_objects():
    # star at cell 1, a hidden moon (named, not drawn), a circle at cell 6
    s = Scene("t", [Obj("star", "red", "large", [16, 0, 30, 14], 1, True), Obj("moon", "blue", "small", None, None, False),
                    Obj("circle", "green", "small", [32, 16, 40, 24], 6, True)])
    text = "a large red star , a small blue moon and a small green circle . the star is left of the circle ."
    toks = text.split()
    look = look_targets(s, text)
    at = {slot: {k: keys for sl, k, keys in look if sl == slot} for slot in (NEXT, WORD, NAMED)}
    nxt, word, named = at[NEXT], at[WORD], at[NAMED]
    # the position holding token k-1 predicts token k: NEXT points at the object token k belongs to
    assert [toks[k] for k in nxt if nxt[k] == [1]] == ["a", "large", "red", "star", "star"]
    assert [toks[k] for k in nxt if nxt[k] == [6]] == ["a", "small", "green", "circle", "circle"]
    assert not any(toks[k] == "moon" for k in nxt)         # the hidden partner: no cell to look at
    # WORD: the latest shape word with its adjectives; NAMED: the cells of that object
    after_star, after_circle = toks.index("star") + 1, toks.index("circle") + 1
    assert [toks[w] for w in word[after_star]] == ["large", "red", "star"] and named[after_star] == [1]
    assert [toks[w] for w in word[toks.index("green") + 1]] == ["small", "blue", "moon"]
    assert toks.index("green") + 1 not in named            # the moon just named is hidden: no cells
    assert [toks[w] for w in word[after_circle]] == ["small", "green", "circle"] and named[after_circle] == [6]
    assert named[toks.index("is") + 1] == [1]                 # "the star is ...": the relation's subject
    assert all(max(keys) < k for k, keys in word.items())   # only tokens already written
    assert 0 not in word and 0 not in named                 # nothing named before the first object
    assert look_targets(s, "yes", "is there a circle in the image ?") == [(NAMED, 0, [6])]
    assert look_targets(s, "yes", "is there a moon in the image ?") == []


def test_look_heads_must_exist():
    spec = VlmSpec(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=1, text_heads=2)
    model, processor = build(spec)
    with pytest.raises(ValueError, match="look_next"):
        train_lm(model, processor, None, [], TrainConfig(lm_steps=1))


def test_keep_layers_must_exist():
    spec = VlmSpec(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=2, text_heads=2)
    model, processor = build(spec)
    cells = (torch.zeros(1, 16, dtype=torch.long),) * 3
    with pytest.raises(ValueError, match="keep_layers"):
        train_lm(model, processor, None, [], TrainConfig(lm_steps=1, attn_sup=0, keep_layers=(2,)), cells=cells)


def test_keep_loss_reads_each_cell_at_a_later_layer():
    """The read-out loss sees the cell labels at the image positions of the chosen layer's input, and
    its gradient reaches the layers before it (the ones asked not to overwrite the cell), not that layer."""
    spec = VlmSpec(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=2, text_heads=2)
    model, processor = build(spec)
    scenes, pix, labels, texts, _ = make_data(TrainConfig(n_scenes=6), WorldConfig(), processor)
    caps, _ = encode_examples(processor, texts, model.config.image_seq_length)
    ids, mask, _, px, _ = collate(caps, pix, processor.tokenizer.pad_token_id)
    out = model(input_ids=ids, attention_mask=mask, pixel_values=px, output_hidden_states=True)
    torch.manual_seed(0)
    heads = {1: torch.nn.Linear(spec.text_hidden, sum(KEEP_SIZES))}
    img = ids == processor.tokenizer.convert_tokens_to_ids("<image>")
    rows = [b[0] for b in caps]
    targets = [c[rows] for c in labels]
    loss = keep_loss(model, out.hidden_states, img, heads, targets)
    chance = np.log(KEEP_SIZES).sum()
    assert abs(loss.item() - chance) < 0.5 * chance                   # untrained head: near chance
    loss.backward()
    layers = model.model.language_model.layers
    assert layers[0].mlp.down_proj.weight.grad.abs().sum() > 0        # the layer before the read-out
    assert layers[1].mlp.down_proj.weight.grad is None                # the read-out layer's own output: untouched
    # fit the head alone on these cells: the loss falls, and it is a loss on these labels, not any labels
    opt = torch.optim.Adam(heads[1].parameters(), lr=1e-2)
    hs = [h.detach() for h in out.hidden_states]
    for _ in range(200):
        opt.zero_grad()
        fitted = keep_loss(model, hs, img, heads, targets)
        fitted.backward()
        opt.step()
    shuffled = [t[torch.randperm(len(t))] for t in targets]
    assert fitted.item() < 0.3 * loss.item()
    assert keep_loss(model, hs, img, heads, shuffled).item() > 2 * fitted.item()


def test_training_recipe_lowers_the_loss():
    spec = VlmSpec(vision_hidden=32, vision_layers=1, vision_heads=2, text_hidden=32, text_layers=3, text_heads=2)
    cfg = TrainConfig(n_scenes=48, tower_steps=25, tower_batch=16, lm_steps=60, lm_batch=8, warmup=3,
                      log_every=1000, tower_lr=3e-3, lm_lr=1e-2)
    model, processor = build(spec)
    scenes, pix, labels, texts, _ = make_data(cfg, WorldConfig(), processor)
    _, tl = train_tower(model, pix, labels, cfg, log=lambda *_: None)
    ll = train_lm(model, processor, pix, texts, cfg, scenes, log=lambda *_: None, cells=labels)
    assert np.mean(tl[-5:]) < 0.7 * np.mean(tl[:5])
    assert np.mean(ll[-10:]) < 0.8 * np.mean(ll[:10])      # caption and question batches alternate: average 10
