"""decoding: decode methods behind one name registry (DESIGN.md §1, §5).

    from decoding import make
    m = make("vcd", {"alpha": "1", "greedy": "true"})     # validated; unknown keys name the valid ones
    outs = m.decode(model, processor, examples, max_new_tokens=64, seed=0, template="chat")

Baselines (greedy, sample, beam) run through transformers' ``generate``; vcd, icd, vdd and m3id share
one contrastive core (decoding/core.py). Importing this package does not import torch.
"""
from __future__ import annotations

import importlib

DECODERS = {
    "greedy": "decoding.methods:Greedy",
    "sample": "decoding.methods:Sample",
    "beam": "decoding.methods:Beam",
    "vcd": "decoding.methods:VCD",
    "icd": "decoding.methods:ICD",
    "vdd": "decoding.methods:VDD",
    "m3id": "decoding.methods:M3ID",
}
# Parameter classes, importable without torch (the CLI validates --set before loading a model).
PARAMS = {
    "greedy": "decoding.params:GreedyParams",
    "sample": "decoding.params:SampleParams",
    "beam": "decoding.params:BeamParams",
    "vcd": "decoding.params:VCDParams",
    "icd": "decoding.params:ICDParams",
    "vdd": "decoding.params:VDDParams",
    "m3id": "decoding.params:M3IDParams",
}
CONTRASTIVE = ("vcd", "icd", "vdd", "m3id")


def _load(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def names() -> list[str]:
    return list(DECODERS)


def _check(name: str) -> None:
    if name not in DECODERS:
        raise ValueError(f"unknown decode method {name!r}; valid: {', '.join(DECODERS)}")


def parse_params(name: str, overrides: dict | None = None):
    """The method's parameter dataclass, built from ``{key: value}`` (strings converted)."""
    from decoding.params import parse
    _check(name)
    return parse(_load(PARAMS[name]), overrides, name)


def make(name: str, overrides: dict | None = None, **kw):
    """A ready method object; its parameters are validated here."""
    p = parse_params(name, overrides)
    return _load(DECODERS[name])(p, **kw)
