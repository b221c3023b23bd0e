"""The training data of ``halluc finetune``: instruction records read and checked into examples, the
collator that turns a batch of them into model inputs with answer-only labels, and the length bound.

    data = read_examples("lrv.jsonl", images=None, limit=None, report=ReadReport())   # bad records skipped
    data, too_long = fitting(data, processor, max_length or context_length(model))
    batch = VlmCollator(processor, max_length)([{"image": ..., "question": ..., "answer": ...}])

Records: ``question`` + ``answer`` + ``image`` (what ``halluc negatives`` writes), or TRL's
conversational ``messages`` + ``images``. A bad one (malformed JSON, a field missing or of the wrong
type, an image missing, corrupt, not a regular file or over the pixel cap) is reported as
``FILE:LINE: field: message`` and skipped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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
