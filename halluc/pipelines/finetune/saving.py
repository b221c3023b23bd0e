"""The output of ``halluc finetune``: the merged model (safetensors + config + processor) that
``halluc.models.load(out)`` and ``halluc decode --model out`` load, and under LoRA the peft adapter.

    save(model, processor, "runs/ft-lrv", adapter=True)    # runs/ft-lrv/{model.safetensors, adapter/, ...}

(Named ``saving``, not ``save``: the package re-exports the function ``save``, which a submodule of the
same name would be confused with.)
"""
from __future__ import annotations

import os
from pathlib import Path


def save(model, processor, out: str | os.PathLike, adapter: bool = True) -> Path:
    """LoRA: the adapter under out/adapter, then the merged model in out; full: the model in out.
    Safetensors only; the processor beside, so that ``halluc.models.load(out)`` loads it."""
    import torch
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = model
    if adapter and hasattr(model, "merge_and_unload"):
        model.save_pretrained(out / "adapter", safe_serialization=True)
        processor.save_pretrained(out / "adapter")
        base = model.merge_and_unload(safe_merge=True)     # the adapters folded into the weights
    base.config.use_cache = True
    if getattr(base.config, "text_config", None) is not None:
        base.config.text_config.use_cache = True
    with torch.no_grad():
        base.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out
