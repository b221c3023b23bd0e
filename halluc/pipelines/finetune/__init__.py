"""``halluc finetune``: supervised fine-tuning of a VLM on instruction records (LRV, DESIGN.md §6).

    halluc finetune --model builtin --data lrv.jsonl --out runs/ft-lrv                       # LoRA (LRV's r=8, alpha=32)
    halluc finetune --model builtin --data lrv.jsonl --lora r=16,alpha=32,targets=q_proj,k_proj,v_proj,o_proj --out DIR
    halluc finetune --model llava-hf/llava-1.5-7b-hf --data coco_lrv.jsonl --full --out DIR
    accelerate launch -m halluc finetune --model DIR --data lrv.jsonl --out DIR2            # several GPUs (DDP)
    halluc decode --model runs/ft-lrv --dataset world-pope-adversarial                      # the merged model

From Python (the experiment runner): ``add_options(parser)`` declares the options, ``run(args)`` does the
work from the parsed Namespace and returns the summary (what finetune.json holds).

Records: ``question`` + ``answer`` + ``image`` (what ``halluc negatives`` writes), or TRL's conversational
``messages`` + ``images``. Each example is the model's own chat prompt with the image, exactly as
``halluc.models.generate_greedy`` builds it at inference, followed by the answer and the end-of-sequence
token; the loss is on the answer (and that end token) only, truncated so that prompt + answer fit
``--max-length`` (default: the model's context, else 2048). A bad record (malformed JSON, a field missing
or of the wrong type, an image missing, corrupt, not a regular file or over the pixel cap) is reported as
``error: FILE:LINE: field: message``, skipped and counted; no record usable is one error, exit 2.

Trainer: transformers' ``Trainer`` with that collator (``--trainer hf``, the default), or TRL's
``SFTTrainer`` with the same collator (``--trainer trl``). On a GPU: bf16 autocast, gradient
checkpointing, LoRA base weights in bf16. ``--lora`` (the default) trains LoRA adapters on the language
model's projections (``scope=all`` also adapts the vision tower's); ``--full`` trains the language
model and projector (``--train-vision`` the tower too).

Output (``--out DIR``): the merged model (``model.safetensors`` + config + processor) that
``halluc.models.load(DIR)`` and ``halluc decode --model DIR`` load; ``DIR/adapter/`` (LoRA only: the
peft adapter, loadable with ``peft.PeftModel.from_pretrained`` on the base); ``finetune.json`` (losses,
configuration, timings) and ``run.json``. ``--save-steps N`` keeps trainer checkpoints under
``DIR/checkpoints`` and ``--resume`` continues from the last one.

Modules: ``config`` (LoraSpec, FinetuneConfig), ``data`` (records -> examples, collator, max length),
``model`` (trainable parameters, learning rate, loss), ``train`` (trainer, ``finetune``), ``saving``.
"""
from __future__ import annotations

import os
from pathlib import Path

from halluc.command import at_least, number, seed
from halluc.pipelines.finetune.config import FinetuneConfig, LoraSpec, parse_lora
from halluc.pipelines.finetune.data import (DEFAULT_MAX_LENGTH, Example, ExampleDataset, VlmCollator,
                                            context_length, fitting, read_examples)
from halluc.pipelines.finetune.model import (VISION_PARTS, batch_loss, default_lr, lora_targets, prepare_model,
                                             trainable_summary)
from halluc.pipelines.finetune.saving import save
from halluc.pipelines.finetune.train import finetune, make_trainer, training_argument_names, training_arguments

__all__ = ["DEFAULT_MAX_LENGTH", "VISION_PARTS", "Example", "ExampleDataset", "FinetuneConfig", "LoraSpec",
           "VlmCollator", "add_options", "batch_loss", "check_inputs", "config_from_args", "context_length",
           "default_lr", "finetune", "fitting", "lora_targets", "make_trainer", "parse_lora", "prepare_model",
           "read_examples", "run", "save", "trainable_summary", "training_argument_names",
           "training_arguments"]


def add_options(p) -> None:
    """The options of ``halluc finetune`` (the command and the experiment runner parse them alike)."""
    p.add_argument("--model", default="builtin", help="builtin, a local folder, or a hub id in the local cache (default %(default)s)")
    p.add_argument("--data", type=Path, required=True, help="instruction JSONL (question/answer/image, or messages/images)")
    p.add_argument("--images", type=Path, help="folder that relative image paths refer to (default: the data "
                   "file's folder, else the working directory)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora", nargs="?", const="", default="", metavar="SPEC",
                      help="LoRA (the default): r=8,alpha=32,dropout=0.05,targets=q_proj,v_proj[,scope=language|all]")
    mode.add_argument("--full", action="store_true", help="train the language model and projector in full")
    p.add_argument("--train-vision", action="store_true", help="--full: train the vision tower too")
    p.add_argument("--train-projector", action="store_true", help="LoRA: train the projector in full as well")
    p.add_argument("--out", type=Path, required=True, help="output folder (merged model, adapter/, finetune.json, run.json)")
    p.add_argument("--steps", type=at_least(0), default=FinetuneConfig.steps,
                   help="optimiser steps; 0: --epochs (default %(default)s)")
    p.add_argument("--epochs", type=number(0, lo_open=True), default=FinetuneConfig.epochs)
    p.add_argument("--lr", type=number(0, lo_open=True),
                   help="learning rate (default: 2e-4 LoRA / 2e-5 full; builtin world model 2e-3 / 5e-4)")
    p.add_argument("--batch-size", type=at_least(1), default=FinetuneConfig.batch_size, help="per device (default %(default)s)")
    p.add_argument("--grad-accum", type=at_least(1), default=FinetuneConfig.grad_accum)
    p.add_argument("--warmup", type=number(0, 1), default=FinetuneConfig.warmup, help="warm-up share of the steps, in [0, 1]")
    p.add_argument("--weight-decay", type=number(0), default=FinetuneConfig.weight_decay)
    p.add_argument("--scheduler", default=FinetuneConfig.scheduler, help="transformers lr scheduler (default %(default)s)")
    p.add_argument("--max-length", type=at_least(16), help="tokens per example: answers are truncated so that prompt + "
                   f"answer fit, a record whose prompt alone does not is skipped (default: the model's context, its "
                   f"max_position_embeddings, else {DEFAULT_MAX_LENGTH})")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--gradient-checkpointing", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--trainer", default="hf", choices=["hf", "trl"], help="transformers Trainer or TRL SFTTrainer")
    p.add_argument("--limit", type=at_least(1), help="only the first N good records")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=at_least(1), help="CPU threads for torch")
    p.add_argument("--logging-steps", type=at_least(1), default=FinetuneConfig.logging_steps)
    p.add_argument("--save-steps", type=at_least(0), default=0, help="keep a trainer checkpoint every N steps (for --resume)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint under OUT/checkpoints")
    p.add_argument("--strict", action="store_true", help="any bad record is fatal (exit code 2)")
    p.add_argument("--no-progress", action="store_true")


def check_inputs(args) -> None:
    """Every path, before a record is read or a weight loaded: one line naming the option."""
    from halluc.images import max_pixels
    from halluc.models import resolve
    from halluc.paths import input_dir, input_file, output_dir
    output_dir(args.out, "--out")
    input_file(args.data, "--data")
    if args.images:
        input_dir(args.images, "--images")
    resolve(args.model)                 # a local folder: config.json and sound safetensors, never a pickle
    max_pixels()                        # a bad HALLUC_MAX_IMAGE_PIXELS: one error, not one per record


def config_from_args(args) -> FinetuneConfig:
    """The training configuration of parsed options."""
    return FinetuneConfig(steps=args.steps, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                          grad_accum=args.grad_accum, warmup=args.warmup, weight_decay=args.weight_decay,
                          scheduler=args.scheduler, max_length=args.max_length, seed=args.seed, full=args.full,
                          train_vision=args.train_vision, train_projector=args.train_projector, dtype=args.dtype,
                          gradient_checkpointing=args.gradient_checkpointing, logging_steps=args.logging_steps,
                          save_steps=args.save_steps, trainer=args.trainer)


def run(args) -> dict:
    """Check the inputs, read the records, train, save; run.json on rank 0. Returns the summary.
    No usable record is a BadInput (the command's boundary: one line, exit 2)."""
    from halluc.errors import BadInput
    from halluc.records import ReadReport
    from halluc.provenance import args_config, write_manifest
    check_inputs(args)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    lora = None if args.full else parse_lora(args.lora)
    cfg = config_from_args(args)
    if args.train_vision and not args.full:
        raise ValueError("--train-vision goes with --full (LoRA: --lora ...,scope=all)")
    report = ReadReport()
    data = read_examples(args.data, args.images, args.limit, report, args.strict)
    if not data:
        raise BadInput(f"{args.data}: no usable record ({len(report.bad)} skipped, each reported above)")
    summary = finetune(args.model, data, args.out, cfg, lora, progress=not args.no_progress, resume=args.resume,
                       skipped=[str(b) for b in report.bad], strict=args.strict)
    if int(os.environ.get("RANK", "0")) == 0:
        write_manifest(args.out, command="finetune", seed=args.seed,
                       config=args_config(args),
                       extra={"summary": {k: v for k, v in summary.items() if k != "log"},
                              "data": {"path": str(args.data), "examples": summary["examples"],
                                       "skipped": summary["skipped"]}})
    return summary
