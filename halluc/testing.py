"""Tiny random VLMs of the real families, built from configs (nothing downloaded), for tests and
benchmarks: every code path that runs a llava-hf / Qwen2-VL / InstructBLIP checkpoint runs these.

    model, processor = build("qwen2_vl")           # a few M parameters, random weights
    model, processor = build("llava", size="100m") # ~100 M parameters, for decode_speed.py

Families: llava, llava_next, qwen2_vl, instructblip. Tokenizers are small word-level
``PreTrainedTokenizerFast`` objects (as halluc/world/vlm.py builds the builtin one), with each
family's special tokens and a llava_v1-shaped chat template.
"""
from __future__ import annotations

FAMILIES = ("llava", "llava_next", "qwen2_vl", "instructblip")

WORDS = ("a an the is are there in on of and with image picture describe what this photo please detail "
         "cat dog person car tree sky red blue green large small left right above below next to "
         "you confused object detector . , ? : yes no user assistant").split()

TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}user :"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %} IMAGE{% elif c['type'] == 'text' %} {{ c['text'] }}"
    "{% endif %}{% endfor %} assistant :{% endif %}{% endfor %}")

# (image token(s) the template emits, special tokens the tokenizer needs)
SPECIALS = {
    "llava": ("<image>", ["<image>"]),
    "llava_next": ("<image>", ["<image>"]),
    "qwen2_vl": ("<|vision_start|><|image_pad|><|vision_end|>",
                 ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]),
    "instructblip": ("", ["<image>"]),      # InstructBLIP's processor prepends its query tokens itself
}

SIZES = {  # text hidden, layers, heads, intermediate; vision hidden, layers
    "tiny": dict(h=64, layers=2, heads=4, inter=128, vh=32, vlayers=1),
    "100m": dict(h=768, layers=12, heads=12, inter=2560, vh=128, vlayers=2),
}


def tokenizer(specials: list[str], extra_words: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {}
    for w in ["<pad>", "<unk>", "<s>", "</s>", *specials, *WORDS, *extra_words]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", padding_side="left")
    fast.add_special_tokens({"additional_special_tokens": specials})
    return fast


def _llama(tok, s, **kw):
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=len(tok), hidden_size=s["h"], intermediate_size=s["inter"],
                       num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["heads"],
                       max_position_embeddings=512, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id, **kw)


def _clip(s, image_size, patch):
    from transformers import CLIPVisionConfig
    return CLIPVisionConfig(image_size=image_size, patch_size=patch, hidden_size=s["vh"], intermediate_size=2 * s["vh"],
                            num_hidden_layers=s["vlayers"], num_attention_heads=2, projection_dim=s["vh"])


def _clip_processor_class():
    try:
        from transformers import CLIPImageProcessorPil as ClipIP
    except ImportError:
        from transformers import CLIPImageProcessor as ClipIP
    return ClipIP


def _llava(tok, s, template, specials):
    import transformers as tf
    img, patch = 32, 8
    ip = _clip_processor_class()(size={"height": img, "width": img}, do_center_crop=False,
                                 crop_size={"height": img, "width": img})
    proc = tf.LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=patch, vision_feature_select_strategy="default",
                             num_additional_image_tokens=1, chat_template=template, image_token="<image>")
    cfg = tf.LlavaConfig(vision_config=_clip(s, img, patch), text_config=_llama(tok, s),
                         image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
                         vision_feature_select_strategy="default", image_seq_length=(img // patch) ** 2)
    return proc, tf.LlavaForConditionalGeneration(cfg)


def _llava_next(tok, s, template, specials):
    import transformers as tf
    img, patch = 16, 8
    ip = tf.LlavaNextImageProcessorPil(size={"shortest_edge": img}, crop_size={"height": img, "width": img},
                                       image_grid_pinpoints=[[img, 2 * img], [2 * img, img], [2 * img, 2 * img]])
    proc = tf.LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=patch,
                                 vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                 chat_template=template, image_token="<image>")
    cfg = tf.LlavaNextConfig(vision_config=_clip(s, img, patch), text_config=_llama(tok, s),
                             image_token_index=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1,
                             vision_feature_select_strategy="default",
                             image_grid_pinpoints=[[img, 2 * img], [2 * img, img], [2 * img, 2 * img]],
                             image_seq_length=(img // patch) ** 2)
    return proc, tf.LlavaNextForConditionalGeneration(cfg)


def _qwen2_vl(tok, s, template, specials):
    import transformers as tf
    patch, merge = 4, 2
    ip = tf.Qwen2VLImageProcessorPil(size={"shortest_edge": 16 * 16, "longest_edge": 16 * 16},
                                     patch_size=patch, merge_size=merge, temporal_patch_size=2)
    vp = tf.Qwen2VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2)  # required, unused
    proc = tf.Qwen2VLProcessor(image_processor=ip, tokenizer=tok, video_processor=vp, chat_template=template)
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials}
    text = dict(vocab_size=len(tok), hidden_size=s["h"], intermediate_size=s["inter"],
                num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["heads"],
                max_position_embeddings=512, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                              "mrope_section": [2, 3, 3]},
                pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    vision = dict(depth=s["vlayers"], embed_dim=s["vh"], hidden_size=s["h"], num_heads=2, patch_size=patch,
                  spatial_merge_size=merge, temporal_patch_size=2)
    cfg = tf.Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                           video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                           vision_end_token_id=ids["<|vision_end|>"])
    return proc, tf.Qwen2VLForConditionalGeneration(cfg)


def _instructblip(tok, s, template, specials):
    import torch
    import transformers as tf
    img, patch, nq = 32, 8, 4
    try:
        from transformers import BlipImageProcessorPil as BlipIP
    except ImportError:
        from transformers import BlipImageProcessor as BlipIP
    ip = BlipIP(size={"height": img, "width": img})
    qtok = tokenizer([])
    qtok.padding_side = "right"            # BERT-style Q-Former text: absolute positions, pad right
    proc = tf.InstructBlipProcessor(image_processor=ip, tokenizer=tok, qformer_tokenizer=qtok, num_query_tokens=nq)
    proc.chat_template = template
    vision = tf.InstructBlipVisionConfig(hidden_size=s["vh"], intermediate_size=2 * s["vh"], num_hidden_layers=s["vlayers"],
                                         num_attention_heads=2, image_size=img, patch_size=patch,
                                         initializer_range=0.02)   # its default 1e-10 makes every image alike
    qformer = tf.InstructBlipQFormerConfig(vocab_size=len(qtok), hidden_size=s["vh"], num_hidden_layers=1,
                                           num_attention_heads=2, intermediate_size=2 * s["vh"],
                                           encoder_hidden_size=s["vh"], pad_token_id=qtok.pad_token_id,
                                           initializer_range=0.2)
    cfg = tf.InstructBlipConfig(vision_config=vision, qformer_config=qformer, text_config=_llama(tok, s),
                                num_query_tokens=nq, image_token_index=tok.convert_tokens_to_ids("<image>"))
    model = tf.InstructBlipForConditionalGeneration(cfg)
    torch.nn.init.normal_(model.query_tokens, std=0.5)      # zeros at init: queries would ignore the image
    torch.nn.init.normal_(model.language_projection.weight, std=0.5)   # let the image matter to the LM
    return proc, model


_BUILDERS = {"llava": _llava, "llava_next": _llava_next, "qwen2_vl": _qwen2_vl, "instructblip": _instructblip}


def build(family: str, size: str = "tiny", seed: int = 0):
    """(model, processor) with random weights, in eval mode."""
    import torch
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    image_tok, specials = SPECIALS[family]
    tok = tokenizer(specials)
    torch.manual_seed(seed)                 # the weights below are drawn from it, in construction order
    proc, model = _BUILDERS[family](tok, SIZES[size], TEMPLATE.replace("IMAGE", image_tok), specials)
    gc = model.generation_config
    gc.pad_token_id, gc.eos_token_id, gc.bos_token_id = tok.pad_token_id, tok.eos_token_id, tok.bos_token_id
    return model.eval(), proc
