"""Train the builtin world VLM on the CPU, in two stages (about 37 minutes on 2 idle cores).

    halluc world train --out halluc/assets/builtin_vlm [--seed 0] [--quick]

Why staged: trained end to end on captions, a tiny CLIP tower never learned to see (the prototype:
object recall 0.33 after 34 minutes). So
1. the vision tower is trained alone with per-patch heads (class-or-empty, colour, size) on the
   scene grid: one patch = one cell, which a 4-layer ViT learns in about a minute;
2. with the tower frozen, the projector and a small Llama learn from scratch to caption and answer
   short questions (existence, colour, count). Loss on the answer tokens only, plus three helpers:
   attention supervision, one hop per layer (layer 0 fetches the latest shape word, layer 1 finds
   the cells of the object it names, layer 2 the cells of the object named next; see
   ``look_targets`` in train_examples.py), an alignment loss that puts each image token near the
   embeddings of the words naming its cell (``align_loss``), and a read-out loss that keeps each
   cell's class, colour and size readable at the inputs of layers 1 and 2 (``keep_loss``; both
   in train_losses.py). Without the first two, 3000 steps gave recall 0.76 and existence answers
   at chance; without the third, colours came out at chance (attribute accuracy 0.58). The result is still a plain LlavaForConditionalGeneration.
The training split hides some co-occurring partners while still naming them (see
``halluc.world.scene``): that is where the planted hallucination comes from.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from halluc.world.language import caption, questions
from halluc.world.scene import CLASSES, COLOURS, SIZES, WorldConfig, render, sample_scene
from halluc.world.generate import SPLIT_SEED_OFFSET, split_config
from halluc.world.train_examples import SLOT_FIELDS, collate, encode_examples
from halluc.world.train_losses import KEEP_SIZES, align_loss, keep_loss, look_loss
from halluc.world.vlm import VlmSpec, build, save


@dataclass
class TrainConfig:
    seed: int = 0
    n_scenes: int = 8000            # training scenes, drawn in memory
    hidden_partner: float = 0.25    # P(a rule-added partner is hidden but named)
    tower_steps: int = 600
    tower_lr: float = 1e-3
    tower_batch: int = 64
    lm_steps: int = 6000
    lm_lr: float = 2e-3
    lm_batch: int = 32
    caption_share: float = 0.5      # share of steps on captions; the rest on short questions
    projector_scale: float = 0.05   # image tokens start at the scale of word embeddings (see train_lm)
    projector_lr: float = 0.1       # projector learning rate, as a fraction of lm_lr (see train_lm)
    warmup: int = 100
    attn_sup: float = 1.0           # weight of the attention-supervision loss (0 = off)
    align: float = 1.0              # weight of the image-token/word alignment loss (0 = off)
    keep: float = 1.0               # weight of the cell read-out loss on later layers' inputs (0 = off)
    keep_layers: tuple[int, ...] = (1, 2)  # layers whose input must still name each cell (see keep_loss)
    look_word: tuple[int, int] = (0, 0)    # (layer, head) told to fetch the latest shape word
    look_named: tuple[int, int] = (1, 1)   # (layer, head) told which cells hold the object it names
    look_next: tuple[int, int] = (2, 0)    # (layer, head) told which cells hold the object named next
    threads: int = 2
    log_every: int = 100


def _cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _update(opt, params, loss) -> float:
    """One optimiser step with gradient clipping; returns the loss value."""
    import torch
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()


def make_data(cfg: TrainConfig, world: WorldConfig, processor):
    """Scenes, their pixel tensors (through the processor, exactly as at inference) and per-cell labels."""
    import torch
    wcfg = split_config(world, "train", cfg.hidden_partner)
    rng = np.random.default_rng(cfg.seed + SPLIT_SEED_OFFSET["train"])
    scenes, images, texts = [], [], []
    for i in range(cfg.n_scenes):
        s = sample_scene(wcfg, rng, f"train-{i:05d}")
        scenes.append(s)
        images.append(render(s, wcfg, rng))
        texts.append((caption(s, wcfg, rng), questions(s, wcfg, rng)))
    pix = torch.cat([processor.image_processor(images[i:i + 500], return_tensors="pt")["pixel_values"]
                     for i in range(0, len(images), 500)])
    g = wcfg.grid * wcfg.grid
    cls = torch.zeros(len(scenes), g, dtype=torch.long)
    col = torch.full((len(scenes), g), -100, dtype=torch.long)
    size = torch.full((len(scenes), g), -100, dtype=torch.long)
    for i, s in enumerate(scenes):
        for o in s.visible():
            cls[i, o.cell] = CLASSES.index(o.cls) + 1
            col[i, o.cell] = list(COLOURS).index(o.colour)
            size[i, o.cell] = SIZES.index(o.size)
    return scenes, pix, (cls, col, size), texts, wcfg


def train_tower(model, pix, labels, cfg: TrainConfig, log=print):
    """Stage 1: the CLIP tower with linear per-patch heads, on the features LLaVA will read
    (last layer hidden states, CLS dropped: vision_feature_layer=-1, strategy 'default')."""
    import torch
    import torch.nn.functional as F
    tower = model.model.vision_tower
    d = tower.config.hidden_size
    head = torch.nn.Linear(d, len(CLASSES) + 1 + len(COLOURS) + len(SIZES))
    params = list(tower.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.tower_lr, weight_decay=0.01)
    cls, col, size = labels
    gen = torch.Generator().manual_seed(cfg.seed)
    tower.train()
    t0 = time.time()
    losses = []
    for step in range(cfg.tower_steps):
        for g in opt.param_groups:
            g["lr"] = cfg.tower_lr * _cosine(step, cfg.tower_steps, cfg.warmup // 2)
        idx = torch.randint(len(pix), (cfg.tower_batch,), generator=gen)
        feats = tower(pix[idx], output_hidden_states=True).hidden_states[-1][:, 1:]
        out = head(feats)
        k = len(CLASSES) + 1
        loss = (F.cross_entropy(out[..., :k].flatten(0, 1), cls[idx].flatten())
                + F.cross_entropy(out[..., k:k + len(COLOURS)].flatten(0, 1), col[idx].flatten(), ignore_index=-100)
                + F.cross_entropy(out[..., k + len(COLOURS):].flatten(0, 1), size[idx].flatten(), ignore_index=-100))
        losses.append(_update(opt, params, loss))
        if step % cfg.log_every == 0 or step == cfg.tower_steps - 1:
            acc = (out[..., :k].argmax(-1) == cls[idx]).float().mean().item()
            log(f"tower step {step:4d}  loss {loss.item():.3f}  cell acc {acc:.3f}  {time.time() - t0:.0f}s")
    tower.eval()
    return head, losses


def _check_look_heads(model, cfg: TrainConfig) -> None:
    tc = model.config.text_config
    for name in SLOT_FIELDS:
        layer, head = getattr(cfg, name)
        if not (0 <= layer < tc.num_hidden_layers and 0 <= head < tc.num_attention_heads):
            raise ValueError(f"TrainConfig.{name}={(layer, head)}: the LM has {tc.num_hidden_layers} layers x "
                             f"{tc.num_attention_heads} heads; pick one inside, or set attn_sup=0")


def _freeze_tower_scale_projector(model, cfg: TrainConfig):
    """Tower frozen; the projector's output layer shrunk to the words' scale. Returns the projector."""
    import torch
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)
    # The tower's last-layer features have a norm of ~60 while word embeddings start near 0.3; a
    # projector at default init makes image tokens ~100x louder than text, and in the first run
    # it grew to ~700 while the LM learned to ignore the image. Start them at the text's scale.
    with torch.no_grad():
        proj = model.model.multi_modal_projector
        proj.linear_2.weight.mul_(cfg.projector_scale)
        proj.linear_2.bias.zero_()
    return proj


def _keep_heads(model, cfg: TrainConfig) -> dict:
    """The training-only linear read-outs of ``keep_loss``, one per layer of ``cfg.keep_layers``."""
    import torch
    hidden, n_layers = model.config.text_config.hidden_size, model.config.text_config.num_hidden_layers
    if not all(0 <= layer < n_layers for layer in cfg.keep_layers):
        raise ValueError(f"TrainConfig.keep_layers={cfg.keep_layers}: the LM has layers 0..{n_layers - 1}; "
                         "pick those whose input must still name each cell, or set keep=0")
    return {layer: torch.nn.Linear(hidden, sum(KEEP_SIZES)) for layer in cfg.keep_layers}


def _lm_optimizer(model, proj, cfg: TrainConfig, use_keep: bool):
    """(optimizer, parameters to clip, keep heads): the projector in its own, slower group."""
    import torch
    params = [p for p in model.parameters() if p.requires_grad]
    # Image tokens only matter up to scale (the LM's RMSNorm divides it out), so Adam's fixed-size
    # steps make them grow like a random walk; at the LM's rate they reached norm ~800 (text ~1),
    # which shrinks the projector's effective learning rate until it stops learning to separate
    # classes. A slower projector keeps them near the text's scale.
    proj_params = list(proj.parameters())
    rest = [p for p in params if all(p is not q for q in proj_params)]
    keep_heads = _keep_heads(model, cfg) if use_keep else {}
    head_params = [p for h in keep_heads.values() for p in h.parameters()]
    params += head_params                           # clipped with the rest; dropped after training
    opt = torch.optim.AdamW([{"params": rest + head_params, "scale": 1.0},
                             {"params": proj_params, "scale": cfg.projector_lr}],
                            lr=cfg.lm_lr, weight_decay=0.01, betas=(0.9, 0.98))
    return opt, params, keep_heads


def _cell_words(tok, cells):
    """Per-cell labels -> the vocabulary ids of the words that name them (class, colour, size; -100 for none)."""
    import torch
    cls, col, size = cells
    cell_words = []
    for lab, words in ((cls - 1, CLASSES), (col, COLOURS), (size, SIZES)):   # class 0 = empty: none
        ids_ = torch.tensor(tok.convert_tokens_to_ids(list(words)))
        cell_words.append(torch.where(lab >= 0, ids_[lab.clamp(min=0)], torch.full_like(lab, -100)))
    return cell_words


@dataclass
class _Helpers:
    """What one step's helper losses need, fixed for the run (``cell_words`` None: alignment off)."""
    img_id: int
    n_img: int
    cell_words: list | None
    keep_heads: dict
    cells: tuple | None
    use_keep: bool


def _draw_batch(rng, caps, qas, cfg: TrainConfig) -> list:
    # Captions (~65 tokens) and questions (~28) go in separate batches so that short rows are
    # not padded to caption length; question batches are twice as large for the same cost.
    if rng.random() < cfg.caption_share:
        return [caps[int(j)] for j in rng.integers(len(caps), size=cfg.lm_batch)]
    return [qas[int(j)] for j in rng.integers(len(qas), size=2 * cfg.lm_batch)]


def _step_losses(model, batch, pix, pad: int, cfg: TrainConfig, h: _Helpers):
    """One forward pass: (caption/QA loss, look, align, keep losses); a helper that is off is 0."""
    ids, mask, labels, px, look = collate(batch, pix, pad)
    use_align = h.cell_words is not None
    out = model(input_ids=ids, attention_mask=mask, pixel_values=px, labels=labels,
                output_attentions=bool(cfg.attn_sup), output_hidden_states=use_align or h.use_keep)
    aux = look_loss(out.attentions, look, cfg) if cfg.attn_sup else out.loss * 0
    al = out.loss * 0
    rows, img = [b[0] for b in batch], ids == h.img_id
    if use_align:
        tokens_in = out.hidden_states[0][img].view(len(batch), h.n_img, -1)
        al = align_loss(model, tokens_in, [w[rows] for w in h.cell_words])
    kp = out.loss * 0
    if h.use_keep:
        kp = keep_loss(model, out.hidden_states, img, h.keep_heads, [c[rows] for c in h.cells])
    return out.loss, aux, al, kp


def train_lm(model, processor, pix, texts, cfg: TrainConfig, scenes=None, log=print, cells=None):
    """Stage 2: projector + language model from scratch, tower frozen. ``scenes`` feed the
    attention supervision, ``cells`` (per-cell class, colour, size labels from ``make_data``) the
    alignment loss; without them that part is off."""
    n_img = model.config.image_seq_length
    caps, qas = encode_examples(processor, texts, n_img, scenes if cfg.attn_sup else None)
    if cfg.attn_sup:
        _check_look_heads(model, cfg)
        model.set_attn_implementation("eager")          # attention weights are needed for the loss
    proj = _freeze_tower_scale_projector(model, cfg)
    use_keep = bool(cfg.keep) and cells is not None
    opt, params, keep_heads = _lm_optimizer(model, proj, cfg, use_keep)
    rng = np.random.default_rng(cfg.seed + 1)
    model.train()
    model.model.vision_tower.eval()
    t0 = time.time()
    tok = processor.tokenizer
    use_align = bool(cfg.align) and cells is not None
    h = _Helpers(tok.convert_tokens_to_ids("<image>"), n_img, _cell_words(tok, cells) if use_align else None,
                 keep_heads, cells, use_keep)
    losses = []
    for step in range(cfg.lm_steps):
        for g in opt.param_groups:
            g["lr"] = cfg.lm_lr * g["scale"] * _cosine(step, cfg.lm_steps, cfg.warmup)
        batch = _draw_batch(rng, caps, qas, cfg)
        loss, aux, al, kp = _step_losses(model, batch, pix, tok.pad_token_id, cfg, h)
        _update(opt, params, loss + cfg.attn_sup * aux + cfg.align * al + cfg.keep * kp)
        losses.append(loss.item())                  # the caption/QA loss alone; the helpers are logged beside it
        if step % cfg.log_every == 0 or step == cfg.lm_steps - 1:
            norm = proj.linear_2.weight.norm().item()
            log(f"lm step {step:5d}  loss {losses[-1]:.3f}  look {aux.item():.3f}  align {al.item():.3f}  keep {kp.item():.3f}  "
                f"|W_proj| {norm:.1f}  {time.time() - t0:.0f}s")
    model.eval()
    if cfg.attn_sup:
        model.set_attn_implementation("sdpa")
    return losses


def train(out: str | Path, cfg: TrainConfig = TrainConfig(), spec: VlmSpec = VlmSpec(),
          log=functools.partial(print, flush=True)) -> Path:
    import torch
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    model, processor = build(spec, seed=cfg.seed)
    scenes, pix, labels, texts, wcfg = make_data(cfg, WorldConfig(image_size=spec.image_size), processor)
    log(f"data: {len(scenes)} scenes in {time.time() - t0:.0f}s")
    _, tower_losses = train_tower(model, pix, labels, cfg, log)
    lm_losses = train_lm(model, processor, pix, texts, cfg, scenes, log, cells=labels)
    final = sum(lm_losses[-50:]) / len(lm_losses[-50:])
    meta = {"train_config": asdict(cfg), "vlm_spec": asdict(spec), "world_config": asdict(wcfg),
            "final_lm_loss": round(final, 4), "final_tower_loss": round(tower_losses[-1], 4), "train_seconds": round(time.time() - t0, 1),
            "params": sum(p.numel() for p in model.parameters())}
    save(model, processor, out, extra=meta)
    log(f"saved {out} ({meta['params'] / 1e6:.2f} M parameters, {meta['train_seconds']:.0f}s)")
    return Path(out)
