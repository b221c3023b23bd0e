"""Name-keyed registries of lazy ``"module:attr"`` targets, so that ``halluc ls`` and ``--help``
never import a heavy module (torch, transformers, spaCy) just to list what exists.

    fn = resolve("pope-parser", "vcd")      # imports halluc.metrics.pope only now

Later parts register decoders, detectors and metrics here by adding a line.
"""
from __future__ import annotations

import importlib

from decoding import DECODERS
from detectors import DETECTORS

REGISTRY: dict[str, dict[str, str]] = {
    "decoder": dict(DECODERS),
    "detector": dict(DETECTORS),
    "metric": {
        "chair": "halluc.metrics.chair:Chair",
        "pope": "halluc.metrics.pope:score_pope",
    },
    "chair-variant": {
        "singularize": "halluc.text.singularize:singularize",
        "lemma": "halluc.text.lemma:lemmatize_many",
    },
    "pope-parser": {
        "original": "halluc.metrics.pope:parse_original",
        "vcd": "halluc.metrics.pope:parse_vcd",
        "strict": "halluc.metrics.pope:parse_strict",
        "vlmevalkit": "halluc.metrics.pope:parse_vlmevalkit",
    },
}


def names(kind: str) -> list[str]:
    if kind not in REGISTRY:
        raise KeyError(f"unknown registry {kind!r}; valid: {', '.join(REGISTRY)}")
    return list(REGISTRY[kind])


def resolve(kind: str, name: str):
    table = REGISTRY.get(kind)
    if table is None:
        raise KeyError(f"unknown registry {kind!r}; valid: {', '.join(REGISTRY)}")
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; valid: {', '.join(table)}")
    module, attr = table[name].split(":")
    return getattr(importlib.import_module(module), attr)
