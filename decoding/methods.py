"""Decode methods: the baselines through ``generate``, and the contrastive family on one core.

    m = VCD(VCDParams(alpha=1.0, beta=0.1))
    outs = m.decode(model, processor, [Example("img1", image, "Describe the image.")], max_new_tokens=64, seed=0)
    outs[0].text, m.gen_info(model)        # {"do_sample": True, "branches": "batched", ...}

| method | negative branch                                  | alpha            |
|--------|--------------------------------------------------|------------------|
| vcd    | the image with forward-diffusion noise (t=500)   | constant         |
| icd    | a disturbing instruction prepended to the prompt | constant         |
| vdd    | no image                                         | constant         |
| m3id   | no image                                         | alpha·(e^{λt}−1) |

``Example.key`` seeds the example's noise and sampling (with the run seed), so an example decodes
the same whatever batch it lands in.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import torch

from decoding.core import (PER_ROW_PIXELS, Branch, PromptTooLong, context_length, contrast_loop, placeholder_ids,
                           prompt_lengths, text_only_net)
from decoding.inputs import encode, render, rows_per_image, template_name
from decoding.params import (BeamParams, GreedyParams, ICDParams, M3IDParams, SampleParams, VCDParams,
                             VDDParams)
from decoding.processors import (Argmax, ConstantAlpha, Contrast, DiffusionNoise, ExpAlpha, PlausibilityMask, Sampler,
                                 logits_processors)

__all__ = ["Example", "Output", "Greedy", "Sample", "Beam", "VCD", "ICD", "VDD", "M3ID", "PromptTooLong", "Branch"]


@dataclass(frozen=True)
class Example:
    key: str          # stable id of the example (seeds its noise and sampling)
    image: Any        # a PIL image
    prompt: str       # the user's question, before the template


@dataclass
class Output:
    text: str
    tokens: list[int]


def row_generator(seed: int, stream: str, key: str) -> torch.Generator:
    h = hashlib.sha256(f"{seed}/{stream}/{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(h[:8], "little") & (2**63 - 1))


def _eos_ids(model, processor) -> list[int]:
    eos = model.generation_config.eos_token_id
    eos = eos if eos is not None else processor.tokenizer.eos_token_id
    return [eos] if isinstance(eos, int) else list(eos)


def _pad_id(model, processor) -> int:
    pad = processor.tokenizer.pad_token_id
    return pad if pad is not None else _eos_ids(model, processor)[0]


def _to_model(inputs, model) -> dict:
    """Tensors onto the model's device; floating ones (pixels) in its dtype too."""
    return {k: (v.to(model.device, dtype=model.dtype) if torch.is_floating_point(v) else v.to(model.device))
            if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _outputs(processor, tokens: torch.Tensor, stop: list[int]) -> list[Output]:
    outs = []
    for row in tokens.tolist():
        cut = next((i for i, t in enumerate(row) if t in stop), len(row))
        ids = row[:cut]
        outs.append(Output(processor.tokenizer.decode(ids, skip_special_tokens=True).strip(), ids))
    return outs


class Method:
    name = ""
    Params: type = GreedyParams

    def __init__(self, params=None):
        self.params = params if params is not None else self.Params()
        if not isinstance(self.params, self.Params):
            raise TypeError(f"{self.name} takes {self.Params.__name__}, got {type(self.params).__name__}")

    def args(self) -> dict:
        return asdict(self.params)

    def gen_info(self, model) -> dict:
        return {}

    def prompts(self, processor, examples, template):
        return [render(processor, e.prompt, template) for e in examples]

    def check_context(self, model, inputs, max_new_tokens: int) -> int:
        """Raises PromptTooLong for a row that fills the context; returns max_new_tokens capped to fit."""
        limit = context_length(model)
        if limit is None:
            return max_new_tokens
        lens = prompt_lengths(inputs)
        for r, n in enumerate(lens.tolist()):
            if n >= limit:
                raise PromptTooLong(r, n, limit)
        return min(max_new_tokens, limit - int(inputs["input_ids"].shape[1]))


# ---------------------------------------------------------------- baselines (transformers' generate)

class _Generate(Method):
    def generate_kwargs(self) -> dict:
        raise NotImplementedError

    def gen_info(self, model) -> dict:
        return {"do_sample": self.generate_kwargs()["do_sample"]}   # the record says what generate did

    def decode(self, model, processor, examples, *, max_new_tokens=64, seed=0, template="chat",
               ignore_eos=False) -> list[Output]:
        inputs = encode(processor, [e.image for e in examples], self.prompts(processor, examples, template))
        max_new = self.check_context(model, inputs, max_new_tokens)
        torch.manual_seed(seed)      # generate's sampling draws from the global generator
        with torch.inference_mode():
            out = model.generate(**_to_model(inputs, model), max_new_tokens=max_new, pad_token_id=_pad_id(model, processor),
                                 suppress_tokens=placeholder_ids(model) or None,
                                 min_new_tokens=max_new if ignore_eos else None, **self.generate_kwargs())
        new = out[:, inputs["input_ids"].shape[1]:]
        return _outputs(processor, new, [*_eos_ids(model, processor), _pad_id(model, processor)])


class Greedy(_Generate):
    name, Params = "greedy", GreedyParams

    def generate_kwargs(self):
        return {"do_sample": False, "num_beams": 1, "repetition_penalty": self.params.repetition_penalty}


class Sample(Method):
    """Multinomial sampling with transformers' own warpers (repetition penalty, temperature, top-k,
    top-p, in ``generate``'s order), through the single-branch core rather than ``generate``: each
    example draws from its own generator, seeded by (run seed, example key), so its caption is the
    same whatever batch it lands in. ``generate`` samples every row from one global generator, which
    made a resumed run or another --batch-size give other captions."""
    name, Params = "sample", SampleParams

    def __init__(self, params=None, use_cache: bool = True):
        super().__init__(params)
        self.processors = logits_processors(**asdict(self.params))          # validates the values
        self.use_cache = use_cache

    def gen_info(self, model) -> dict:
        return {"do_sample": True, "sampler": "per-example generators (decoding/core.py)"}

    def decode(self, model, processor, examples, *, max_new_tokens=64, seed=0, template="chat",
               ignore_eos=False) -> list[Output]:
        clean = encode(processor, [e.image for e in examples], self.prompts(processor, examples, template))
        tokens = contrast_loop(
            model, processor, _to_model(clean, model), None, alpha=None, mask=None, contrast=None,
            processors=self.processors, select=Sampler(),
            generators=[row_generator(seed, "sample", e.key) for e in examples], max_new_tokens=max_new_tokens,
            eos_ids=[] if ignore_eos else _eos_ids(model, processor), pad_id=_pad_id(model, processor),
            use_cache=self.use_cache, suppress=placeholder_ids(model))
        return _outputs(processor, tokens, [*_eos_ids(model, processor), _pad_id(model, processor)])


class Beam(_Generate):
    name, Params = "beam", BeamParams

    def __init__(self, params=None):
        super().__init__(params)
        if self.params.num_beams < 1:
            raise ValueError(f"num_beams={self.params.num_beams}: must be >= 1, e.g. --set num_beams=5")

    def generate_kwargs(self):
        p = self.params
        return {"do_sample": False, "num_beams": p.num_beams, "length_penalty": p.length_penalty,
                "repetition_penalty": p.repetition_penalty}


# ---------------------------------------------------------------- the contrastive family

class Contrastive(Method):
    """Shared core: build the negative inputs, then contrast_loop. Subclasses define the negative."""
    negative_has_image = True

    def __init__(self, params=None, batched: bool | None = None, use_cache: bool = True):
        super().__init__(params)
        p = self.params
        self.alpha = self.make_alpha()
        self.mask = PlausibilityMask(p.beta)
        self.contrast = Contrast()
        self.processors = logits_processors(p.temperature, p.top_k, p.top_p, p.repetition_penalty)
        self.select = Argmax() if p.greedy else Sampler()
        self.batched, self.use_cache = batched, use_cache   # batched=None: one 2B forward where the model allows

    def make_alpha(self):
        return ConstantAlpha(self.params.alpha)

    def can_batch(self, model) -> bool:
        return self.negative_has_image or model.config.model_type not in PER_ROW_PIXELS

    def is_batched(self, model) -> bool:
        if self.batched is None:
            return self.can_batch(model)
        if self.batched and not self.can_batch(model):
            raise ValueError(f"{self.name}: {model.config.model_type} takes pixels per text row, so a no-image "
                             "negative cannot share a batch with the clean rows; use batched=False")
        return self.batched

    def gen_info(self, model) -> dict:
        return {"do_sample": not self.params.greedy,
                "branches": "batched" if self.is_batched(model) else "sequential"}

    def negative(self, model, processor, examples, clean, template, seed) -> dict:
        raise NotImplementedError

    def decode(self, model, processor, examples, *, max_new_tokens=64, seed=0, template="chat",
               trace: list | None = None, contrast: bool = True, ignore_eos: bool = False) -> list[Output]:
        """``contrast=False`` decodes the clean branch alone through the same mask, processors and
        sampler: the single-branch reference that alpha = 0 must reproduce. ``ignore_eos`` always
        generates max_new_tokens (benchmarks)."""
        clean = encode(processor, [e.image for e in examples], self.prompts(processor, examples, template))
        negative = self.negative(model, processor, examples, clean, template, seed) if contrast else None
        gens = [row_generator(seed, "sample", e.key) for e in examples]
        neg_net = model if self.negative_has_image else text_only_net(model)
        tokens = contrast_loop(
            model, processor, _to_model(clean, model), None if negative is None else _to_model(negative, model),
            alpha=self.alpha, mask=self.mask, contrast=self.contrast, processors=self.processors, select=self.select,
            generators=gens, max_new_tokens=max_new_tokens, eos_ids=[] if ignore_eos else _eos_ids(model, processor),
            pad_id=_pad_id(model, processor), batched=self.is_batched(model), use_cache=self.use_cache,
            negative_net=neg_net, suppress=placeholder_ids(model), trace=trace)
        return _outputs(processor, tokens, [*_eos_ids(model, processor), _pad_id(model, processor)])


class VCD(Contrastive):
    """Visual contrastive decoding: the negative sees the same prompt and a diffusion-noised image."""
    name, Params = "vcd", VCDParams

    def __init__(self, params=None, **kw):
        super().__init__(params, **kw)
        self.noise = DiffusionNoise(self.params.noise_step)

    def negative(self, model, processor, examples, clean, template, seed):
        neg = dict(clean)
        gens = [row_generator(seed, "noise", e.key) for e in examples]
        neg["pixel_values"] = self.noise(clean["pixel_values"], gens, rows_per_image(clean))
        return neg


class ICD(Contrastive):
    """Instruction contrastive decoding: the negative's prompt starts with a disturbing instruction."""
    name, Params = "icd", ICDParams

    def __init__(self, params=None, **kw):
        super().__init__(params, **kw)
        if not self.params.instruction.strip():
            raise ValueError("instruction='': ICD needs a disturbing instruction, e.g. "
                             "--set instruction='You are a confused object detector.'")

    def negative(self, model, processor, examples, clean, template, seed):
        texts = [render(processor, f"{self.params.instruction} {e.prompt}", template) for e in examples]
        return encode(processor, [e.image for e in examples], texts)


class VDD(Contrastive):
    """Contrast with the same prompt and no image (the language prior alone)."""
    name, Params = "vdd", VDDParams
    negative_has_image = False

    def negative(self, model, processor, examples, clean, template, seed):
        neg = encode(processor, None, [render(processor, e.prompt, template, image=False) for e in examples])
        if text_only_net(model) is not model:      # BLIP: the language model alone reads ids + mask only
            neg = {k: neg[k] for k in ("input_ids", "attention_mask")}
        return neg


class M3ID(VDD):
    """M3ID: the no-image contrast with alpha_t = alpha·(e^{lam·t} − 1) growing over the generation."""
    name, Params = "m3id", M3IDParams

    def make_alpha(self):
        return ExpAlpha(self.params.lam, self.params.alpha)


def template_used(processor, template: str) -> str:
    return template_name(processor, template)
