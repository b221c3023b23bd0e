"""AMBER's data (Wang et al., 2023; junyangwang0410/AMBER, Apache-2.0), shipped in ``halluc/assets/amber/``,
and AMBER as a ``halluc decode`` dataset (the images are the user's: AMBER distributes them separately).

    ann = annotation(1005)              # {"id", "type", "truth", ("hallu")}
    association()                       # relation.json: object -> words that stand for it
    safe_words()                        # safe_words.txt, as the reference reads it
    initial_counts()                    # metrics.txt: the reference's counters before the first response
    queries("generative")               # [{"id", "image", "query"}] in AMBER's order
    dataset_items("amber-discriminative", Path("AMBER/image"))   # what halluc decode reads

    halluc decode --dataset amber-generative --images AMBER/image --out gen.jsonl
    halluc decode --dataset amber-discriminative --images AMBER/image --out dis.jsonl

The files are AMBER's own, byte for byte (the large JSONs gzipped); tests compare them with the
reference copy.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from halluc.assets import asset_path

TASKS = ("generative", "discriminative")
DATASETS = {"amber-generative": "generative", "amber-discriminative": "discriminative"}


@lru_cache(maxsize=None)
def _json(name: str):
    from halluc.paths import read_json
    return read_json(asset_path(f"amber/{name}"))


@lru_cache(maxsize=1)
def annotations() -> list[dict]:
    """All 15,220 annotations; AMBER's scorer finds id N at position N - 1, so the file must be in id order."""
    ann = _json("annotations.json.gz")
    if any(a.get("id") != i for i, a in enumerate(ann, 1)):
        raise RuntimeError(f"{asset_path('amber/annotations.json.gz')}: not in id order 1..N (a broken install?)")
    return ann


def n_ids() -> int:
    return len(annotations())


def annotation(amber_id: int) -> dict:
    return annotations()[amber_id - 1]


def association() -> dict[str, list[str]]:
    """relation.json: each object's association words (the words a description may use for it)."""
    return _json("relation.json")


@lru_cache(maxsize=1)
def safe_words() -> tuple[str, ...]:
    """safe_words.txt as the reference reads it: each line up to its newline, blank lines included."""
    from halluc.paths import read_text
    lines = read_text(asset_path("amber/safe_words.txt")).replace("\r\n", "\n").split("\n")
    if lines[-1] == "":          # a final newline ends the last line; it does not start another
        lines.pop()
    return tuple(lines)


@lru_cache(maxsize=1)
def initial_counts() -> dict[str, float]:
    """metrics.txt: every counter's starting value (0 for scores, 0.001 for denominators, which is how
    the reference avoids dividing by zero; its printed numbers carry that offset)."""
    from halluc.paths import read_text
    out = {}
    for line in read_text(asset_path("amber/metrics.txt")).splitlines():
        parts = line.strip().split("=")
        if len(parts) == 2:
            out[parts[0].strip()] = ast.literal_eval(parts[1].strip())
    return out


def queries(task: str) -> list[dict]:
    if task not in TASKS:
        raise ValueError(f"unknown AMBER task {task!r}; valid: {', '.join(TASKS)}")
    return _json(f"query_{task}.json.gz")


# ---------------------------------------------------------------- as a decode dataset

def dataset_items(name: str, images: Path) -> dict:
    """A registered AMBER dataset as the decode pipeline reads it (see halluc/pipelines/inputs.py).

    Generative: AMBER's one prompt per image, ids ``amber/N`` with ``image_id`` N. ``max_new_tokens`` is
    left to decode's caption default (512): AMBER fixes no limit, and a cap that cuts descriptions
    short removes nouns and lowers Cover, so the cap should never bind (LLaVA-1.5 answers "Describe
    this image." in about 100 tokens). Discriminative: the queries as a POPE-format question file
    (question_id, image, text), so records carry ``question_id`` N.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown AMBER dataset {name!r}; valid: {', '.join(DATASETS)}")
    images = Path(images)
    qs = queries(DATASETS[name])
    if DATASETS[name] == "generative":
        prompts = {q["query"] for q in qs}
        if len(prompts) != 1:
            raise RuntimeError(f"AMBER's generative queries use {len(prompts)} prompts; expected one")
        return {"kind": "caption", "prompt": prompts.pop(), "max_new_tokens": None, "dir": images,
                "items": [(f"amber/{q['id']}", images / q["image"], q["id"]) for q in qs]}
    return {"kind": "question", "questions": question_file(), "images": images, "prefix": "amber", "dir": images}


def question_file() -> Path:
    """The discriminative queries as POPE-format JSONL in the cache, written once (atomically, so that
    concurrent decode processes never read half a file); its name carries the shipped file's hash."""
    from halluc.outputs import atomic_write_jsonl
    from halluc.paths import cache_dir
    from halluc.provenance import sha256_files
    digest = sha256_files([asset_path("amber/query_discriminative.json.gz")])[:12]
    path = cache_dir() / "amber" / f"discriminative-{digest}.jsonl"
    if not path.is_file():
        atomic_write_jsonl(path, [{"question_id": q["id"], "image": q["image"], "text": q["query"]}
                                  for q in queries("discriminative")])
    return path
