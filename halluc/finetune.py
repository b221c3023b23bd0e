"""``halluc finetune``: supervised fine-tuning of a VLM on instruction records (LRV, DESIGN.md §6).

    halluc finetune --model builtin --data lrv.jsonl --out runs/ft-lrv                       # LoRA (LRV's r=8, alpha=32)
    halluc finetune --model builtin --data lrv.jsonl --lora r=16,alpha=32,targets=q_proj,k_proj,v_proj,o_proj --out DIR
    halluc finetune --model llava-hf/llava-1.5-7b-hf --data coco_lrv.jsonl --full --out DIR
    accelerate launch -m halluc finetune --model DIR --data lrv.jsonl --out DIR2            # several GPUs (DDP)
    halluc decode --model runs/ft-lrv --dataset world-pope-adversarial                      # the merged model

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

from halluc.command import at_least, guard, module_main, number, seed

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


# ---------------------------------------------------------------- data

@dataclass
class Example:
    id: str
    image: str
    question: str
    answer: str
    where: str = ""                  # FILE:LINE, for a problem found after reading (a prompt too long)


class _Bad(Exception):
    """One record's problem: (field, message)."""


def _kind(v) -> str:
    return "null" if v is None else type(v).__name__


def _text(r: dict, key: str, why: str) -> str:
    v = r.get(key)
    if key not in r:
        raise _Bad(key, f"missing ({why})")
    if not isinstance(v, str):
        raise _Bad(key, f"expected a string, got {_kind(v)}")
    if not v.strip():
        raise _Bad(key, "empty")
    return v


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
    if len(user) != 1 or len(asst) != 1 or not isinstance(user[0], str) or not isinstance(asst[0], str) \
            or not user[0].strip() or not asst[0].strip():
        return None
    return user[0], asst[0]


def _question_answer(r: dict) -> tuple[str, str]:
    """question + answer where either is given: a wrong type there is this record's error, never a reason
    to train on its messages instead (they may say something else). Else one-turn messages."""
    if "question" in r or "answer" in r:
        why = "question and answer go together"
        return _text(r, "question", why), _text(r, "answer", why)
    if "messages" not in r:
        raise _Bad("question", "missing (needs question + answer strings, or one-turn messages)")
    qa = _from_messages(r["messages"])
    if qa is None:
        raise _Bad("messages", "expected a list with one user and one assistant turn, each with text")
    return qa


def _image_name(r: dict) -> str:
    """``image`` where given (a wrong type is an error, not a reason to read ``images``), else ``images``."""
    if "image" in r:
        return _text(r, "image", "")
    ims = r.get("images")
    if "images" not in r:
        raise _Bad("image", "missing (needs image, or images with one path)")
    if not (isinstance(ims, list) and len(ims) == 1 and isinstance(ims[0], str) and ims[0].strip()):
        raise _Bad("images", f"expected a list with one path string, got {_kind(ims)}"
                   + (f" of {len(ims)}" if isinstance(ims, list) else ""))
    return ims[0]


def _image_path(name: str, images, data: Path) -> Path:
    """A relative path is under --images, else beside the data file (where halluc negatives writes it
    relative to), else under the working directory."""
    p = Path(name)
    if p.is_absolute():
        return p
    if images is not None:
        return Path(images) / p
    return data.parent / p if (data.parent / p).exists() or not p.exists() else p


def read_examples(path: str | os.PathLike, images: str | os.PathLike | None = None, limit: int | None = None,
                  report=None, strict: bool = False) -> list[Example]:
    """Instruction records -> examples. A bad record (malformed, a field missing or of the wrong type, an
    image missing or unusable: each decoded once, here, not in the middle of training) is reported as
    ``FILE:LINE: field: message`` and skipped."""
    from halluc.images import image_problem
    from halluc.records import BadInput, BadLine, ReadReport, read_records
    report = report if report is not None else ReadReport()
    path, out = Path(path), []
    for it in read_records(path, need_id=False, strict=strict, report=report):
        try:
            q, a = _question_answer(it.rec)
            p = _image_path(_image_name(it.rec), images, path)
            if problem := image_problem(p):
                raise _Bad("image", problem)
        except _Bad as e:
            b = BadLine(str(path), it.line, *e.args)
            if strict:
                raise BadInput(str(b)) from None
            report.n_good -= 1
            report.add(b)
            continue
        out.append(Example(str(it.rec.get("id", it.line)), str(p), q, a, f"{path}:{it.line}"))
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
            from halluc.images import open_image
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
            if self.max_length is not None:
                ids = ids[:self.max_length]       # a row never holds more: a huge answer is not cached whole
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


# ---------------------------------------------------------------- sequence length

DEFAULT_MAX_LENGTH = 2048          # where the model does not say its context


def context_length(model) -> int:
    """The default --max-length: the language model's context (``max_position_embeddings``), else 2048.
    Without a bound a 5 MB answer becomes a million-token row and a request for terabytes."""
    for c in (getattr(model.config, "text_config", None), model.config):
        n = getattr(c, "max_position_embeddings", None)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            return n
    return DEFAULT_MAX_LENGTH


def fitting(data: list[Example], processor, max_length: int) -> tuple[list[Example], list[str]]:
    """The examples whose prompt leaves room for an answer within ``max_length``, and one message per
    other (its answer would be cut to nothing). A prompt has at most its template's tokens plus one per
    byte of the question, so only long questions are tokenized. Image tokens past the placeholder are
    not counted: the collator still cuts such an answer to fit."""
    from halluc.models import chat_prompt
    tok = getattr(processor, "tokenizer", processor)

    def n_tokens(q: str) -> int:
        return len(tok(chat_prompt(processor, q), add_special_tokens=False)["input_ids"])
    base = n_tokens("") + 8                                   # + 8: merges across the template's edges
    keep, bad = [], []
    for e in data:
        n = base + len(e.question.encode())
        n = n if n < max_length else n_tokens(e.question)
        if n < max_length:
            keep.append(e)
        else:
            bad.append(f"{e.where or e.id}: question: the prompt is {n} tokens, over the maximum length "
                       f"{max_length} (--max-length)")
    return keep, bad


# ---------------------------------------------------------------- training

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


def finetune(model_id: str, data: list[Example], out: str | os.PathLike, cfg: FinetuneConfig = FinetuneConfig(),
             lora: LoraSpec | None = LoraSpec(), model=None, processor=None, progress: bool = True,
             resume: bool = False, log=None, skipped: list[str] = (), strict: bool = False) -> dict:
    """Train, save the merged model (+ adapter) into ``out``; returns the summary written to finetune.json.

    ``model``/``processor`` may be given already loaded (tests, experiments); otherwise ``model_id`` is
    loaded with ``halluc.models.load`` (safetensors only: builtin, a folder, or a hub id in the local
    cache). ``skipped``: the records the reader dropped, counted in the summary with those whose
    prompt does not fit the maximum length (``strict``: such a prompt is fatal, as a bad record is).
    """
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from halluc.records import BadInput, atomic_write_json
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
    max_length = cfg.max_length or context_length(model)
    data, too_long = fitting(data, processor, max_length)
    if strict and too_long:
        raise BadInput(too_long[0])
    for m in too_long:
        log(f"error: {m}")
    if not data:
        raise ValueError(f"no training example fits the maximum length {max_length} ({len(too_long)} too long; "
                         "--max-length sets it)")
    skipped = [*skipped, *too_long]
    model = prepare_model(model, cfg, None if cfg.full else lora)
    model.train()
    summary_params = trainable_summary(model)
    gc = cfg.gradient_checkpointing == "on" or (cfg.gradient_checkpointing == "auto" and cuda)
    lr = cfg.lr if cfg.lr is not None else default_lr(model_id, cfg.full)
    collator = VlmCollator(processor, max_length)
    dataset = ExampleDataset(data)
    probe = data[:min(len(data), 32)]
    loss_before = batch_loss(model, collator, probe)
    n_steps = cfg.steps if cfg.steps > 0 else math.ceil(cfg.epochs * len(data) / (cfg.batch_size * cfg.grad_accum))
    ta = training_arguments(cfg, out, lr, n_steps, bf16=bf16, cuda=cuda, progress=progress, gc=gc)

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs and state.is_world_process_zero:
                log(f"step {state.global_step:5d}/{state.max_steps}  loss {logs['loss']:.4f}  "
                    f"lr {logs.get('learning_rate', 0):.2e}  {time.time() - t_train:.0f}s")

    if cfg.trainer == "trl":
        from trl import SFTConfig, SFTTrainer
        args = SFTConfig(**ta, dataset_kwargs={"skip_prepare_dataset": True}, max_length=None)
        from datasets import Dataset
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([dataset[i] for i in range(len(dataset))]),
                             data_collator=collator,
                             processing_class=processor, callbacks=[Log()])
    else:
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
               "bf16": bf16, "gradient_checkpointing": gc, "dtype": dtype, "max_length": max_length,
               "skipped": len(skipped), "skipped_first": list(skipped[:20]), **summary_params,
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
    p.set_defaults(func=run)
    return p


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


def _run(args) -> int:
    from halluc.records import ReadReport, args_config, write_manifest
    check_inputs(args)
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
    report = ReadReport()
    data = read_examples(args.data, args.images, args.limit, report, args.strict)
    if not data:
        print(f"error: {args.data}: no usable record ({len(report.bad)} skipped, each reported above)", file=sys.stderr)
        return 2
    summary = finetune(args.model, data, args.out, cfg, lora, progress=not args.no_progress, resume=args.resume,
                       skipped=[str(b) for b in report.bad], strict=args.strict)
    if int(os.environ.get("RANK", "0")) == 0:
        write_manifest(args.out, command="finetune", seed=args.seed,
                       config=args_config(args),
                       extra={"summary": {k: v for k, v in summary.items() if k != "log"},
                              "data": {"path": str(args.data), "examples": summary["examples"],
                                       "skipped": summary["skipped"]}})
        print(f"{summary['examples']} examples ({summary['skipped']} skipped), {summary['steps']} steps: answer loss "
              f"{summary['loss_before']:.4f} -> {summary['loss_after']:.4f} -> {args.out}", file=sys.stderr)
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.finetune finetune …`` (what ``accelerate launch -m`` needs)."""
    return module_main(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
