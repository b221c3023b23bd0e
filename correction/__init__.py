"""correction: Woodpecker-style post-hoc correction without an LLM (DESIGN.md §6).

    import detectors
    from correction.pipeline import Corrector, Job, domain_for
    corr = Corrector(detectors.load("oracle:coco"))
    out = corr.correct([Job(rec, rec["caption"], domain_for(rec, None), image_id=rec["image_id"])])
    out[0]["corrected_text"], out[0]["edits"], out[0]["claims"], out[0]["evidence"]

Stages, one module each:
- ``domain``: what is known about the captions and images (``Domain``: COCO's table and English, any
  synonyms file, or what a plug-in domain such as the controlled world hands in);
- ``claims`` (with ``lists``): existence / count / attribute / relation claims from a spaCy parse,
  objects found by CHAIR's own matcher;
- ``verify``: verdicts from detections (``detectors.Detector``), with ``attributes`` (pixel colour
  and size, or a VQA hook) for attributes and box geometry (``halluc.geometry``) for relations;
- ``rewrite`` (with ``regions``): deterministic minimal edits (``halluc.text.english`` for number,
  agreement and articles);
- ``pipeline``: batches, one detector call per image, bad input kept with an ``error``.
``halluc correct`` (``halluc/pipelines/correct.py``) runs it over a JSONL file with resume and a manifest.
"""
