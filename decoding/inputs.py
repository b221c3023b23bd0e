"""Prompts and model inputs: templates, processor calls, and joining two branches into one 2B batch.

    text = render(processor, "Describe the image.", "llava_v1")   # or "chat" (the processor's template)
    clean = encode(processor, images, texts)                        # left-padded BatchFeature, B rows
    both = stack_rows(clean, negative, processor)                   # 2B rows: clean first, then negative

Templates: ``chat`` renders the processor's chat template (``plain``, the bare prompt, when it has
none, as InstructBLIP checkpoints); ``llava_v1`` is the conversation template behind the published
LLaVA-1.5 CHAIR/POPE numbers. Every record names the one used.
"""
from __future__ import annotations

import torch

TEMPLATES = ("chat", "llava_v1", "plain")
LLAVA_V1 = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
            "detailed, and polite answers to the human's questions. USER: {image}{prompt} ASSISTANT:")

# Keys that run along the text (left-padded with the tokenizer's pad / zeros) ...
SEQ_KEYS = {"input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids"}
# ... and the Q-Former's own text (padded on the right).
QFORMER_KEYS = {"qformer_input_ids", "qformer_attention_mask"}


def adds_image_tokens_itself(processor) -> bool:
    """BLIP-family processors prepend their query tokens to every prompt; the text carries no placeholder."""
    return "Blip" in type(processor).__name__


def template_name(processor, template: str) -> str:
    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; valid: {', '.join(TEMPLATES)}")
    if template == "chat" and not getattr(processor, "chat_template", None):
        return "plain"
    return template


def render(processor, prompt: str, template: str = "chat", image: bool = True) -> str:
    """The full prompt text for one user turn, with the image placeholder unless ``image=False``."""
    template = template_name(processor, template)
    if template == "plain":
        return prompt
    if template == "llava_v1":
        tag = processor.image_token + "\n" if image and not adds_image_tokens_itself(processor) else ""
        return LLAVA_V1.format(image=tag, prompt=prompt)
    content = ([{"type": "image"}] if image else []) + [{"type": "text", "text": prompt}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


def encode(processor, images: list | None, texts: list[str]):
    """Processor call for a batch, left-padded (decoder-only generation needs the prompt ends aligned)."""
    processor.tokenizer.padding_side = "left"
    kw = {"images": list(images)} if images else {}
    out = processor(text=list(texts), return_tensors="pt", padding=True, **kw)
    if "qformer_input_ids" in out:
        # The Q-Former (BERT, absolute positions) gets the main tokenizer's left padding from the processor;
        # right-aligned, a prompt's image features do not depend on its batch-mates.
        out["qformer_input_ids"], out["qformer_attention_mask"] = _right_align(
            out["qformer_input_ids"], out["qformer_attention_mask"], processor.qformer_tokenizer.pad_token_id)
    return out


def _right_align(ids: torch.Tensor, mask: torch.Tensor, pad: int):
    order = torch.argsort(1 - mask, dim=-1, stable=True)      # real tokens first, in order
    ids, mask = ids.gather(-1, order), mask.gather(-1, order)
    return ids.masked_fill(mask == 0, pad), mask


def rows_per_image(inputs) -> list[int]:
    """How many dim-0 rows of ``pixel_values`` each image owns (Qwen2-VL flattens patches: t·h·w rows)."""
    if "image_grid_thw" in inputs:
        return inputs["image_grid_thw"].prod(-1).tolist()
    return [1] * inputs["pixel_values"].shape[0]


def _pad_to(x: torch.Tensor, length: int, value: int, left: bool) -> torch.Tensor:
    pad = x.new_full((*x.shape[:-1], length - x.shape[-1]), value)
    return torch.cat([pad, x] if left else [x, pad], dim=-1)


def stack_rows(a, b, processor, images_per_row: bool = False) -> dict:
    """Rows of ``a`` then rows of ``b`` as one batch, each text re-padded to the common length.

    Image tensors are concatenated along dim 0, so the model meets the images in placeholder order
    (a's, then b's). When ``b`` has no image (a no-image negative) its rows simply carry no placeholder
    — possible only where pixel tensors are per image, not per row (``images_per_row=False``).
    """
    out = {}
    for k in dict.fromkeys([*a.keys(), *b.keys()]):
        x, y = a.get(k), b.get(k)
        if k in SEQ_KEYS or k in QFORMER_KEYS:
            if x is None or y is None:
                raise ValueError(f"cannot stack branches: {k} is missing from one of them")
            left = k in SEQ_KEYS            # Q-Former text stays right-aligned (see encode)
            value = processor.tokenizer.pad_token_id if k == "input_ids" else (
                processor.qformer_tokenizer.pad_token_id if k == "qformer_input_ids" else 0)
            n = max(x.shape[-1], y.shape[-1])
            out[k] = torch.cat([_pad_to(x, n, value, left), _pad_to(y, n, value, left)])
        elif x is not None and y is not None:
            out[k] = torch.cat([x, y])
        elif images_per_row:
            raise ValueError(f"cannot stack branches: only one has {k}, and this model wants it per row")
        else:
            out[k] = x if x is not None else y
    return out
