"""decoding/: the contrastive core's algebra, and its invariants on tiny random models of four real
families (LLaVA, LLaVA-NeXT, Qwen2-VL, InstructBLIP) built from configs — nothing downloaded.

Invariants (DESIGN.md §5): alpha = 0 reproduces the baseline token for token; batched (one forward
of 2B rows) equals two sequential branches equals an uncached recompute-from-scratch; a batch equals
its examples one by one; the same seed gives the same output; the negative branch differs from the
clean one at every step (the upstream cache bug would make them equal).
"""
import copy
import inspect
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

from halluc.registry import decoder_params as parse_params                 # noqa: E402
from halluc.registry import make_decoder as make                           # noqa: E402
from halluc.registry import names                                          # noqa: E402
from decoding.methods import Example                                       # noqa: E402
from decoding.processors import (Contrast, DiffusionNoise, ExpAlpha, PlausibilityMask, Sampler,  # noqa: E402
                                 diffusion_alpha_bar)
from halluc.testing import FAMILIES, build                                  # noqa: E402

CONTRASTIVE = tuple(names("decoder", contrastive=True))

N_NEW = 6


# ---------------------------------------------------------------- algebra (no model)

def test_diffusion_schedule_matches_vcd_reference():
    ab = diffusion_alpha_bar()
    assert ab.shape == (1000,) and bool((ab[1:] < ab[:-1]).all())
    betas = torch.sigmoid(torch.linspace(-6, 6, 1000, dtype=torch.float64)) * (5e-3 - 1e-5) + 1e-5
    assert torch.allclose(ab[500], torch.prod(1 - betas[:501]))               # t is a 0-based index
    d = DiffusionNoise(500)
    assert round(d.signal, 3) == 0.863 and round(d.noise, 3) == 0.505
    assert math.isclose(d.signal ** 2 + d.noise ** 2, 1.0)


def test_diffusion_noise_per_image_and_validation():
    x = torch.zeros(5, 3, 4, 4)
    g = lambda s: torch.Generator().manual_seed(s)                              # noqa: E731
    y = DiffusionNoise(999)(x, [g(1), g(2)], [2, 3])
    y1 = DiffusionNoise(999)(x[:2], [g(1)], [2])                               # image 1 alone: same noise
    assert torch.equal(y[:2], y1) and not torch.equal(y[:2], y[2:4])
    assert abs(float(DiffusionNoise(999)(torch.zeros(20000), [g(0)], [20000]).std()) - DiffusionNoise(999).noise) < 0.02
    for bad in (-1, 1000, 2.5):
        with pytest.raises(ValueError, match="noise_step.*0..999"):
            DiffusionNoise(bad)


def test_plausibility_mask_and_contrast():
    l = torch.tensor([[2.0, 1.0, -1.0, 0.0]])
    p = torch.softmax(l, -1)
    keep = PlausibilityMask(0.3)(l)
    assert keep.tolist() == (p >= 0.3 * p.max()).tolist() == [[True, True, False, False]]
    assert PlausibilityMask(0.0)(l).all()
    ln = torch.tensor([[1.0, 3.0, 0.0, 0.0]])
    s = Contrast()(l, ln, keep, 1.0)
    assert s[0, :2].tolist() == [3.0, -1.0] and s[0, 2:].isinf().all()          # (1+a)l - a l'
    assert torch.equal(Contrast()(l, ln, keep, 0.0)[0, :2], l[0, :2])
    with pytest.raises(ValueError, match="beta=1.5.*\\[0, 1\\]"):
        PlausibilityMask(1.5)


def test_m3id_alpha_schedule():
    a = ExpAlpha(0.02)
    assert a(0) == 0.0 and math.isclose(a(10), math.exp(0.2) - 1) and math.isclose(ExpAlpha(0.02, 2.0)(10), 2 * a(10))


def test_sampler_rows_independent_of_batch():
    scores = torch.randn(3, 50)
    gens = lambda: [torch.Generator().manual_seed(i) for i in range(3)]          # noqa: E731
    both = Sampler()(scores, gens())
    assert Sampler()(scores[1:2], gens()[1:2]).item() == both[1].item()


def test_params_parse_and_errors():
    p = parse_params("vcd", {"alpha": "2", "greedy": "true", "noise_step": "999"})
    assert (p.alpha, p.greedy, p.noise_step, p.beta) == (2.0, True, 999, 0.1)
    assert parse_params("m3id").lam == 0.02 and "confused" in parse_params("icd").instruction
    with pytest.raises(ValueError, match="unknown parameter 'alfa' for vcd; valid: alpha, beta"):
        parse_params("vcd", {"alfa": "1"})
    with pytest.raises(ValueError, match="greedy='maybe': expected true or false"):
        parse_params("vcd", {"greedy": "maybe"})
    with pytest.raises(ValueError, match="unknown decode method 'dola'; valid: greedy"):
        parse_params("dola")
    with pytest.raises(ValueError, match="alpha=-1.0: must be a finite number >= 0"):
        make("vdd", {"alpha": "-1"})
    with pytest.raises(ValueError, match="top_p=0.0"):
        make("vcd", {"top_p": "0"})


def test_import_is_light():
    code = "import sys, halluc.registry as r, halluc.commands.decode; r.decoder_params('vcd'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- tiny models of four families

@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    torch.manual_seed(0)
    model, processor = build(request.param)
    rng = np.random.default_rng(0)
    from PIL import Image
    images = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(3)]
    prompts = ["describe the image .", "what is in this photo ?", "is there a cat ?"]
    examples = [Example(f"ex{i}", im, q) for i, (im, q) in enumerate(zip(images, prompts))]
    return request.param, model, processor, examples


def tokens(method, fam, examples=None, **kw):
    _, model, processor, ex = fam
    return [o.tokens for o in method.decode(model, processor, examples or ex, max_new_tokens=N_NEW, **kw)]


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_alpha_zero_is_the_baseline(family, name):
    greedy = tokens(make("greedy"), family)
    assert tokens(make(name, {"alpha": "0", "greedy": "true"}), family) == greedy
    # sampling variant: alpha = 0 (no mask) equals the clean branch sampled alone, same seed
    plain = tokens(make(name, {"beta": "0"}), family, seed=3, contrast=False)
    assert tokens(make(name, {"alpha": "0", "beta": "0"}), family, seed=3) == plain


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_batched_equals_sequential_equals_recompute(family, name):
    args = {"greedy": "true", "alpha": "1"}
    batched = tokens(make(name, args, batched=True) if make(name).can_batch(family[1]) else make(name, args), family)
    assert tokens(make(name, args, batched=False), family) == batched
    assert tokens(make(name, args, batched=False, use_cache=False), family) == batched
    one_by_one = [tokens(make(name, args), family, [e])[0] for e in family[3]]
    assert one_by_one == batched


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_sampling_seeded_and_batch_independent(family, name):
    m = make(name)
    a = tokens(m, family, seed=7)
    assert tokens(make(name), family, seed=7) == a
    assert [tokens(m, family, [e], seed=7)[0] for e in family[3]] == a
    assert tokens(make(name), family, seed=8) != a


@pytest.mark.parametrize("name", CONTRASTIVE)
def test_negative_branch_is_its_own(family, name):
    """At every step the negative logits differ from the clean ones, and equal an uncached recompute
    of the negative input: nothing of the clean branch leaks into it."""
    _, model, processor, ex = family
    m = make(name, {"greedy": "true"})
    cached, recomputed = [], []
    m.decode(model, processor, ex, max_new_tokens=N_NEW, trace=cached)
    make(name, {"greedy": "true"}, batched=False, use_cache=False).decode(model, processor, ex, max_new_tokens=N_NEW,
                                                                          trace=recomputed)
    assert len(cached) == len(recomputed) >= 2
    for (t, lc, ln), (_, rc, rn) in zip(cached, recomputed):
        assert (lc - ln).abs().amax(-1).min() > 1e-3, f"step {t}: a negative row equals its clean row"
        torch.testing.assert_close(ln, rn, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(lc, rc, atol=1e-4, rtol=1e-4)


def test_shared_cache_is_refused_and_would_be_caught(family):
    """The upstream bug (the noisy branch stepping on the clean branch's cache) is refused by Branch,
    and if forced, makes the negative logits collapse onto the clean ones — what the test above checks."""
    from decoding.core import Branch
    from decoding.inputs import encode, render
    from decoding.methods import _to_model
    _, model, processor, ex = family
    clean = _to_model(encode(processor, [e.image for e in ex], [render(processor, e.prompt) for e in ex]), model)
    noisy = make("vcd").negative(model, processor, ex, clean, "chat", 0)
    from decoding.core import CACHE_KEYWORDS, cache_keyword
    a = Branch(model, clean)
    # The keyword this transformers version really uses (past_key_values <= 5.23, cache from 5.24).
    key = cache_keyword(model)
    params = {**inspect.signature(model.prepare_inputs_for_generation).parameters,
              **inspect.signature(model.forward).parameters}
    assert key in params and a.cache_key == key and a.cache is a.kw[key]
    for k in (*CACHE_KEYWORDS, "kv_whatever"):        # every cache keyword, and a Cache under any name
        with pytest.raises(ValueError, match="makes its own KV cache"):
            Branch(model, {**noisy, k: a.cache})
    b = Branch(model, noisy)
    assert a.cache is not b.cache
    la, lb = a.logits(), b.logits()
    assert (la - lb).abs().max() > 1e-4
    assert [k for k in b.kw if k in CACHE_KEYWORDS] == [key]     # one cache, under the live keyword
    tok = la.argmax(-1)
    a.append(tok)
    b.append(tok)
    b.kw[key] = copy.deepcopy(a.cache)     # the bug, by hand, through the live keyword: continue from the clean cache
    la, lb = a.logits(), b.logits()
    torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-5)    # (1+a)l - a l' = l: the contrast is off


def test_baselines_run(family):
    g = tokens(make("greedy"), family)
    assert tokens(make("beam", {"num_beams": "2"}), family) is not None
    s = tokens(make("sample"), family, seed=1)
    assert tokens(make("sample"), family, seed=1) == s
    assert all(len(t) <= N_NEW for t in g)


def test_prompt_too_long(family):
    from decoding.core import PromptTooLong
    fam, model, processor, ex = family
    long = Example("long", ex[0].image, " ".join(["cat"] * 600))
    for name in ("greedy", "vcd"):
        with pytest.raises(PromptTooLong, match="does not fit the model's context of 512") as e:
            make(name).decode(model, processor, [ex[1], long], max_new_tokens=N_NEW)
        assert e.value.row == 1


def test_onednn_linears_agree(family):
    """decoding/cpu.py (opt-in, CPU): the same logits as PyTorch's default matmuls, to float rounding."""
    import copy as _copy
    from decoding.core import Branch
    from decoding.cpu import use_onednn_linears
    from decoding.inputs import encode, render
    from decoding.methods import _to_model
    _, model, processor, ex = family
    fast = _copy.deepcopy(model)
    assert use_onednn_linears(fast) > 0
    inputs = _to_model(encode(processor, [e.image for e in ex], [render(processor, e.prompt) for e in ex]), model)
    torch.testing.assert_close(Branch(fast, inputs).logits(), Branch(model, inputs).logits(), atol=1e-4, rtol=1e-4)
