"""The builtin tiny VLM: a real transformers ``LlavaForConditionalGeneration`` (small CLIP vision
tower, LLaVA's MLP projector, small Llama) with a word-level tokenizer and a ``LlavaProcessor``,
so that every code path that runs a llava-hf checkpoint runs it unchanged.

    model, processor = build(VlmSpec())                 # random weights, from configs
    save(model, processor, "ckpt/")                     # safetensors + configs + tokenizer
    model = AutoModelForImageTextToText.from_pretrained("ckpt/")
    processor = AutoProcessor.from_pretrained("ckpt/")
    prompt = processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "describe the image ."}]}], add_generation_prompt=True)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from halluc.world.language import NUMBERS, PLURAL, RELATIONS
from halluc.world.scene import CLASSES, COLOURS, SIZES

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
# llava_v1's shape ("USER: <image>\n... ASSISTANT:"), lower-cased and shortened for a word-level vocabulary.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}user :"
    "{% if m['content'] is string %} {{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %} <image>{% elif c['type'] == 'text' %} {{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %} assistant :"
    "{% elif m['role'] == 'assistant' %}{% if m['content'] is string %} {{ m['content'] }}{% else %}"
    "{% for c in m['content'] %} {{ c['text'] }}{% endfor %}{% endif %} </s>{% endif %}{% endfor %}"
)


def format_prompt(question: str) -> str:
    """The same string the chat template renders for one user turn with an image."""
    return f"user : <image> {question} assistant :"


def vocabulary() -> list[str]:
    words = ["user", "assistant", ":", ".", ",", "?", "the", "a", "an", "and", "is", "are", "there", "in",
             "image", "describe", "what", "color", "how", "many", "yes", "no", "of", "not", "i", "see"]
    words += list(CLASSES) + list(PLURAL.values()) + list(COLOURS) + list(SIZES) + list(NUMBERS)
    words += [w for r in RELATIONS for w in r.split()]
    seen, out = set(SPECIALS), list(SPECIALS)
    for w in words:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


@dataclass(frozen=True)
class VlmSpec:
    image_size: int = 64
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    text_hidden: int = 256
    text_layers: int = 3
    text_heads: int = 4
    max_positions: int = 160


def build_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()      # words and punctuation become tokens
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<s>", eos_token="</s>", padding_side="left",
                                   extra_special_tokens={"image_token": "<image>"})
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return fast


def build_processor(spec: VlmSpec = VlmSpec()):
    from transformers import LlavaProcessor
    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor   # no torchvision needed
    except ImportError:                                                      # older transformers
        from transformers import CLIPImageProcessor as ImageProcessor
    ip = ImageProcessor(size={"height": spec.image_size, "width": spec.image_size}, do_center_crop=False,
                        crop_size={"height": spec.image_size, "width": spec.image_size})
    return LlavaProcessor(image_processor=ip, tokenizer=build_tokenizer(), patch_size=spec.patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1,
                          chat_template=CHAT_TEMPLATE, image_token="<image>")


def build(spec: VlmSpec = VlmSpec(), seed: int = 0):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    processor = build_processor(spec)
    tok = processor.tokenizer
    vision = CLIPVisionConfig(image_size=spec.image_size, patch_size=spec.patch_size, hidden_size=spec.vision_hidden,
                              intermediate_size=4 * spec.vision_hidden, num_hidden_layers=spec.vision_layers,
                              num_attention_heads=spec.vision_heads, projection_dim=spec.vision_hidden)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=spec.text_hidden, intermediate_size=int(8 / 3 * spec.text_hidden),
                       num_hidden_layers=spec.text_layers, num_attention_heads=spec.text_heads,
                       num_key_value_heads=spec.text_heads, max_position_embeddings=spec.max_positions,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       tie_word_embeddings=True)
    n_img = (spec.image_size // spec.patch_size) ** 2
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
                      vision_feature_select_strategy="default", vision_feature_layer=-1, image_seq_length=n_img,
                      projector_hidden_act="gelu", tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    return model, processor


def save(model, processor, out: str | Path, extra: dict | None = None) -> Path:
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    if extra:
        import json
        (out / "halluc_builtin.json").write_text(json.dumps(extra, indent=2) + "\n")
    return out
