"""CHAIR (Rohrbach et al., EMNLP 2018): object hallucination in captions, computed exactly as the
published scorers do, so that numbers are comparable with papers (DESIGN.md §3).

    vocab = Vocabulary.coco()
    scorer = Chair(vocab, variant="singularize")
    gt = load_gt("builtin", variant="singularize")          # {image_id (str): {objects}}
    result = scorer.score([("id1", 226988, "A man rides a bus.")], gt)
    result.totals   # {"chair_s": ..., "chair_i": ..., "recall": ..., ...} in percent

Per caption: lower-case, NLTK word tokenisation, normalise every token (pattern's ``singularize``
or POS-tagged WordNet ``lemma``), merge two-token compounds left to right, drop ``seat`` when
``toilet`` is present, keep tokens that are synonyms and map them to canonical names. A mention is
hallucinated when its canonical name is not in the image's ground truth.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from halluc.assets import asset_path
from halluc.paths import cache_dir
from halluc.outputs import atomic_write_json

# Two-token phrases the original scorer treats as one word (LisaAnne/Hallucination chair.py).
COCO_COMPOUNDS = (
    "motor bike", "motor cycle", "air plane", "traffic light", "street light", "traffic signal",
    "stop light", "fire hydrant", "stop sign", "parking meter", "suit case", "sports ball",
    "baseball bat", "baseball glove", "tennis racket", "wine glass", "hot dog", "cell phone",
    "mobile phone", "teddy bear", "hair drier", "potted plant", "bow tie", "laptop computer",
    "stove top oven", "home plate", "train track",
)
# "baby bird" must not fire "person" (baby is a person synonym): qualified animals map to the animal.
COCO_ANIMALS = ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
                "giraffe", "animal", "cub")


def coco_compound_map() -> dict[str, str]:
    m = {w: w for w in COCO_COMPOUNDS}
    for a in COCO_ANIMALS:
        m[f"baby {a}"] = a
        m[f"adult {a}"] = a
    for v in ("jet", "train"):          # "passenger jet" is not a passenger
        m[f"passenger {v}"] = v
    m["bow tie"] = "tie"
    m["toilet seat"] = "toilet"
    m["wine glas"] = "wine glass"        # singularize turns "glass" into "glas"
    return m


@dataclass
class Vocabulary:
    """Object synonyms (first item of a line = canonical name) and the compound-merge table."""
    canonical: dict[str, str]            # every synonym -> canonical name
    compounds: dict[str, str]            # "w1 w2" (normalised tokens) -> word it counts as
    name: str = "custom"

    @staticmethod
    def parse_synonyms(text: str) -> dict[str, str]:
        # Split exactly like the reference (``line.strip().split(', ')``): entries that carry a
        # leading space in the table never match a token, and published numbers depend on that.
        canonical: dict[str, str] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            items = line.strip().split(", ")
            for s in items:
                canonical[s] = items[0]
        return canonical

    @classmethod
    def coco(cls) -> "Vocabulary":
        text = asset_path("coco_chair/synonyms.txt").read_text(encoding="utf-8")
        return cls(cls.parse_synonyms(text), coco_compound_map(), name="coco")

    @classmethod
    def from_file(cls, path: str | os.PathLike, compounds: dict[str, str] | None = None) -> "Vocabulary":
        """A synonym table for another world; multi-word synonyms become compounds by default. A file
        with no entry, or with a line whose first item (the canonical name) is empty, is an error."""
        from halluc.errors import BadInput
        from halluc.paths import read_text
        text = read_text(path, "--synonyms")
        for i, line in enumerate(text.splitlines(), 1):
            if "\x00" in line:
                raise BadInput(f"--synonyms {path}:{i}: a NUL byte: not a text synonym table")
            if line.strip() and not line.strip().split(", ")[0].strip():
                raise BadInput(f"--synonyms {path}:{i}: empty canonical name (want 'name, synonym, ...')")
        canonical = cls.parse_synonyms(text)
        if not canonical:
            raise BadInput(f"--synonyms {path}: no synonym lines (want one 'name, synonym, ...' line per object)")
        if compounds is None:
            compounds = {s: s for s in canonical if len(s.split()) == 2 and s == s.strip()}
        return cls(canonical, compounds, name=str(path))


def _normaliser(variant: str):
    """The variant's token normaliser (lists of tokens -> lists of normalised tokens), by registry name."""
    from halluc.registry import resolve
    return resolve("chair-variant", variant)


_SENT_END = re.compile(r"[.!?][\"')\]]*\s*$")
_LAST_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")


def drop_incomplete_sentence(text: str) -> str:
    """The 64-token protocol: a caption cut by the token limit loses its unfinished last sentence.

    A caption with no complete sentence at all is kept as it is (there is nothing better to score).
    """
    if _SENT_END.search(text):
        return text
    ends = list(_LAST_END.finditer(text))
    return text[: ends[-1].end()] if ends else text


@dataclass
class CaptionWords:
    words: list[str]        # matched synonyms as they appear (after normalising and merging)
    objects: list[str]      # canonical name of each match, with multiplicity
    idxs: list[int]         # position of each match in ``merged``
    merged: list[str]       # all tokens after normalising and merging ("words" in the reference)
    tokens: list[str] = field(default_factory=list)               # lower-cased tokens before normalising
    spans: list[tuple[int, int]] = field(default_factory=list)    # [start, end) in ``tokens`` per match


@dataclass
class ChairResult:
    per_caption: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


class Chair:
    """Scores captions against per-image ground-truth object sets."""

    def __init__(self, vocab: Vocabulary | None = None, variant: str = "singularize"):
        self.vocab = vocab or Vocabulary.coco()
        self.variant = variant
        self._normalise = _normaliser(variant)
        self._firsts = {c.split(" ")[0] for c in self.vocab.compounds}

    def caption_words(self, captions: list[str]) -> list[CaptionWords]:
        from halluc.text.tokenize import word_tokenize
        raw = [word_tokenize(c.lower()) for c in captions]
        return [self._match(toks, r) for toks, r in zip(self._normalise(raw), raw)]

    def _match(self, tokens: list[str], raw: list[str]) -> CaptionWords:
        compounds, canonical, firsts = self.vocab.compounds, self.vocab.canonical, self._firsts
        merged, starts, i, n = [], [], 0, len(tokens)
        while i < n:
            t = tokens[i]
            starts.append(i)          # where each merged word begins (claim extraction needs it)
            # Only a token that can start a compound is worth joining with its neighbour.
            if t in firsts and i + 1 < n and (pair := f"{t} {tokens[i + 1]}") in compounds:
                merged.append(compounds[pair])
                i += 2
            else:
                merged.append(t)
                i += 1
        starts.append(n)
        # "the seat of the toilet" must not count as a chair.
        drop_seat = "toilet" in merged and "seat" in merged
        words, objects, idxs = [], [], []
        for j, w in enumerate(merged):
            if w in canonical and not (drop_seat and w == "seat"):
                words.append(w)
                objects.append(canonical[w])
                idxs.append(j)
        return CaptionWords(words, objects, idxs, merged, list(raw),
                            [(starts[j], starts[j + 1]) for j in idxs])

    def score(self, items: Iterable[tuple[str, object, str]], gt: dict[str, set[str]]) -> ChairResult:
        """``items``: (record id, image id, caption). Every image id must be in ``gt``."""
        items = list(items)
        res = ChairResult()
        n_caps = n_halluc_caps = n_mentions = n_halluc = n_gt = n_covered = n_tokens = 0
        for (rid, image_id, caption), cw in zip(items, self.caption_words([c for _, _, c in items])):
            truth = gt[str(image_id)]
            halluc = [(w, o) for w, o in zip(cw.words, cw.objects) if o not in truth]
            covered = set(cw.objects) & truth
            n_caps += 1
            n_halluc_caps += bool(halluc)
            n_mentions += len(cw.objects)
            n_halluc += len(halluc)
            n_gt += len(truth)
            n_covered += len(covered)
            n_tokens += len(cw.merged)
            res.per_caption.append({
                "id": rid, "image_id": image_id, "caption": caption,
                "mscoco_hallucinated_words": [list(h) for h in halluc],
                "mscoco_gt_words": sorted(truth),
                "mscoco_generated_words": cw.objects,
                "hallucination_idxs": [i for i, o in zip(cw.idxs, cw.objects) if o not in truth],
                "words": cw.merged,
                "metrics": {"CHAIRs": int(bool(halluc)),
                            "CHAIRi": len(halluc) / len(cw.objects) if cw.objects else 0.0,
                            "Recall": len(covered) / len(truth) if truth else 0.0,
                            "Len": len(cw.merged)},
            })
        pct = lambda a, b: 100.0 * a / b if b else 0.0
        res.totals = {
            "chair_s": pct(n_halluc_caps, n_caps), "chair_i": pct(n_halluc, n_mentions),
            "recall": pct(n_covered, n_gt), "len": n_tokens / n_caps if n_caps else 0.0,
            "n_captions": n_caps, "n_mentions": n_mentions, "n_hallucinated": n_halluc,
            "variant": self.variant, "vocabulary": self.vocab.name,
        }
        return res


# ---------------------------------------------------------------- ground truth

def _read_json(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def load_gt(spec: str, variant: str = "singularize", vocab: Vocabulary | None = None,
            cache: Path | None = None) -> dict[str, set[str]]:
    """Ground-truth object sets per image id (as a string).

    ``spec``: ``builtin`` (the bundled COCO 2014 tables), a JSON(.gz) table ``{image_id: [objects]}``,
    or a folder / annotation file pair of COCO ``instances_*.json`` + ``captions_*.json`` from which
    the table is built (and cached as JSON under the cache dir).
    """
    if spec == "builtin":
        table = _read_json(asset_path(f"coco_chair/gt_objects_{variant}.json.gz"))
        return {str(k): set(v) for k, v in table.items()}
    p = Path(spec)
    if p.exists() and not p.is_dir():
        from halluc.paths import read_json
        data = read_json(p, "--gt")
        if isinstance(data, dict) and "annotations" in data:
            raise ValueError(f"--gt {p}: a COCO annotation file; pass the folder holding instances_*.json and "
                             "captions_*.json")
        return validate_table(data, f"--gt {p}", vocab)
    if p.is_dir():
        inst = sorted(p.glob("instances_*.json")) or sorted(p.glob("**/instances_*.json"))
        caps = sorted(p.glob("captions_*.json")) or sorted(p.glob("**/captions_*.json"))
        if not inst or not caps:
            raise ValueError(f"{p}: no COCO instances_*.json and captions_*.json found")
        return build_gt(inst, caps, variant, vocab or Vocabulary.coco(), cache)
    raise ValueError(f"--gt {spec!r}: not 'builtin', a JSON table or a folder of COCO annotations")


def validate_table(data, label: str, vocab: Vocabulary | None = None) -> dict[str, set[str]]:
    """``{image_id: [object, ...]}`` with objects that are canonical names of ``vocab``; anything else is
    an error naming the first bad entry (a table of strings would score every caption as hallucinated)."""
    from halluc.errors import BadInput
    if not isinstance(data, dict) or not data:
        raise BadInput(f"{label}: expected a non-empty JSON object {{image_id: [objects]}}, "
                       f"got {type(data).__name__}{' (empty)' if isinstance(data, dict) else ''}")
    names = set(vocab.canonical.values()) if vocab is not None else None
    out = {}
    for k, v in data.items():
        if not isinstance(v, list) or not all(isinstance(o, str) for o in v):
            raise BadInput(f"{label}: entry {k!r}: expected a list of object names, got {json.dumps(v)[:80]}")
        if names is not None and (unknown := [o for o in v if o not in names]):
            raise BadInput(f"{label}: entry {k!r}: {', '.join(map(repr, unknown[:3]))} not in the vocabulary "
                           f"({vocab.name}: {len(names)} canonical names); pass the --synonyms this table was built with")
        out[str(k)] = set(v)
    return out


def build_gt(instances: list[Path], captions: list[Path], variant: str, vocab: Vocabulary,
             cache: Path | None = None) -> dict[str, set[str]]:
    """Instance categories ∪ objects mentioned in the reference captions, per image."""
    h = hashlib.sha256(f"{variant}|{vocab.name}|".encode())
    for f in [*instances, *captions]:
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
    cached = (cache or cache_dir()) / "chair_gt" / f"{h.hexdigest()[:24]}.json"
    if cached.exists():
        return {k: set(v) for k, v in json.loads(cached.read_text()).items()}
    from halluc.errors import BadInput
    from halluc.paths import read_json
    gt: dict[str, set[str]] = {}
    scorer = Chair(vocab, variant)
    for f in [*instances, *captions]:
        data = read_json(f, "--gt")
        try:
            if f in instances:
                names = {c["id"]: c["name"] for c in data["categories"]}
                for img in data.get("images", []):
                    gt.setdefault(str(img["id"]), set())
                for a in data["annotations"]:
                    gt.setdefault(str(a["image_id"]), set()).add(vocab.canonical[names[a["category_id"]]])
            else:
                anns = data["annotations"]
                for a, cw in zip(anns, scorer.caption_words([a["caption"] for a in anns])):
                    gt.setdefault(str(a["image_id"]), set()).update(cw.objects)
        except (KeyError, TypeError, AttributeError) as e:
            raise BadInput(f"--gt {f}: not a COCO {'instances' if f in instances else 'captions'} file "
                           f"({type(e).__name__}: {e}); a category name must be in the vocabulary") from None
    atomic_write_json(cached, {k: sorted(v) for k, v in gt.items()})
    return gt
