"""What a fine-tuning run is configured with: the LoRA spec (``--lora r=8,alpha=32,...``) and the
training configuration (the other ``halluc finetune`` options).

    lora = parse_lora("r=16,alpha=32,targets=q_proj,k_proj,v_proj,o_proj")   # LoraSpec(r=16, ...)
    cfg = FinetuneConfig(steps=300, batch_size=16, seed=0)
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoraSpec:
    r: int = 8
    alpha: float = 32.0
    dropout: float = 0.05
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    scope: str = "language"          # language: the LLM's modules only (LRV); all: vision tower's too

    def __post_init__(self):
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1 or not self.targets:
            raise ValueError(f"--lora {self}: need r >= 1, alpha > 0, 0 <= dropout < 1 and at least one target")
        if self.scope not in ("language", "all"):
            raise ValueError(f"--lora scope={self.scope}: valid: language, all")


def parse_lora(spec: str | None) -> LoraSpec:
    """``r=8,alpha=32,dropout=0.05,targets=q_proj,v_proj[,scope=all]``: names after ``targets=`` up to
    the next ``key=`` are target modules. Unknown keys are an error naming the valid ones."""
    if not spec:
        return LoraSpec()
    valid = ("r", "alpha", "dropout", "targets", "scope")
    kw: dict = {}
    key = None
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "=" in part:
            key, _, val = part.partition("=")
            key = key.strip()
            if key not in valid:
                raise ValueError(f"--lora {spec}: unknown key {key!r}; valid: {', '.join(valid)}")
            if key == "targets":
                kw["targets"] = [val.strip()] if val.strip() else []
                continue
            try:
                kw[key] = {"r": int, "alpha": float, "dropout": float, "scope": str}[key](val.strip())
            except ValueError:
                raise ValueError(f"--lora {spec}: {key}={val} is not a valid value") from None
        elif key == "targets":
            kw["targets"].append(part)
        else:
            raise ValueError(f"--lora {spec}: {part!r} is not key=value (only targets= takes a list)")
    if "targets" in kw:
        kw["targets"] = tuple(kw["targets"])
    return LoraSpec(**kw)


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 300                 # optimiser steps (max_steps); 0 = --epochs instead
    epochs: float = 1.0
    lr: float | None = None          # default: 2e-4 LoRA, 2e-5 full on a hub model; builtin: 2e-3 / 5e-4
    batch_size: int = 16
    grad_accum: int = 1
    warmup: float = 0.05             # share of the steps
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    max_length: int | None = None    # truncate answers so that prompt + answer fit; None: the model's context
    seed: int = 0
    full: bool = False
    train_vision: bool = False       # --full: the vision tower too
    train_projector: bool = False    # LoRA: also train the projector in full (peft modules_to_save)
    dtype: str = "auto"              # auto: float32 on CPU; GPU: bfloat16 weights under LoRA, float32 + bf16 autocast full
    gradient_checkpointing: str = "auto"   # auto: on with a GPU
    logging_steps: int = 10
    save_steps: int = 0
    trainer: str = "hf"              # hf | trl
