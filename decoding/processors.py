"""The transformations of contrastive decoding, one class each, in the style of transformers'
``LogitsProcessor``: ``__init__`` validates (and says how to fix a bad value), ``__call__`` is pure.

    keep = PlausibilityMask(0.1)(clean)                          # p_w >= beta * p_max
    scores = Contrast()(clean, negative, keep, alpha=1.0)         # (1+a)·l - a·l' on kept tokens
    noisy = DiffusionNoise(500)(pixel_values, [generator, ...], rows_per_image)
    tokens = Sampler()(scores, generators)  or  Argmax()(scores)

DESIGN.md §5 gives the algorithm; VCD is Leng et al., CVPR 2024.
"""
from __future__ import annotations

import math

import torch

DIFFUSION_STEPS = 1000


def diffusion_alpha_bar(steps: int = DIFFUSION_STEPS) -> torch.Tensor:
    """VCD's schedule: beta_i = sigmoid(linspace(-6, 6, T))·(5e-3 − 1e-5) + 1e-5, alpha_bar_t = prod_{i<=t}(1 − beta_i)."""
    betas = torch.sigmoid(torch.linspace(-6, 6, steps, dtype=torch.float64)) * (5e-3 - 1e-5) + 1e-5
    return torch.cumprod(1 - betas, dim=0)


class DiffusionNoise:
    """x_t = sqrt(alpha_bar_t)·x + sqrt(1 − alpha_bar_t)·eps on the *preprocessed* pixel tensor, t 0-based."""

    def __init__(self, noise_step: int = 500):
        if isinstance(noise_step, bool) or not isinstance(noise_step, int) or not 0 <= noise_step < DIFFUSION_STEPS:
            raise ValueError(f"noise_step={noise_step!r}: must be an integer in 0..{DIFFUSION_STEPS - 1} "
                             "(the reference uses 500; higher means noisier), e.g. --set noise_step=500")
        self.noise_step = noise_step
        ab = float(diffusion_alpha_bar()[noise_step])
        self.signal, self.noise = math.sqrt(ab), math.sqrt(1 - ab)

    def __call__(self, pixels: torch.Tensor, generators: list[torch.Generator], rows_per_image: list[int]) -> torch.Tensor:
        """Each image's rows of ``pixels`` (dim 0) get noise from that image's own generator, so the
        noise of an image does not depend on which batch it was decoded in."""
        if sum(rows_per_image) != pixels.shape[0] or len(generators) != len(rows_per_image):
            raise ValueError(f"{len(generators)} generators and rows {rows_per_image} do not cover a pixel tensor "
                             f"of {pixels.shape[0]} rows")
        parts = []
        for chunk, g in zip(torch.split(pixels, rows_per_image), generators):
            eps = torch.randn(chunk.shape, generator=g, dtype=torch.float32).to(chunk.device, chunk.dtype)
            parts.append(self.signal * chunk + self.noise * eps)
        return torch.cat(parts)


class PlausibilityMask:
    """Adaptive plausibility constraint: keep tokens with l_w >= log(beta) + max l (p_w >= beta·p_max) of the clean branch."""

    def __init__(self, beta: float = 0.1):
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta={beta!r}: must be in [0, 1] (0 keeps every token; the reference uses 0.1 "
                             "and 0.2), e.g. --set beta=0.1")
        self.beta = beta
        self.log_beta = math.log(beta) if beta > 0 else -math.inf

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits >= self.log_beta + logits.max(dim=-1, keepdim=True).values


class Contrast:
    """s = (1+alpha)·l − alpha·l' on kept tokens, −inf elsewhere. alpha = 0 gives back l (masked)."""

    def __call__(self, clean: torch.Tensor, negative: torch.Tensor, keep: torch.Tensor, alpha: float) -> torch.Tensor:
        s = (1 + alpha) * clean - alpha * negative if alpha else clean.clone()
        return s.masked_fill(~keep, -math.inf)


class ConstantAlpha:
    def __init__(self, alpha: float = 1.0):
        if not (alpha >= 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha={alpha!r}: must be a finite number >= 0 (0 turns the contrast off; "
                             "the reference uses 1), e.g. --set alpha=1")
        self.alpha = alpha

    def __call__(self, step: int) -> float:
        return self.alpha


class ExpAlpha:
    """M3ID: alpha_t = scale·(e^{lam·t} − 1), growing as the generated text drifts from the image."""

    def __init__(self, lam: float = 0.02, scale: float = 1.0):
        if not (lam >= 0 and math.isfinite(lam)):
            raise ValueError(f"lam={lam!r}: must be a finite number >= 0 (M3ID uses 0.02), e.g. --set lam=0.02")
        if not (scale >= 0 and math.isfinite(scale)):
            raise ValueError(f"alpha={scale!r}: must be a finite number >= 0 (it scales M3ID's schedule; 1 is "
                             "the paper's), e.g. --set alpha=1")
        self.lam, self.scale = lam, scale

    def __call__(self, step: int) -> float:
        return self.scale * math.expm1(self.lam * step)


def logits_processors(temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0):
    """The usual processors, through transformers' own classes (identity ones are left out)."""
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r}: must be > 0 (1 is VCD's reference; use greedy=true "
                         "for argmax), e.g. --set temperature=1")
    if top_k < 0:
        raise ValueError(f"top_k={top_k!r}: must be >= 0 (0 turns it off), e.g. --set top_k=0")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r}: must be in (0, 1] (1 turns it off), e.g. --set top_p=1")
    if not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty={repetition_penalty!r}: must be > 0 (1 turns it off)")
    out = LogitsProcessorList()
    if repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k:
        out.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        out.append(TopPLogitsWarper(top_p))
    return out


class Argmax:
    def __call__(self, scores: torch.Tensor, generators=None) -> torch.Tensor:
        return scores.argmax(dim=-1)


class Sampler:
    """Multinomial sampling, one generator per row: a row's tokens do not depend on its batch-mates."""

    def __call__(self, scores: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        probs = torch.softmax(scores.float(), dim=-1).cpu()
        return torch.stack([torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, generators)]).to(scores.device)
