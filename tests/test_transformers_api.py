"""Every keyword halluc passes to transformers by name exists, under that name, in the installed
version. transformers renames keywords and keeps accepting the old name through ``**kwargs`` or a
deprecation shim that ignores it once the new one is set (5.24 moved the KV cache from
``past_key_values`` to ``cache``): a keyword that silently stops doing anything is the failure this
file exists to catch, on the locked version (``make test``) and the newest (``make test-latest``).
"""
import inspect

import pytest
import torch

torch.set_num_threads(1)

from halluc.testing import FAMILIES, build   # noqa: E402


def params(fn) -> set[str]:
    return set(inspect.signature(fn).parameters)


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    torch.manual_seed(0)
    return build(request.param)[0]


def test_generation_loop_keywords(model):
    """decoding/core.py's Branch drives a model with these hooks, by these names."""
    from decoding.core import cache_keyword, needs_pixels_every_step
    prep = params(model.prepare_inputs_for_generation)
    assert {"next_sequence_length", "is_first_iteration"} <= prep
    assert {"is_encoder_decoder"} <= params(model._update_model_kwargs_for_generation)
    assert {"inputs_tensor", "model_kwargs"} <= params(model._prepare_position_ids_for_generation)
    fwd = params(model.forward)
    lm = params(model.get_decoder().forward)           # where use_cache and the positions end up
    key = cache_keyword(model)
    assert key in fwd | prep and key in lm
    assert {"position_ids", "use_cache"} <= lm
    if model._supports_logits_to_keep():
        assert "logits_to_keep" in fwd
    if needs_pixels_every_step(model):      # BLIP: features passed pre-encoded, by this name
        assert params(model.get_image_features) & {"return_dict", "kwargs"}   # the output-control kwargs
        assert "mm_encoder_outputs" in fwd


def test_cache_constructor():
    from transformers import DynamicCache
    assert "config" in params(DynamicCache.__init__)


def test_generate_keywords_are_generation_config_fields():
    """decoding/methods.py's baselines pass these to ``generate``; an unknown one would be an error,
    a renamed one a silent default."""
    from transformers import GenerationConfig
    g = GenerationConfig()
    for k in ("max_new_tokens", "min_new_tokens", "pad_token_id", "suppress_tokens", "do_sample", "num_beams",
              "repetition_penalty", "length_penalty", "temperature", "top_k", "top_p", "eos_token_id"):
        assert hasattr(g, k), k


def test_loading_keywords():
    """halluc/models.py and detectors/hf.py load with these; safetensors only, offline."""
    from transformers import AutoProcessor, PreTrainedModel
    fp = params(PreTrainedModel.from_pretrained)
    assert {"local_files_only", "use_safetensors"} <= fp
    # dtype and device_map travel in **kwargs: check that the loader reads them by these names
    src = inspect.getsource(PreTrainedModel.from_pretrained)
    assert 'kwargs.pop("dtype"' in src.replace("'", '"') or "dtype" in fp
    assert "device_map" in src
    assert "local_files_only" in inspect.getsource(AutoProcessor.from_pretrained) or \
        "kwargs" in params(AutoProcessor.from_pretrained)


def test_logits_processor_classes():
    from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)
    assert "penalty" in params(RepetitionPenaltyLogitsProcessor.__init__)
    assert "temperature" in params(TemperatureLogitsWarper.__init__)
    assert "top_k" in params(TopKLogitsWarper.__init__)
    assert "top_p" in params(TopPLogitsWarper.__init__)


def test_training_argument_names():
    """halluc/pipelines/finetune/train.py builds TrainingArguments from these names; none may be dropped silently."""
    from halluc.pipelines.finetune import training_argument_names
    from transformers import TrainingArguments
    missing = set(training_argument_names()) - params(TrainingArguments.__init__)
    assert not missing, f"TrainingArguments no longer takes {sorted(missing)}"
