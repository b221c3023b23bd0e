"""Stage 2 of the builtin VLM's recipe (halluc/world/train.py): its examples, as token ids with the
attention targets the look loss supervises.

    caps, qas = encode_examples(processor, texts, n_img, scenes)    # (scene index, prompt, answer, looks)
    ids, mask, labels, px, look = collate(batch, pix, pad_id)       # one padded batch
    look_targets(scene, "a red star and a moon .")                  # [(slot, answer token, keys)]

Slots: WORD (layer 0) fetches the latest shape word, NAMED (layer 1) the cells of the object it
names, NEXT (layer 2) the cells of the object named next; ``TrainConfig.look_*`` picks each
slot's (layer, head) in the order of ``SLOT_FIELDS``.
"""
from __future__ import annotations

from halluc.world.language import SINGULAR, parse_caption, tokens
from halluc.world.scene import COLOURS, SIZES
from halluc.world.vlm import format_prompt


def _cells(scene, cls: str, size=None, colour=None) -> list[int]:
    return [o.cell for o in scene.visible()
            if o.cls == cls and size in (None, o.size) and colour in (None, o.colour)]


# Attention-supervision slots: which (layer, head) of TrainConfig each one trains.
NEXT, WORD, NAMED = 0, 1, 2
SLOT_FIELDS = ("look_next", "look_word", "look_named")
ADJECTIVES = frozenset(SIZES) | frozenset(COLOURS)


def look_targets(scene, answer: str, question: str | None = None) -> list[tuple[int, int, list[int]]]:
    """Where the model should look while writing ``answer``: (slot, answer token index k, keys).

    The position that predicts answer token k (the one holding token k-1) is told, one hop per layer:
    WORD (layer 0): the latest shape word written so far, with its size and colour words (keys are
    answer token indices; for a question, the asked shape word in the prompt, added by
    ``encode_examples``); NAMED (layer 1): the cells of the object that word names (for a question,
    of the shape asked about); NEXT (layer 2, captions only): the cells of the object token k
    belongs to. So naming the next object in reading order becomes "the first occupied cell after
    the one just named", one hop from what layer 1 found. Why not fewer layers: the previous
    recipe asked layer 0 for the object just named, which a layer that sees only token identities
    cannot know at a separator; captions then repeated the last object or skipped one.
    Hidden partners have no cells and get no cell targets, so the model still learns to name them
    from language alone (the planted prior).
    """
    if question is not None:
        shape = [SINGULAR[t] for t in tokens(question) if t in SINGULAR]
        cells = _cells(scene, shape[0]) if shape else []
        return [(NAMED, 0, cells)] if cells else []
    toks = tokens(answer)
    mentions = {m.end - 1: m for m in parse_caption(answer).mentions}     # keyed by the noun's index
    nouns = [i for i, t in enumerate(toks) if t in SINGULAR]
    out = []
    for j, i in enumerate(nouns):
        m = mentions.get(i)
        if m is not None:                                   # "a small blue moon"
            cells = _cells(scene, m.cls, m.size, m.colour)
            named, words = range(m.start, m.end), [w for w in range(m.start, i) if toks[w] in ADJECTIVES] + [i]
        elif toks[i - 1] == "the":                          # a relation's "the star": the one single star
            cells = _cells(scene, SINGULAR[toks[i]])
            cells, named, words = (cells if len(cells) == 1 else []), [i], [i]
        else:
            cells, named, words = [], [], [i]
        out += [(NEXT, k, cells) for k in named] if cells else []
        stop = nouns[j + 1] if j + 1 < len(nouns) else len(toks)
        for k in range(i + 1, stop + 1):                    # positions i .. stop-1 predict k
            out.append((WORD, k, words))
            out += [(NAMED, k, cells)] if cells else []
    return out


def encode_examples(processor, texts, n_img: int, scenes=None):
    """Token ids and label masks for every (scene, prompt, answer) example, built exactly as the
    processor builds prompts (one <image> expanded to n_img tokens), answer + </s> supervised."""
    tok = processor.tokenizer
    img_id = tok.convert_tokens_to_ids("<image>")
    cache: dict[str, list[int]] = {}

    def ids(text):
        if text not in cache:
            cache[text] = tok(text, add_special_tokens=False)["input_ids"]
        return cache[text]

    def prompt_ids(q):
        out = []
        for t in ids(format_prompt(q)):
            out += [img_id] * n_img if t == img_id else [t]
        return out
    shape_ids = set(tok.convert_tokens_to_ids(list(SINGULAR)))

    def looks(i, prompt, answer, question=None):
        """(slot, answer token index, absolute key positions), see ``look_targets``: cells are
        image token positions, WORD keys answer tokens (or, for a question, its shape word)."""
        if not scenes:
            return []
        first = prompt.index(img_id)
        out = [(sl, k, [(len(prompt) if sl == WORD else first) + c for c in keys])
               for sl, k, keys in look_targets(scenes[i], answer, question)]
        if question is not None:
            words = [j for j, t in enumerate(prompt) if t in shape_ids]
            out += [(WORD, 0, words[-1:])] if words else []
        return out
    caps, qas = [], []
    for i, (cap, qa) in enumerate(texts):
        p = prompt_ids("describe the image .")
        caps.append((i, p, ids(cap) + [tok.eos_token_id], looks(i, p, cap)))
        for q, a in qa:
            p = prompt_ids(q)
            qas.append((i, p, ids(a) + [tok.eos_token_id], looks(i, p, a, q)))
    return caps, qas


def collate(batch, pix, pad_id: int):
    """Right-padded ids, mask and labels; ``look`` holds index tensors (rows, query positions,
    key positions, target group, slot): the query is the position one before an answer token
    (the one that predicts it), the keys what it should attend to (see ``encode_examples``)."""
    import torch
    L = max(len(p) + len(a) for _, p, a, _ in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), L), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), L), dtype=torch.long)
    rows, pos, keys, grp, slot = [], [], [], [], []      # grp: which target each key belongs to
    for r, (_, p, a, look) in enumerate(batch):
        seq = p + a
        ids[r, :len(seq)] = torch.tensor(seq)
        labels[r, len(p):len(seq)] = torch.tensor(a)
        mask[r, :len(seq)] = 1
        for sl, k, targets in look:
            g = grp[-1] + 1 if grp else 0
            for key in targets:
                rows.append(r), pos.append(len(p) + k - 1), keys.append(key), grp.append(g), slot.append(sl)
    look = tuple(torch.tensor(x, dtype=torch.long) for x in (rows, pos, keys, grp, slot))
    return ids, mask, labels, pix[[b[0] for b in batch]], look
