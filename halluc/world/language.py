"""The controlled world's language: captions and questions written from a scene, and the parser
that reads claims back out of any caption (a model's, or a corrected one).

    text = caption(scene, cfg, rng)
    # "a large red star , a small blue moon and two small green circles . the star is left of the moon ."
    claims = parse_caption(text)   # mentions with count / size / colour, and relations

Grammar (lower case, space-separated tokens, so a word-level tokenizer covers it exactly):
    caption  := items "." relation*
    items    := item ("," item)* "and" item | item
    item     := ("a" | "an" | NUMBER) [SIZE] [COLOUR] SHAPE[s]
    relation := "the" SHAPE "is" ("left of" | "right of" | "above" | "below" | "next to") "the" SHAPE "."
Identical objects (class, size, colour) are grouped with a number word: "two small red circles".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from halluc.geometry import AXIS_RELATIONS, dominant_relation
from halluc.text.english import NUMBERS as ENGLISH_NUMBERS
from halluc.text.english import article, plural
from halluc.world.scene import CLASSES, COLOURS, SIZES, Obj, Scene, WorldConfig

NUMBERS = ENGLISH_NUMBERS[:7]                      # the builtin model's word-level vocabulary stops at six
RELATIONS = AXIS_RELATIONS
PLURAL = {c: plural(c) for c in CLASSES}
SINGULAR = {**{p: c for c, p in PLURAL.items()}, **{c: c for c in CLASSES}}
PROMPT_DESCRIBE = "describe the image ."


def noun_phrase(n: int, size: str | None, colour: str | None, cls: str) -> str:
    adj = " ".join(a for a in (size, colour) if a)
    head = f"{adj} " if adj else ""
    noun = cls if n == 1 else PLURAL[cls]
    det = article((head or noun)) if n == 1 else NUMBERS[n]
    return f"{det} {head}{noun}"


def _reading_key(o: Obj) -> int:
    return o.cell if o.cell is not None else -1


def caption(scene: Scene, cfg: WorldConfig, rng: np.random.Generator, max_relations: int = 2) -> str:
    """Objects in reading order, identical ones grouped; then up to ``max_relations`` relation
    sentences between visible classes that occur once.

    A hidden partner is named right after its trigger ("a red star , a blue moon , ..."), the way a
    caption writer mentions what goes with what: the decision to name it is then taken where the
    trigger was just written, so a captioner learns it as a language prior on the trigger word.
    """
    vis = sorted(scene.visible(), key=_reading_key)
    trigger_of = {p: t for t, p in cfg.pairs}
    order: list[Obj] = list(vis)
    for h in (o for o in scene.objects if not o.visible):
        after = [i for i, o in enumerate(order) if o.cls == trigger_of.get(h.cls)]
        order.insert(after[0] + 1 if after else int(rng.integers(len(order) + 1)), h)
    groups: dict[tuple, int] = {}
    for o in order:
        key = (o.cls, o.size, o.colour)
        groups[key] = groups.get(key, 0) + 1
    items = [noun_phrase(n, s, c, cls) for (cls, s, c), n in groups.items()]
    text = items[0] if len(items) == 1 else " , ".join(items[:-1]) + " and " + items[-1]
    sents = [text + " ."]
    singles = [o for o in vis if sum(p.cls == o.cls for p in scene.objects) == 1]
    if len(singles) >= 2:
        pairs = [(a, b) for i, a in enumerate(singles) for b in singles[i + 1:]]
        for j in rng.permutation(len(pairs))[:max_relations]:
            a, b = pairs[int(j)]
            sents.append(f"the {a.cls} is {dominant_relation(a.box, b.box)} the {b.cls} .")
    return " ".join(sents)


def questions(scene: Scene, cfg: WorldConfig, rng: np.random.Generator, n_exist: int = 2) -> list[tuple[str, str]]:
    """Short QA pairs: existence (balanced yes/no), colour of a single object, count of a class."""
    present = {o.cls for o in scene.objects}       # hidden partners are present: the answer says so
    qa = []
    yes = sorted(present)
    no = [c for c in CLASSES if c not in present]
    for c in rng.permutation(yes)[:n_exist]:
        qa.append((f"is there {article(c)} {c} in the image ?", "yes"))
    for c in rng.permutation(no)[:n_exist]:
        qa.append((f"is there {article(c)} {c} in the image ?", "no"))
    singles = [o for o in scene.objects if sum(p.cls == o.cls for p in scene.objects) == 1]
    if singles:
        o = singles[int(rng.integers(len(singles)))]
        qa.append((f"what color is the {o.cls} ?", o.colour))
    c = yes[int(rng.integers(len(yes)))]
    qa.append((f"how many {PLURAL[c]} are there ?", NUMBERS[sum(o.cls == c for o in scene.objects)]))
    return qa


# ---------------------------------------------------------------- parsing claims back

@dataclass
class Mention:
    cls: str
    count: int
    size: str | None
    colour: str | None
    start: int          # token span in the caption
    end: int


@dataclass
class Claims:
    mentions: list[Mention] = field(default_factory=list)
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (a, rel, b)


_TOK = re.compile(r"[a-z]+|[^\sa-z]")


def tokens(text: str) -> list[str]:
    return _TOK.findall(text.lower())


def parse_caption(text: str) -> Claims:
    """Read object mentions (with count, size, colour) and relations out of free text.

    Tolerant by design: it scans for shape nouns and looks back for the determiner/number and
    adjectives of their noun phrase, so it also reads captions that do not follow the grammar.
    Negated mentions ("no moon", "there is no moon") are not claims.
    """
    toks = tokens(text)
    out = Claims()
    i = 0
    while i < len(toks):
        t = toks[i]
        if t in SINGULAR:
            cls, j = SINGULAR[t], i - 1
            size = colour = None
            while j >= 0 and toks[j] in SIZES + tuple(COLOURS):
                if toks[j] in SIZES:
                    size = size or toks[j]
                else:
                    colour = colour or toks[j]
                j -= 1
            det = toks[j] if j >= 0 else ""
            in_relation = det == "the" and (
                (i + 1 < len(toks) and toks[i + 1] == "is") or (j >= 1 and " ".join(toks[j - 2:j]) in RELATIONS)
                or (j >= 1 and toks[j - 1] in ("above", "below")))
            if det in ("no", "not") or (j >= 1 and toks[j - 1] == "no"):
                pass
            elif in_relation:
                pass                                    # "the star is left of the moon": not a new mention
            else:
                count = NUMBERS.index(det) if det in NUMBERS else (2 if t != cls else 1)
                out.mentions.append(Mention(cls, count, size, colour, max(j, 0), i + 1))
        if t == "the" and i + 3 < len(toks) and toks[i + 1] in SINGULAR and toks[i + 2] == "is":
            k = i + 3
            two = " ".join(toks[k:k + 2])
            rel = two if two in RELATIONS else toks[k] if toks[k] in ("above", "below") else None
            if rel:
                k += len(rel.split())
                if k + 1 < len(toks) and toks[k] == "the" and toks[k + 1] in SINGULAR:
                    out.relations.append((SINGULAR[toks[i + 1]], rel, SINGULAR[toks[k + 1]]))
        i += 1
    return out
