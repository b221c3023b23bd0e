"""Stage 2 of the builtin VLM's recipe (halluc/world/train.py): the three helper losses beside the
caption/QA loss.

    look_loss(out.attentions, look, cfg)                  # attention mass on the target cells
    align_loss(model, image_tokens, cell_words)           # image tokens near the words naming their cell
    keep_loss(model, out.hidden_states, img_mask, heads, cells)   # each cell still readable at later layers

Why each exists is in its docstring; train.py's ``train_lm`` weighs them with ``TrainConfig.attn_sup``,
``align`` and ``keep``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from halluc.world.scene import CLASSES, COLOURS, SIZES
from halluc.world.train_examples import SLOT_FIELDS

if TYPE_CHECKING:
    from halluc.world.train import TrainConfig


def look_loss(attentions, look, cfg: TrainConfig):
    """-log of the attention mass that the supervised head puts on the target cells, averaged
    over targets. Why: captioning loss alone teaches a 3-layer LM to read the image slowly (it
    must learn, from the next-token loss only, to point at the right cell before it can name
    it); telling one head where to look makes naming a one-hop read-out."""
    import torch
    rows, pos, keys, grp, slot = look
    if len(grp) == 0:
        return attentions[0].sum() * 0
    a = torch.zeros(len(grp), dtype=attentions[0].dtype)
    for s, name in enumerate(SLOT_FIELDS):
        layer, head = getattr(cfg, name)
        sel = slot == s
        a = a.index_put((sel.nonzero()[:, 0],), attentions[layer][rows[sel], head, pos[sel], keys[sel]])
    mass = torch.zeros(int(grp.max()) + 1, dtype=a.dtype).index_add_(0, grp, a)
    return -torch.log(mass + 1e-6).mean()


def align_loss(model, image_tokens, targets, temperature: float = 0.1):
    """Cross-entropy of each occupied cell's image token against the words that name it (its
    class, colour and size: ``targets``, vocabulary ids per cell, -100 for none), scored by cosine
    similarity with the LM's input embeddings.

    Why: matching a word to the cells that hold it is the hop the LM learned slowest (attention
    mass 0.4-0.5 after 800 steps); with image tokens near the embeddings of their words, a head
    matches them with a near-identity query-key map (LLaVA's first stage aligns its projector for
    the same reason). Cosine, not dot product: the scale of image tokens is left alone (see
    ``train_lm``)."""
    import torch.nn.functional as F
    emb = F.normalize(model.get_input_embeddings().weight, dim=-1)
    logits = (F.normalize(image_tokens, dim=-1) @ emb.T / temperature).flatten(0, 1)   # (B*cells, vocab)
    return sum(F.cross_entropy(logits, t.flatten(), ignore_index=-100) for t in targets)


KEEP_SIZES = (len(CLASSES) + 1, len(COLOURS), len(SIZES))   # class-or-empty, colour, size


def keep_loss(model, hidden_states, img_mask, heads, targets):
    """Cross-entropy of linear read-outs of each cell's class, colour and size from the input of
    each layer in ``heads`` (after that layer's RMSNorm: exactly what its attention reads),
    at the image positions. ``targets``: per-cell class (0 = empty), colour and size ids.

    Why: the LM writes a huge vector into the image positions in layer 0 (norm ~1.6 -> ~650, an
    attention-sink pattern); it keeps class and size readable but buries colour (a linear probe
    finds it in 100 % of cells at the LM input, 29 % at the input of layer 2, where the caption
    reads the next object), so captions named the right shapes in the wrong colours. The heads
    are training-only; the loss asks the layers before the read-out not to overwrite the cell."""
    import torch.nn.functional as F
    lm = model.model.language_model
    total = 0
    for layer, head in heads.items():
        logits = head(lm.layers[layer].input_layernorm(hidden_states[layer][img_mask]))
        for part, t in zip(logits.split(KEEP_SIZES, dim=-1), targets):
            total = total + F.cross_entropy(part, t.flatten(), ignore_index=-100)
    return total
