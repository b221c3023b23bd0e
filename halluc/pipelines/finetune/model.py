"""The model side of ``halluc finetune``: which parameters train (LoRA adapters through peft, or the
full language model + projector), the default learning rate, and the answer loss on a few examples.

    model = prepare_model(model, cfg, None if cfg.full else lora)    # peft-wrapped under LoRA
    trainable_summary(model)                                          # parameters, trainable, share
    batch_loss(model, VlmCollator(processor, 64), examples[:32])      # before / after training
"""
from __future__ import annotations

import re
from pathlib import Path

from halluc.pipelines.finetune.config import FinetuneConfig, LoraSpec
from halluc.pipelines.finetune.data import Example

# vision-tower module names of the families we run (LLaVA / LLaVA-NeXT, Qwen2-VL, InstructBLIP)
VISION_PARTS = ("vision_tower", "visual", "vision_model", "qformer", "query_tokens")


def _is_vision(name: str) -> bool:
    return any(f".{p}" in f".{name}" for p in VISION_PARTS)


def lora_targets(model, spec: LoraSpec) -> list[str]:
    """Full names of the modules LoRA adapts: those whose last name is a target, in the language model
    only (scope=language) or anywhere (scope=all). Empty -> an error naming what exists."""
    import torch
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in spec.targets]
    if spec.scope == "language":
        names = [n for n in names if not _is_vision(n) and "multi_modal_projector" not in n]
    if not names:
        lins = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(f"--lora targets={','.join(spec.targets)} (scope={spec.scope}) match no linear layer; "
                         f"this model's linear layers are named: {', '.join(lins)}")
    return names


PROJECTORS = ("multi_modal_projector", "language_projection")


def _projector_names(model) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] in PROJECTORS})


def prepare_model(model, cfg: FinetuneConfig, lora: LoraSpec | None):
    """Make the trainable parameters trainable: LoRA adapters (peft), or the full language model +
    projector (vision tower frozen unless train_vision). Returns the (possibly wrapped) model."""
    if cfg.full:
        for n, p in model.named_parameters():
            p.requires_grad_(cfg.train_vision or not _is_vision(n))
        return model
    from peft import LoraConfig, get_peft_model
    targets = lora_targets(model, lora)
    # an anchored alternation of full names: exactly these modules, nothing else
    pattern = "^(" + "|".join(re.escape(n) for n in targets) + ")$"
    save = _projector_names(model) if cfg.train_projector else None
    pc = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=pattern,
                    modules_to_save=save or None, bias="none")
    return get_peft_model(model, pc)


def trainable_summary(model) -> dict:
    n_all = sum(p.numel() for p in model.parameters())
    n_tr = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": n_all, "trainable": n_tr, "trainable_share": round(n_tr / max(n_all, 1), 6)}


def default_lr(model_id: str, full: bool) -> float:
    if model_id == "builtin" or _is_builtin_like(model_id):
        return 5e-4 if full else 2e-3
    return 2e-5 if full else 2e-4


def _is_builtin_like(model_id: str) -> bool:
    p = Path(model_id)
    return p.is_dir() and (p / "halluc_builtin.json").exists()


def batch_loss(model, collator, examples: list[Example]) -> float:
    """Mean answer-token loss of the model on examples (no gradient): before/after comparisons."""
    import torch
    was = model.training
    model.eval()
    with torch.no_grad():
        batch = collator([{"image": e.image, "question": e.question, "answer": e.answer} for e in examples])
        batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
        loss = model(**batch).loss.item()
    model.train(was)
    return loss
