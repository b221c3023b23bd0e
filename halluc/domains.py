"""Plug-in domains (the registry's ``domain`` kind): who claims a record, and what it knows.

    plugin = plugin_for(rec, image_path)     # the controlled world for its records, else None (COCO-like)
    plugin.correction_domain(rec, image_path, "singularize")

A plug-in is an object with ``name``, ``label`` (how its records are called), ``recognises(rec, image_path) -> bool``,
``correction_domain(rec, image_path, variant)`` (a ``correction.domain.Domain``), ``default_detector``,
and ``image_roots()`` (folders its records' images may come from).
General code finds plug-ins only through here, so it never imports one.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def plugins() -> tuple:
    from halluc.registry import names, resolve
    return tuple(resolve("domain", n) for n in names("domain"))


def plugin_for(rec: dict, image_path: str | None = None):
    """The plug-in that claims this record (by its id or where its image lives), or None."""
    image_path = image_path if isinstance(image_path, str) else None
    return next((p for p in plugins() if p.recognises(rec, image_path)), None)
