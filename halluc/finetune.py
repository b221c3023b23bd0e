"""``halluc finetune``: supervised fine-tuning of a VLM on instruction records (LRV, DESIGN.md §6).

    halluc finetune --model builtin --data lrv.jsonl --out runs/ft-lrv                       # LoRA (LRV's r=8, alpha=32)
    halluc finetune --model builtin --data lrv.jsonl --lora r=16,alpha=32,targets=q_proj,k_proj,v_proj,o_proj --out DIR
    halluc finetune --model llava-hf/llava-1.5-7b-hf --data coco_lrv.jsonl --full --out DIR
    accelerate launch -m halluc finetune --model DIR --data lrv.jsonl --out DIR2            # several GPUs (DDP)
    halluc decode --model runs/ft-lrv --dataset world-pope-adversarial                      # the merged model

Records: ``question`` + ``answer`` + ``image`` (what ``halluc negatives`` writes), or TRL's conversational
``messages`` + ``images``. Each example is the model's own chat prompt with the image, exactly as
``halluc.models.generate_greedy`` builds it at inference, followed by the answer and the end-of-sequence
token; the loss is on the answer (and that end token) only. A malformed record or a missing image is
reported as ``file:line`` and skipped.

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
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from halluc.command import guard, module_main

# vision-tower module names of the families we run (LLaVA / LLaVA-NeXT, Qwen2-VL, InstructBLIP)
VISION_PARTS = ("vision_tower", "visual", "vision_model", "qformer", "query_tokens")


# ---------------------------------------------------------------- configuration

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
    max_length: int | None = None    # truncate answers so that prompt + answer fit
    seed: int = 0
    full: bool = False
    train_vision: bool = False       # --full: the vision tower too
    train_projector: bool = False    # LoRA: also train the projector in full (peft modules_to_save)
    dtype: str = "auto"              # auto: float32 on CPU; GPU: bfloat16 weights under LoRA, float32 + bf16 autocast full
    gradient_checkpointing: str = "auto"   # auto: on with a GPU
    logging_steps: int = 10
    save_steps: int = 0
    trainer: str = "hf"              # hf | trl


# ---------------------------------------------------------------- data

@dataclass
class Example:
    id: str
    image: str
    question: str
    answer: str


def _from_messages(msgs) -> tuple[str, str] | None:
    """The user text and the assistant text of a one-turn conversation, or None."""
    if not isinstance(msgs, list):
        return None

    def text(content):
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text").strip()
        return None
    user = [text(m.get("content")) for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    asst = [text(m.get("content")) for m in msgs if isinstance(m, dict) and m.get("role") == "assistant"]
    if len(user) != 1 or len(asst) != 1 or not user[0] or not asst[0]:
        return None
    return user[0], asst[0]


def read_examples(path: str | os.PathLike, images: str | os.PathLike | None = None, limit: int | None = None,
                  report=None, strict: bool = False) -> list[Example]:
    """Instruction records -> examples; bad ones (no question/answer, no image, image missing) reported, skipped."""
    from halluc.records import BadInput, BadLine, ReadReport, read_records
    report = report if report is not None else ReadReport()
    out: list[Example] = []
    for it in read_records(path, need_id=False, strict=strict, report=report):
        r = it.rec
        qa = (r.get("question"), r.get("answer")) if isinstance(r.get("question"), str) and isinstance(r.get("answer"), str) \
            else _from_messages(r.get("messages"))
        img = r.get("image") if isinstance(r.get("image"), str) else (
            r["images"][0] if isinstance(r.get("images"), list) and len(r["images"]) == 1 and isinstance(r["images"][0], str) else None)
        problem = None
        if qa is None or not qa[0].strip() or not qa[1].strip():
            problem = ("question", "needs question + answer strings, or one-turn messages (user, assistant)")
        elif img is None:
            problem = ("image", "needs an image path (image, or images with one path)")
        else:
            p = Path(img)
            if not p.is_absolute() and images is not None:
                p = Path(images) / p
            elif not p.is_absolute() and not p.exists():      # relative to the data file's folder
                p = Path(path).parent / p
            if not p.exists():
                problem = ("image", f"image not found: {p}")
        if problem:
            b = BadLine(str(path), it.line, *problem)
            if strict:
                raise BadInput(str(b))
            report.n_good -= 1
            report.add(b)
            continue
        out.append(Example(str(r.get("id", it.line)), str(p), qa[0], qa[1]))
        if limit is not None and len(out) >= limit:
            break
    return out


class ExampleDataset:
    """A map-style dataset of examples (dicts: TRL's SFTTrainer looks at the keys of the first one)."""

    def __init__(self, examples: list[Example]):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        e = self.examples[i]
        return {"id": e.id, "image": e.image, "question": e.question, "answer": e.answer}


class VlmCollator:
    """Batches of (image, question, answer) for a VLM: the prompt is the processor's chat prompt with the
    image, encoded by the processor exactly as at inference; the answer's tokens and the end-of-sequence
    token follow; labels are -100 everywhere else (prompt, image tokens, padding). Right padding."""

    def __init__(self, processor, max_length: int | None = None, image_cache: int = 4096):
        self.processor = processor
        self.tok = getattr(processor, "tokenizer", processor)
        self.max_length = max_length
        self._images: dict[str, object] = {}
        self._cache = image_cache
        self._answers: dict[str, list[int]] = {}

    def image(self, path: str):
        im = self._images.get(path)
        if im is None:
            from halluc.decode import open_image
            im = open_image(Path(path))
            if len(self._images) >= self._cache:
                self._images.pop(next(iter(self._images)))
            self._images[path] = im
        return im

    def answer_ids(self, answer: str) -> list[int]:
        ids = self._answers.get(answer)
        if ids is None:
            ids = self.tok(answer, add_special_tokens=False)["input_ids"]
            if self.tok.eos_token_id is not None:
                ids = ids + [self.tok.eos_token_id]
            if len(self._answers) < 100000:
                self._answers[answer] = ids
        return ids

    def __call__(self, batch: list[dict]) -> dict:
        import torch
        from halluc.models import chat_prompt
        prompts = [chat_prompt(self.processor, b["question"]) for b in batch]
        images = [self.image(b["image"]) for b in batch]
        old = getattr(self.tok, "padding_side", "right")
        self.tok.padding_side = "right"
        try:
            enc = self.processor(images=images, text=prompts, return_tensors="pt", padding=True)
        finally:
            self.tok.padding_side = old
        ids, mask = enc.pop("input_ids"), enc.pop("attention_mask")
        lens = mask.sum(1).tolist()
        rows, labs = [], []
        for r, b in enumerate(batch):
            p = ids[r, :lens[r]].tolist()
            a = self.answer_ids(b["answer"])
            if self.max_length is not None:
                a = a[:max(0, self.max_length - len(p))]
            rows.append(p + a)
            labs.append([-100] * len(p) + a)
        L = max(len(x) for x in rows)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        out = {"input_ids": torch.full((len(rows), L), pad, dtype=torch.long),
               "attention_mask": torch.zeros((len(rows), L), dtype=torch.long),
               "labels": torch.full((len(rows), L), -100, dtype=torch.long)}
        for r, (x, y) in enumerate(zip(rows, labs)):
            out["input_ids"][r, :len(x)] = torch.tensor(x)
            out["attention_mask"][r, :len(x)] = 1
            out["labels"][r, :len(y)] = torch.tensor(y)
        for k, v in enc.items():                 # pixel values, image sizes / grids, per-token type ids
            if isinstance(v, torch.Tensor) and v.dim() >= 2 and v.shape[:2] == ids.shape:
                t = torch.zeros((len(rows), L), dtype=v.dtype)
                for r in range(len(rows)):
                    t[r, :lens[r]] = v[r, :lens[r]]
                out[k] = t
            else:
                out[k] = v
        return out


# ---------------------------------------------------------------- model preparation

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


# ---------------------------------------------------------------- training

def finetune(model_id: str, data: list[Example], out: str | os.PathLike, cfg: FinetuneConfig = FinetuneConfig(),
             lora: LoraSpec | None = LoraSpec(), model=None, processor=None, progress: bool = True,
             resume: bool = False, log=None) -> dict:
    """Train, save the merged model (+ adapter) into ``out``; returns the summary written to finetune.json.

    ``model``/``processor`` may be given already loaded (tests, experiments); otherwise ``model_id`` is
    loaded with ``halluc.models.load`` (builtin, a folder, or a hub id in the local cache).
    """
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from halluc.records import atomic_write_json
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out)
    if not data:
        raise ValueError("no training example")
    if cfg.trainer not in ("hf", "trl"):
        raise ValueError(f"--trainer {cfg.trainer}: valid: hf, trl")
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = "bfloat16" if (bf16 and not cfg.full) else "float32"
    t0 = time.time()
    if model is None:
        from halluc.models import load
        local = int(os.environ.get("LOCAL_RANK", "0"))
        model, processor, _ = load(model_id, dtype=dtype, device=f"cuda:{local}" if cuda else None)
    model.config.use_cache = False
    if getattr(model.config, "text_config", None) is not None:
        model.config.text_config.use_cache = False
    from transformers import set_seed
    set_seed(cfg.seed)             # the adapters' initialisation: the same for every run with this seed
    model = prepare_model(model, cfg, None if cfg.full else lora)
    model.train()
    summary_params = trainable_summary(model)
    gc = cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and cuda)
    lr = cfg.lr if cfg.lr is not None else default_lr(model_id, cfg.full)
    collator = VlmCollator(processor, cfg.max_length)
    dataset = ExampleDataset(data)
    probe = data[:min(len(data), 32)]
    loss_before = batch_loss(model, collator, probe)
    steps = cfg.steps if cfg.steps > 0 else -1
    n_steps = cfg.steps if cfg.steps > 0 else math.ceil(cfg.epochs * len(data) / (cfg.batch_size * cfg.grad_accum))
    ta = dict(output_dir=str(out / "checkpoints"), max_steps=steps, num_train_epochs=cfg.epochs,
              per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
              learning_rate=lr, lr_scheduler_type=cfg.scheduler, warmup_steps=int(round(cfg.warmup * n_steps)),
              weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps, report_to=[],
              save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500,
              save_safetensors=True, bf16=bf16, remove_unused_columns=False, dataloader_num_workers=0, seed=cfg.seed, data_seed=cfg.seed,
              disable_tqdm=not progress, use_cpu=not cuda, ddp_find_unused_parameters=False)

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs and state.is_world_process_zero:
                log(f"step {state.global_step:5d}/{state.max_steps}  loss {logs['loss']:.4f}  "
                    f"lr {logs.get('learning_rate', 0):.2e}  {time.time() - t_train:.0f}s")

    import inspect
    # transformers >= 5.x names it activation_checkpointing (gradient_checkpointing is deprecated)
    ck = "activation_checkpointing" if "activation_checkpointing" in inspect.signature(
        TrainingArguments.__init__).parameters else "gradient_checkpointing"
    if gc:
        ta.update({ck: True, f"{ck}_kwargs": {"use_reentrant": False}})
    if cfg.trainer == "trl":
        from trl import SFTConfig, SFTTrainer
        ta = {k: v for k, v in ta.items() if k in inspect.signature(SFTConfig.__init__).parameters}
        args = SFTConfig(**ta, dataset_kwargs={"skip_prepare_dataset": True}, max_length=None)
        from datasets import Dataset
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([dataset[i] for i in range(len(dataset))]),
                             data_collator=collator,
                             processing_class=processor, callbacks=[Log()])
    else:
        ta = {k: v for k, v in ta.items() if k in inspect.signature(TrainingArguments.__init__).parameters}
        trainer = Trainer(model=model, args=TrainingArguments(**ta), train_dataset=dataset, data_collator=collator,
                          callbacks=[Log()])
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)            # our Log callback prints one line per logging step
    t_train = time.time()
    last = None
    if resume and (out / "checkpoints").is_dir():
        cks = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        last = str(cks[-1]) if cks else None
    result = trainer.train(resume_from_checkpoint=last)
    train_s = time.time() - t_train
    model = trainer.model
    loss_after = batch_loss(model, collator, probe)
    summary = {"model": model_id, "examples": len(data), "steps": trainer.state.global_step, "lr": lr,
               "loss_before": round(loss_before, 5), "loss_after": round(loss_after, 5),
               "train_loss": round(result.training_loss, 5), "train_seconds": round(train_s, 1),
               "bf16": bf16, "gradient_checkpointing": gc, "dtype": dtype, **summary_params,
               "config": asdict(cfg), "lora": None if cfg.full else asdict(lora),
               "log": [x for x in trainer.state.log_history if "loss" in x]}
    if trainer.is_world_process_zero():
        ck = out / "checkpoints"
        if ck.is_dir() and not any(ck.iterdir()):
            ck.rmdir()
        save(model, processor, out, adapter=not cfg.full)
        summary["seconds"] = round(time.time() - t0, 1)
        atomic_write_json(out / "finetune.json", summary)
        log(f"saved {out} (loss on {len(probe)} examples {loss_before:.4f} -> {loss_after:.4f}; "
            f"{summary['steps']} steps, {train_s:.0f}s)")
    return summary


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


# ---------------------------------------------------------------- CLI

def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "finetune", help="fine-tune a VLM on instruction records (LoRA or full; answer-only loss); saves a merged model",
        description="Supervised fine-tuning on LRV-style records (halluc negatives) with transformers' Trainer or "
                    "TRL's SFTTrainer; loss on the answer only. Saves the merged model, loadable by "
                    "`halluc decode --model DIR`, and the LoRA adapter. Runs under `accelerate launch` on several GPUs.")
    p.add_argument("--model", default="builtin", help="builtin, a local folder, or a hub id in the local cache (default %(default)s)")
    p.add_argument("--data", type=Path, required=True, help="instruction JSONL (question/answer/image, or messages/images)")
    p.add_argument("--images", type=Path, help="folder that relative image paths refer to (default: the working "
                   "directory, else the data file's folder)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora", nargs="?", const="", default="", metavar="SPEC",
                      help="LoRA (the default): r=8,alpha=32,dropout=0.05,targets=q_proj,v_proj[,scope=language|all]")
    mode.add_argument("--full", action="store_true", help="train the language model and projector in full")
    p.add_argument("--train-vision", action="store_true", help="--full: train the vision tower too")
    p.add_argument("--train-projector", action="store_true", help="LoRA: train the projector in full as well")
    p.add_argument("--out", type=Path, required=True, help="output folder (merged model, adapter/, finetune.json, run.json)")
    p.add_argument("--steps", type=int, default=FinetuneConfig.steps, help="optimiser steps; 0: --epochs (default %(default)s)")
    p.add_argument("--epochs", type=float, default=FinetuneConfig.epochs)
    p.add_argument("--lr", type=float, help="learning rate (default: 2e-4 LoRA / 2e-5 full; builtin world model 2e-3 / 5e-4)")
    p.add_argument("--batch-size", type=int, default=FinetuneConfig.batch_size, help="per device (default %(default)s)")
    p.add_argument("--grad-accum", type=int, default=FinetuneConfig.grad_accum)
    p.add_argument("--warmup", type=float, default=FinetuneConfig.warmup, help="warm-up share of the steps")
    p.add_argument("--weight-decay", type=float, default=FinetuneConfig.weight_decay)
    p.add_argument("--scheduler", default=FinetuneConfig.scheduler, help="transformers lr scheduler (default %(default)s)")
    p.add_argument("--max-length", type=int, help="truncate answers so that prompt + answer fit")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--gradient-checkpointing", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--trainer", default="hf", choices=["hf", "trl"], help="transformers Trainer or TRL SFTTrainer")
    p.add_argument("--limit", type=int, help="only the first N records")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--logging-steps", type=int, default=FinetuneConfig.logging_steps)
    p.add_argument("--save-steps", type=int, default=0, help="keep a trainer checkpoint every N steps (for --resume)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint under OUT/checkpoints")
    p.add_argument("--strict", action="store_true", help="any bad record is fatal (exit code 2)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def _run(args) -> int:
    from halluc.records import ReadReport, args_config, write_manifest
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    lora = None if args.full else parse_lora(args.lora)
    cfg = FinetuneConfig(steps=args.steps, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         grad_accum=args.grad_accum, warmup=args.warmup, weight_decay=args.weight_decay,
                         scheduler=args.scheduler, max_length=args.max_length, seed=args.seed, full=args.full,
                         train_vision=args.train_vision, train_projector=args.train_projector, dtype=args.dtype,
                         gradient_checkpointing=args.gradient_checkpointing, logging_steps=args.logging_steps,
                         save_steps=args.save_steps, trainer=args.trainer)
    if args.train_vision and not args.full:
        raise ValueError("--train-vision goes with --full (LoRA: --lora ...,scope=all)")
    if args.steps < 0 or args.batch_size < 1:
        raise ValueError("--steps must be >= 0 and --batch-size >= 1")
    report = ReadReport()
    data = read_examples(args.data, args.images, args.limit, report, args.strict)
    if not data:
        print(f"error: {args.data}: no usable example ({report.summary()})", file=sys.stderr)
        return 2
    summary = finetune(args.model, data, args.out, cfg, lora, progress=not args.no_progress, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        summary["skipped"] = len(report.bad)
        write_manifest(args.out, command="finetune", seed=args.seed,
                       config=args_config(args),
                       extra={"summary": {k: v for k, v in summary.items() if k != "log"},
                              "data": {"path": str(args.data), "examples": len(data), "skipped": len(report.bad)}})
        print(f"{len(data)} examples ({len(report.bad)} skipped), {summary['steps']} steps: answer loss "
              f"{summary['loss_before']:.4f} -> {summary['loss_after']:.4f} -> {args.out}", file=sys.stderr)
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.finetune finetune …`` (what ``accelerate launch -m`` needs)."""
    return module_main(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
