"""Training for ``halluc finetune``: transformers' ``Trainer`` (``--trainer hf``) or TRL's
``SFTTrainer`` (``--trainer trl``) with the answer-only collator, then the merged save.

    summary = finetune("builtin", read_examples("lrv.jsonl"), "runs/ft-lrv", FinetuneConfig(steps=300),
                       LoraSpec())                      # what finetune.json holds
    training_argument_names()                           # the TrainingArguments keywords we pass

On a GPU: bf16 autocast, gradient checkpointing, LoRA base weights in bf16. The same seed gives the
same weights whatever ran before in the process (``set_seed`` right before the adapters are made).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from halluc.pipelines.finetune.config import FinetuneConfig, LoraSpec
from halluc.pipelines.finetune.data import Example, ExampleDataset, VlmCollator, context_length, fitting
from halluc.pipelines.finetune.model import batch_loss, default_lr, prepare_model, trainable_summary
from halluc.pipelines.finetune.saving import save


def training_arguments(cfg: FinetuneConfig, out: Path, lr: float, n_steps: int, *, bf16: bool, cuda: bool,
                       progress: bool, gc: bool) -> dict:
    """transformers' ``TrainingArguments`` keywords, passed unfiltered: a renamed one fails here, loudly
    (tests/test_transformers_api.py checks them against the installed version). Checkpoints are
    safetensors (transformers 5 saves nothing else) and resume loads them with ``weights_only``."""
    ta = dict(output_dir=str(out / "checkpoints"), max_steps=cfg.steps if cfg.steps > 0 else -1,
              num_train_epochs=cfg.epochs, per_device_train_batch_size=cfg.batch_size,
              gradient_accumulation_steps=cfg.grad_accum, learning_rate=lr, lr_scheduler_type=cfg.scheduler,
              warmup_steps=int(round(cfg.warmup * n_steps)), weight_decay=cfg.weight_decay,
              logging_steps=cfg.logging_steps, report_to=[], save_strategy="steps" if cfg.save_steps else "no",
              save_steps=cfg.save_steps or 500, bf16=bf16, remove_unused_columns=False, dataloader_num_workers=0,
              seed=cfg.seed, data_seed=cfg.seed, disable_tqdm=not progress, use_cpu=not cuda,
              ddp_find_unused_parameters=False)
    if gc:
        ta.update(activation_checkpointing=True, activation_checkpointing_kwargs={"use_reentrant": False})
    return ta


def training_argument_names() -> list[str]:
    return sorted(training_arguments(FinetuneConfig(), Path("."), 1e-4, 10, bf16=False, cuda=False,
                                     progress=False, gc=True))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _precision(cfg: FinetuneConfig) -> tuple[bool, bool, str]:
    """(cuda, bf16, weight dtype): auto is bfloat16 weights under LoRA on a bf16 GPU, else float32."""
    import torch
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = "bfloat16" if (bf16 and not cfg.full) else "float32"
    return cuda, bf16, dtype


def _load_model(model_id: str, model, processor, dtype: str, cuda: bool):
    """The given model, or ``model_id`` loaded on this process's GPU; the KV cache off (training)."""
    if model is None:
        from halluc.models import load
        local = int(os.environ.get("LOCAL_RANK", "0"))
        model, processor, _ = load(model_id, dtype=dtype, device=f"cuda:{local}" if cuda else None)
    model.config.use_cache = False
    if getattr(model.config, "text_config", None) is not None:
        model.config.text_config.use_cache = False
    return model, processor


def _fitting_examples(data: list[Example], processor, max_length: int, strict: bool, log) -> tuple[list, list]:
    """The examples whose prompt fits ``max_length``; each other one is reported (fatal under strict)."""
    from halluc.records import BadInput
    data, too_long = fitting(data, processor, max_length)
    if strict and too_long:
        raise BadInput(too_long[0])
    for m in too_long:
        log(f"error: {m}")
    if not data:
        raise ValueError(f"no training example fits the maximum length {max_length} ({len(too_long)} too long; "
                         "--max-length sets it)")
    return data, too_long


def _log_callback(log):
    """A trainer callback logging one line per logging step; ``start`` is set when training starts."""
    from transformers import TrainerCallback

    class Log(TrainerCallback):
        start = 0.0

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs and state.is_world_process_zero:
                log(f"step {state.global_step:5d}/{state.max_steps}  loss {logs['loss']:.4f}  "
                    f"lr {logs.get('learning_rate', 0):.2e}  {time.time() - self.start:.0f}s")
    return Log()


def make_trainer(cfg: FinetuneConfig, model, ta: dict, dataset: ExampleDataset, collator: VlmCollator, processor,
                 callback):
    """transformers' Trainer or TRL's SFTTrainer (its own dataset preparation skipped: our collator
    encodes), with our log callback in place of the trainer's printer."""
    if cfg.trainer == "trl":
        from trl import SFTConfig, SFTTrainer
        args = SFTConfig(**ta, dataset_kwargs={"skip_prepare_dataset": True}, max_length=None)
        from datasets import Dataset
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([dataset[i] for i in range(len(dataset))]),
                             data_collator=collator,
                             processing_class=processor, callbacks=[callback])
    else:
        from transformers import Trainer, TrainingArguments
        trainer = Trainer(model=model, args=TrainingArguments(**ta), train_dataset=dataset, data_collator=collator,
                          callbacks=[callback])
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)            # our Log callback prints one line per logging step
    return trainer


def _last_checkpoint(out: Path) -> str | None:
    """The newest trainer checkpoint under ``out/checkpoints`` (by step), for --resume."""
    if not (out / "checkpoints").is_dir():
        return None
    cks = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(cks[-1]) if cks else None


def _write_outputs(trainer, processor, out: Path, cfg: FinetuneConfig, summary: dict, t0: float) -> None:
    """The merged model (+ adapter) and finetune.json; an empty checkpoints folder is not left behind."""
    from halluc.outputs import atomic_write_json
    ck = out / "checkpoints"
    if ck.is_dir() and not any(ck.iterdir()):
        ck.rmdir()
    save(trainer.model, processor, out, adapter=not cfg.full)
    summary["seconds"] = round(time.time() - t0, 1)
    atomic_write_json(out / "finetune.json", summary)


def finetune(model_id: str, data: list[Example], out: str | os.PathLike, cfg: FinetuneConfig = FinetuneConfig(),
             lora: LoraSpec | None = LoraSpec(), model=None, processor=None, progress: bool = True,
             resume: bool = False, log=None, skipped: list[str] = (), strict: bool = False) -> dict:
    """Train, save the merged model (+ adapter) into ``out``; returns the summary written to finetune.json.

    ``model``/``processor`` may be given already loaded (tests, experiments); otherwise ``model_id`` is
    loaded with ``halluc.models.load`` (safetensors only: builtin, a folder, or a hub id in the local
    cache). ``skipped``: the records the reader dropped, counted in the summary with those whose
    prompt does not fit the maximum length (``strict``: such a prompt is fatal, as a bad record is).
    """
    log = log or _stderr
    out = Path(out)
    if not data:
        raise ValueError("no training example")
    if cfg.trainer not in ("hf", "trl"):
        raise ValueError(f"--trainer {cfg.trainer}: valid: hf, trl")
    cuda, bf16, dtype = _precision(cfg)
    t0 = time.time()
    model, processor = _load_model(model_id, model, processor, dtype, cuda)
    from transformers import set_seed
    set_seed(cfg.seed)             # the adapters' initialisation: the same for every run with this seed
    max_length = cfg.max_length or context_length(model)
    data, too_long = _fitting_examples(data, processor, max_length, strict, log)
    skipped = [*skipped, *too_long]
    model = prepare_model(model, cfg, None if cfg.full else lora)
    model.train()
    summary_params = trainable_summary(model)
    gc = cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and cuda)
    lr = cfg.lr if cfg.lr is not None else default_lr(model_id, cfg.full)
    collator = VlmCollator(processor, max_length)
    probe = data[:min(len(data), 32)]
    loss_before = batch_loss(model, collator, probe)
    n_steps = cfg.steps if cfg.steps > 0 else math.ceil(cfg.epochs * len(data) / (cfg.batch_size * cfg.grad_accum))
    ta = training_arguments(cfg, out, lr, n_steps, bf16=bf16, cuda=cuda, progress=progress, gc=gc)
    callback = _log_callback(log)
    trainer = make_trainer(cfg, model, ta, ExampleDataset(data), collator, processor, callback)
    callback.start = time.time()
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(out) if resume else None)
    train_s = time.time() - callback.start
    loss_after = batch_loss(trainer.model, collator, probe)
    summary = {"model": model_id, "examples": len(data), "steps": trainer.state.global_step, "lr": lr,
               "loss_before": round(loss_before, 5), "loss_after": round(loss_after, 5),
               "train_loss": round(result.training_loss, 5), "train_seconds": round(train_s, 1),
               "bf16": bf16, "gradient_checkpointing": gc, "dtype": dtype, "max_length": max_length,
               "skipped": len(skipped), "skipped_first": list(skipped[:20]), **summary_params,
               "config": asdict(cfg), "lora": None if cfg.full else asdict(lora),
               "log": [x for x in trainer.state.log_history if "loss" in x]}
    if trainer.is_world_process_zero():
        _write_outputs(trainer, processor, out, cfg, summary, t0)
        log(f"saved {out} (loss on {len(probe)} examples {loss_before:.4f} -> {loss_after:.4f}; "
            f"{summary['steps']} steps, {train_s:.0f}s)")
    return summary
