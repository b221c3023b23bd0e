"""The contrastive decoding loop: two branches (clean and negative), each with its own KV cache.

    tokens = contrast_loop(model, processor, clean, negative, alpha=ConstantAlpha(1.0), mask=PlausibilityMask(0.1),
                           contrast=Contrast(), processors=logits_processors(), select=Sampler(), generators=gens,
                           max_new_tokens=64, eos_ids=[2], pad_id=0, batched=True)

A :class:`Branch` is one decoding stream: its inputs, its attention mask and positions, and a
``DynamicCache`` that it creates itself and never shares — the upstream VCD bug (the noisy branch
reusing the clean branch's cache after the first token, which silently turns VCD off) cannot be
written with it. ``batched=True`` stacks clean rows and negative rows into ONE branch of 2B rows
(one forward per token; each row its own cache rows); ``batched=False`` runs two branches, two
forwards per token (the reference's way). Model specifics (Qwen2-VL's 3-D rotary positions, when
pixels are consumed) come from the model's own generation hooks, as ``generate`` uses them.
"""
from __future__ import annotations

import inspect

import torch

from decoding.inputs import stack_rows

# Families whose pixel tensors go per text row (not per image): a row without an image cannot join
# a batch of rows with one, so a no-image negative runs as a second branch there.
PER_ROW_PIXELS = {"instructblip", "instructblipvideo", "blip-2", "idefics2", "idefics3", "smolvlm"}


class PromptTooLong(ValueError):
    def __init__(self, row: int, n_tokens: int, limit: int):
        self.row, self.n_tokens, self.limit = row, n_tokens, limit
        super().__init__(f"prompt of {n_tokens} tokens (image tokens included) does not fit the model's context "
                         f"of {limit} positions with room for an answer; shorten the prompt or use a smaller image")


def placeholder_ids(model) -> list[int]:
    """Image/video placeholder ids: never a valid answer token (a generated one would be read as an
    image slot when the sequence is re-encoded), so every method suppresses them, baselines included."""
    cfg = model.config
    ids = {getattr(cfg, k, None) for k in ("image_token_id", "image_token_index", "video_token_id", "video_token_index")}
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def context_length(model) -> int | None:
    cfg = model.config.get_text_config(decoder=True)
    return getattr(cfg, "max_position_embeddings", None)


def needs_pixels_every_step(model) -> bool:
    """BLIP-family forwards re-encode the image on every call (``pixel_values`` has no default):
    such models get their image features computed once and passed pre-encoded."""
    p = inspect.signature(model.forward).parameters.get("pixel_values")
    return p is not None and p.default is inspect.Parameter.empty


def text_only_net(model):
    """The module that decodes a row without an image: the VLM itself, or for models that cannot
    run without pixels, their language model."""
    return model.language_model if needs_pixels_every_step(model) else model


# Every keyword under which transformers has passed a KV cache between generation steps.
CACHE_KEYWORDS = ("past_key_values", "cache", "past_key_value", "cache_params", "layer_past", "mems", "past")


def cache_keyword(net) -> str:
    """The keyword this transformers version's model takes its KV cache by: ``past_key_values`` up to
    5.23, ``cache`` from 5.24 (where ``past_key_values`` is still accepted, and silently ignored once
    ``cache`` is also set). Read from the signatures, so a later rename is seen, not guessed."""
    for fn in (net.forward, net.prepare_inputs_for_generation):
        params = inspect.signature(fn).parameters
        for k in ("cache", "past_key_values"):
            if k in params:
                return k
    raise RuntimeError(f"{type(net).__name__}: neither forward nor prepare_inputs_for_generation takes a "
                       f"cache keyword ({', '.join(CACHE_KEYWORDS)}); this transformers version is not supported")


def cache_inputs(inputs: dict) -> list[str]:
    """The keys of ``inputs`` that carry a KV cache: a known cache keyword with a value, or any value
    that is a transformers ``Cache`` (whatever ``generate`` or a future version calls it)."""
    from transformers import Cache
    return [k for k, v in inputs.items()
            if v is not None and (k in CACHE_KEYWORDS or isinstance(v, Cache))]


class Branch:
    """One decoding stream over a batch of rows, with its own KV cache.

    ``logits()`` runs the model on what the cache has not seen yet (the whole prompt first, then one
    token) and returns next-token logits; ``append(tokens)`` extends every row by one token.
    ``use_cache=False`` recomputes the whole sequence every step: the reference the cached path is
    tested against.
    """

    def __init__(self, net, inputs: dict, use_cache: bool = True):
        from transformers import DynamicCache
        if net.config.is_encoder_decoder:
            raise ValueError(f"{type(net).__name__}: encoder-decoder language models are not supported by the "
                             "contrastive loop (use greedy, sample or beam)")
        given = cache_inputs(inputs)
        if given:
            raise ValueError(f"a Branch makes its own KV cache; do not pass {', '.join(given)} (sharing one "
                             "branch's cache with another is the upstream VCD bug that silently turns the contrast off)")
        self.net, self.use_cache, self.first = net, use_cache, True
        self.cache_key = cache_keyword(net)
        kw = dict(inputs)
        self.input_ids = kw.pop("input_ids")
        self.encoded = None
        if needs_pixels_every_step(net):
            sig = inspect.signature(net.get_image_features).parameters
            enc_args = {k: kw.pop(k) for k in list(kw) if k in sig and k != "kwargs"}
            with torch.inference_mode():
                self.encoded = {"image": net.get_image_features(**enc_args, return_dict=True)}
        kw["use_cache"] = use_cache
        if use_cache:
            kw[self.cache_key] = DynamicCache(config=net.config)   # this branch's own, never shared
        # Positions from the attention mask, so that left padding does not shift them (Qwen2-VL: 3-D M-RoPE).
        kw["position_ids"] = net._prepare_position_ids_for_generation(self.input_ids, {**kw, "input_ids": self.input_ids})
        if net._supports_logits_to_keep():
            kw["logits_to_keep"] = 1
        self.kw = kw

    @property
    def cache(self):
        return self.kw.get(self.cache_key)

    @torch.inference_mode()
    def logits(self) -> torch.Tensor:
        step = 1 if (self.use_cache and not self.first) else None
        mi = self.net.prepare_inputs_for_generation(self.input_ids, next_sequence_length=step,
                                                    is_first_iteration=self.first, **self.kw)
        if self.encoded is not None:   # BLIP: features every call (placeholders only in the prompt)
            mi.update(pixel_values=None, qformer_input_ids=None, mm_encoder_outputs=self.encoded)
            mi.pop("qformer_attention_mask", None)
        out = self.net(**mi, return_dict=True)
        self.kw = self.net._update_model_kwargs_for_generation(out, self.kw, is_encoder_decoder=False)
        stray = [k for k in cache_inputs(self.kw) if k != self.cache_key]
        if stray:       # transformers moved the cache to another keyword: the one we pass would be ignored
            raise RuntimeError(f"{type(self.net).__name__}: the KV cache came back under {', '.join(stray)}, not "
                               f"{self.cache_key!r}; decoding/core.py's cache_keyword needs updating for "
                               "this transformers version")
        self.first = False
        return out.logits[:, -1].float()

    def append(self, tokens: torch.Tensor) -> None:
        self.input_ids = torch.cat([self.input_ids, tokens[:, None].to(self.input_ids.device)], dim=-1)


def prompt_lengths(inputs) -> torch.Tensor:
    m = inputs.get("attention_mask")
    return m.sum(-1) if m is not None else torch.full((inputs["input_ids"].shape[0],), inputs["input_ids"].shape[1])


def contrast_loop(model, processor, clean, negative, *, alpha, mask, contrast, processors, select, generators,
                  max_new_tokens: int, eos_ids: list[int], pad_id: int, batched: bool = True,
                  use_cache: bool = True, negative_net=None, suppress: list[int] = (),
                  trace: list | None = None) -> torch.Tensor:
    """Decode B rows; returns (B, T) new tokens, ``pad_id`` after a row's EOS.

    ``negative=None`` decodes the clean branch alone (plain sampling/argmax through the same
    processors). ``trace``, when a list, receives (step, clean_logits, negative_logits) per step.
    """
    B = clean["input_ids"].shape[0]
    device = clean["input_ids"].device
    limit = context_length(model)
    budget = torch.full((B,), max_new_tokens, device=device)
    if limit is not None:   # per row: the prompt (its real tokens) plus the answer must fit the context
        lens = prompt_lengths(clean).to(device)
        if negative is not None:
            lens = torch.maximum(lens, prompt_lengths(negative).to(device))
        for r in range(B):
            if lens[r] >= limit:
                raise PromptTooLong(r, int(lens[r]), limit)
        budget = torch.minimum(budget, limit - lens)
    if negative is None:
        branches = [Branch(model, clean, use_cache)]
    elif batched:
        per_row = model.config.model_type in PER_ROW_PIXELS
        branches = [Branch(model, stack_rows(clean, negative, processor, images_per_row=per_row), use_cache)]
    else:
        branches = [Branch(model, clean, use_cache), Branch(negative_net or model, negative, use_cache)]
    history = clean["input_ids"].to(device)       # what repetition penalty looks at
    done = torch.zeros(B, dtype=torch.bool, device=device)
    out = []
    eos = torch.tensor(eos_ids, dtype=torch.long, device=device)
    suppress = torch.tensor(list(suppress), dtype=torch.long, device=device)
    for t in range(max_new_tokens):
        if negative is None:
            lc, ln = branches[0].logits(), None
        elif batched:
            both = branches[0].logits()
            lc, ln = both[:B], both[B:]
        else:
            lc, ln = branches[0].logits(), branches[1].logits()
        if trace is not None:
            trace.append((t, lc.clone(), None if ln is None else ln.clone()))
        if suppress.numel():       # out of the clean logits, so the plausibility mask never keeps them
            lc = lc.index_fill(-1, suppress, float("-inf"))
        keep = mask(lc) if mask is not None else torch.ones_like(lc, dtype=torch.bool)
        scores = lc.masked_fill(~keep, float("-inf")) if ln is None else contrast(lc, ln, keep, alpha(t))
        scores = processors(history, scores)
        tok = select(scores, generators).to(device)
        tok = torch.where(done, torch.full_like(tok, pad_id), tok)
        out.append(tok)
        history = torch.cat([history, tok[:, None]], dim=-1)
        done = done | torch.isin(tok, eos) | (t + 1 >= budget)
        if bool(done.all()):
            break
        for b in branches:
            b.append(torch.cat([tok, tok]) if (batched and negative is not None) else tok)
    return torch.stack(out, dim=1) if out else torch.empty(B, 0, dtype=torch.long, device=device)

