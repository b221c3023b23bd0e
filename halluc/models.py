"""Model loading: the builtin world VLM, a local folder, or a Hugging Face hub id — through
``AutoModelForImageTextToText`` + ``AutoProcessor`` either way.

    model, processor, info = load("builtin")            # shipped inside the package, loads offline
    texts = generate_greedy(model, processor, images, ["describe the image ."] * len(images))

Nothing is ever downloaded here: a hub id is looked up in the local Hugging Face cache only,
and a miss says what was looked for.
"""
from __future__ import annotations

import os
from pathlib import Path

BUILTIN = "builtin"


def builtin_path() -> Path:
    from halluc.assets import asset_path
    return asset_path("builtin_vlm")


def resolve(model_id: str) -> tuple[str, dict]:
    if model_id == BUILTIN:
        return str(builtin_path()), {"model_id": BUILTIN}
    p = Path(model_id).expanduser()
    if p.exists():
        if not p.is_dir() or not (p / "config.json").exists():
            raise FileNotFoundError(f"--model {model_id}: looked for {p / 'config.json'} and found none "
                                    "(a model folder needs config.json and weights)")
        if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
            raise FileNotFoundError(f"--model {model_id}: {p} has config.json but no weights "
                                    "(*.safetensors); nothing can be downloaded here")
        return str(p), {"model_id": str(p)}
    return model_id, {"model_id": model_id}


def weights_sha256(model_id: str) -> str | None:
    """sha256 over a model folder's ``*.safetensors`` in name order (None for a hub id): what a cached
    result is keyed on, so that another checkpoint under the same name is never mistaken for it."""
    from halluc.records import sha256_files
    d = Path(resolve(model_id)[0])
    files = sorted(d.glob("*.safetensors")) if d.is_dir() else []
    return sha256_files(files) if files else None


def load(model_id: str = BUILTIN, dtype: str | None = None, device: str | None = None, device_map=None):
    """Returns (model, processor, info). Offline: local folders, or hub ids already in the HF cache."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    path, info = resolve(model_id)
    # Offline by default (our machines and CI have no hub); HALLUC_ALLOW_DOWNLOAD=1 lets a user fetch.
    kw = {"local_files_only": os.environ.get("HALLUC_ALLOW_DOWNLOAD") != "1"}
    try:
        processor = AutoProcessor.from_pretrained(path, **kw)
        model = AutoModelForImageTextToText.from_pretrained(
            path, dtype=getattr(torch, dtype) if dtype else "auto", device_map=device_map, **kw)
    except OSError as e:
        raise FileNotFoundError(
            f"--model {model_id}: not a local folder and not in the local Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); nothing can be downloaded here. "
            f"Pass a folder with config.json + *.safetensors. ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None
    if device and device_map is None:
        model.to(device)
    model.eval()
    info["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    return model, processor, info


def chat_prompt(processor, question: str) -> str:
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(msgs, add_generation_prompt=True)


def generate_greedy(model, processor, images, questions, max_new_tokens: int = 64) -> list[str]:
    """Plain batched greedy decoding through ``generate`` (left padding, per-row stop)."""
    import torch
    prompts = [chat_prompt(processor, q) for q in questions]
    processor.tokenizer.padding_side = "left"
    inputs = processor(images=list(images), text=prompts, return_tensors="pt", padding=True).to(model.device)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return [t.strip() for t in processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)]
