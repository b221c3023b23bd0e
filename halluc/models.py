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

from halluc.errors import BadInput

BUILTIN = "builtin"


def builtin_path() -> Path:
    from halluc.assets import asset_path
    return asset_path("builtin_vlm")


PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def check_safetensors(path: Path, label: str) -> None:
    """A .safetensors file whose header parses and whose tensors all lie inside the file: an empty,
    truncated or foreign file is named here, not met as a traceback inside the loader."""
    import json
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise BadInput(f"{label}: {path.name} is not a safetensors file ({size} bytes; empty, truncated or "
                           "another format)")
        try:
            header = json.loads(f.read(n))
        except (ValueError, UnicodeDecodeError):
            raise BadInput(f"{label}: {path.name}: corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise BadInput(f"{label}: {path.name}: corrupt safetensors header")
    data = size - 8 - n
    for name, t in header.items():
        if name == "__metadata__":
            continue
        end = (t.get("data_offsets") or [0, 0])[1] if isinstance(t, dict) else None
        if not isinstance(end, int) or end > data:
            raise BadInput(f"{label}: {path.name} is truncated or corrupt (tensor {name!r} ends at byte "
                           f"{end} of {data})")


def check_model_folder(p: Path, label: str, needs: str = "config.json and *.safetensors") -> Path:
    """``p`` as a folder with a readable config.json and sound safetensors weights (never a pickle)."""
    import json
    from halluc.paths import input_dir, read_text
    input_dir(p, label)
    if not (p / "config.json").is_file():
        raise BadInput(f"{label}: {p} has no config.json (a model folder needs {needs})")
    try:
        json.loads(read_text(p / "config.json", label))
    except ValueError as e:
        raise BadInput(f"{label}: {p / 'config.json'} is not valid JSON ({e})") from None
    weights = sorted(p.glob("*.safetensors"))
    if not weights:
        pickles = sorted({q.name for pat in PICKLE_WEIGHTS for q in p.glob(pat)})
        why = (f" (it has {', '.join(pickles)}: pickle files, which halluc never loads since loading one runs "
               "code from it; convert them to safetensors where you trust them)" if pickles else "")
        raise BadInput(f"{label}: {p} has config.json but no *.safetensors weights{why}; nothing can be "
                       "downloaded here")
    for w in weights:
        check_safetensors(w, label)
    return p


def resolve(model_id: str) -> tuple[str, dict]:
    if model_id == BUILTIN:
        return str(builtin_path()), {"model_id": BUILTIN}
    p = Path(model_id).expanduser()
    if p.exists() or model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1:
        check_model_folder(p, f"--model {model_id}")
        return str(p), {"model_id": str(p)}
    return model_id, {"model_id": model_id}


def weights_sha256(model_id: str) -> str | None:
    """sha256 over a model folder's ``*.safetensors`` in name order (None for a hub id): what a cached
    result is keyed on, so that another checkpoint under the same name is never mistaken for it."""
    from halluc.provenance import sha256_files
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
            path, dtype=getattr(torch, dtype) if dtype else "auto", device_map=device_map, use_safetensors=True, **kw)
    except OSError as e:
        if Path(path).is_dir():
            raise BadInput(f"--model {model_id}: cannot load {path}: {_first_line(e)}") from None
        raise FileNotFoundError(
            f"--model {model_id}: not a local folder and not in the local Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}); nothing can be downloaded here. "
            f"Pass a folder with config.json + *.safetensors. ({e.__class__.__name__}: {_first_line(e)})") from None
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as e:
        # a config or weights file transformers cannot use (unknown model type, wrong shapes, ...)
        raise BadInput(f"--model {model_id}: cannot load {path}: {e.__class__.__name__}: {_first_line(e)}") from None
    if device and device_map is None:
        model.to(device)
    model.eval()
    info["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
    return model, processor, info


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:300]


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
