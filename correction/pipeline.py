"""The staged correction pipeline: records -> claims -> detector -> verdicts -> corrected records.

    import detectors
    from correction.pipeline import Corrector, Job, domain_for
    corr = Corrector(detectors.load("world-yolo"))        # or any detector by its registry name
    jobs = [Job(rec, rec["text"], domain_for(rec, rec["image"]), image_path=rec["image"], image_id=rec["image_id"])]
    out = corr.correct(jobs)      # the records with claims, evidence, corrected_text, edits added

A batch is parsed with one ``nlp.pipe`` call and sent to the detector with one ``detect_batch`` call
(each image once, with every phrase its caption needs). Bad input never stops a batch; the record
comes back with an ``error`` and its text unchanged:
- missing or unreadable image (only when the detector looks at pixels: oracles look annotations up,
  and their claims are still checked; attributes then stay unverifiable);
- empty caption; text that does not look English (few English function words, or mostly non-Latin
  letters); a detector failure on that record (the others of the batch are retried one by one); an
  exception while verifying or rewriting that caption.
A caption without objects simply has no claims. A caption longer than ``MAX_CHARS`` is processed up
to the last sentence end before the limit; the object words after it become unverifiable existence
claims and the rest of the text is kept as it is (``truncated_at`` says where).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from correction.claims import extract, parser, tail_claims
from correction.domain import Domain
from correction.rewrite import rewrite
from correction.verify import evidence_json, needed_phrases, verify

MAX_CHARS = 5000          # parsing is linear, but a runaway generation is not a caption


@dataclass
class Job:
    rec: dict
    text: str
    domain: Domain
    image_path: str | None = None
    image_id: object = None
    image: object = None               # a PIL image, loaded by the pipeline when None and a path is known


# ---------------------------------------------------------------- domains

def domain_for(rec: dict, image_path: str | None, default: Domain | None = None,
               variant: str = "singularize") -> Domain:
    """The domain a plug-in claims the record for (the controlled world's, for its records), else
    ``default`` (COCO's vocabulary when none is given)."""
    from halluc.domains import plugin_for
    plugin = plugin_for(rec, image_path)
    if plugin is not None:
        return plugin.correction_domain(rec, image_path, variant)
    return default or coco_domain(variant)


@lru_cache(maxsize=4)
def coco_domain(variant: str = "singularize") -> Domain:
    return Domain.coco(variant)


# ---------------------------------------------------------------- input checks

_LATIN = re.compile(r"[A-Za-z]")
_WORDS = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS
    return frozenset(STOP_WORDS)


def language_problem(text: str, domain: Domain) -> str | None:
    """Why ``text`` does not look like English, or None. Object and function words count as English."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "no letters (only symbols, emoji or invisible characters): nothing to check"
    if sum(bool(_LATIN.match(c)) for c in letters) / len(letters) < 0.8:
        return "not English text (mostly non-Latin letters)"
    words = [w.lower() for w in _WORDS.findall(text)]
    if len(words) < 4:
        return None
    stop, vocab = _english_words(), domain.chair.vocab.canonical
    share = sum(w in stop or w in vocab for w in words) / len(words)
    return None if share >= 0.15 else f"not English text ({share:.0%} English function/object words)"


def _cut(text: str) -> int:
    """Where processing stops: the last sentence end before MAX_CHARS (or the limit itself)."""
    if len(text) <= MAX_CHARS:
        return len(text)
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s)", text[:MAX_CHARS])]
    return ends[-1] if ends else MAX_CHARS


def open_image(path: str):
    from halluc.images import open_image as _open
    return _open(Path(path))


# ---------------------------------------------------------------- the pipeline

class Corrector:
    def __init__(self, detector, *, checker=None, grounding: bool = False, nlp=None, open_vocab: bool | None = None):
        self.detector = detector
        self.checker = checker
        self.grounding = grounding
        self.nlp = nlp or parser()[1]
        # Closed-vocabulary backends answer through a synonym table (``labels``); others read any phrase.
        self.open_vocab = (not hasattr(detector, "labels")) if open_vocab is None else open_vocab
        self.needs_pixels = getattr(detector, "keyed_by", "image") != "image_id"

    def correct(self, jobs: list[Job]) -> list[dict]:
        outs: list[dict] = [dict(j.rec) for j in jobs]
        errors: list[str | None] = [None] * len(jobs)
        cuts = [0] * len(jobs)
        for i, j in enumerate(jobs):
            if j.image is None and j.image_path:
                try:
                    j.image = open_image(j.image_path)
                except ValueError as e:
                    if self.needs_pixels:
                        errors[i] = str(e)
            elif j.image is None and self.needs_pixels:
                errors[i] = "no image (give the record an image path, or --images DIR)"
            if not isinstance(j.text, str) or not j.text.strip():
                errors[i] = "empty caption"
            elif (why := language_problem(j.text, j.domain)) is not None:
                errors[i] = why
            else:
                cuts[i] = _cut(j.text)
        todo = [i for i, j in enumerate(jobs) if cuts[i]]
        caps = dict(zip(todo, extract([jobs[i].text[:cuts[i]] for i in todo], [jobs[i].domain for i in todo],
                                      nlp=self.nlp, open_vocab=self.open_vocab)))
        phrases = {i: p for i in todo if errors[i] is None and (p := needed_phrases(caps[i]))}
        dets = self._detect([jobs[i] for i in phrases], list(phrases.values()))
        found = dict(zip(phrases, dets))
        for i, j in enumerate(jobs):
            out = outs[i]
            text = j.text if isinstance(j.text, str) else ""
            cap = caps.get(i)
            if isinstance(found.get(i), Exception):
                errors[i] = f"detector failed: {found[i]}"
            size = list(j.image.size) if j.image is not None else None
            if cap is not None and errors[i] is None:
                try:
                    verify(cap, found.get(i, []), image=j.image, checker=self.checker)
                    new, edits, stats = rewrite(cap, grounding=self.grounding, image_size=size)
                    out["evidence"] = evidence_json(self.detector, found.get(i, []), size)
                except Exception as e:     # noqa: BLE001 - one caption the rules trip on must not stop a run
                    errors[i] = f"correction failed: {type(e).__name__}: {e}"
            if cap is None or errors[i] is not None:
                new, edits, stats = text, [], {"sentences_removed": 0}
                for c in cap.claims if cap is not None else []:
                    c.reason = "not checked: see error"
            claims = [c.to_json(text) for c in cap.claims] if cap is not None else []
            if cap is not None and cuts[i] < len(text):
                why = f"beyond the {MAX_CHARS}-character processing limit"
                claims += [c.to_json(text) for c in tail_claims(text, cuts[i], j.domain, why)]
                new += text[cuts[i]:]
                out["truncated_at"] = cuts[i]
            out.update(claims=claims, corrected_text=new, edits=edits, sentences_removed=stats["sentences_removed"])
            if errors[i]:
                out["error"] = errors[i]
        return outs

    def _detect(self, jobs: list[Job], phrases: list[list[str]]) -> list:
        """Detections per job in one batched call; on failure, job by job (an Exception marks a failed job)."""
        from detectors.base import detect_batch
        if not jobs:
            return []
        images = [j.image for j in jobs]
        ids = [j.image_id for j in jobs]
        try:
            return detect_batch(self.detector, images, phrases, ids)
        except Exception:                      # find the record that broke the batch, keep the others
            out = []
            for im, ph, i in zip(images, phrases, ids):
                try:
                    out.append(detect_batch(self.detector, [im], [ph], [i])[0])
                except Exception as e:     # noqa: BLE001 - any backend error is that record's error
                    out.append(e)
            return out
