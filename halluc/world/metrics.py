"""Hallucination metrics that only a world with exact ground truth allows: object CHAIR and recall,
the partner-hallucination rate of the planted co-occurrence, and attribute, relation and count
errors — all parsed from the caption text, so they apply to corrected captions too.

    scenes = load_scenes("world/bias")                     # {image_id: scene record}
    res = score_world([(id, image_id, text), ...], scenes)
    res.totals  # chair_s, chair_i, recall, partner_rate, partner_rate_control,
                # attribute_error, relation_error, count_error (percent) and their denominators

Definitions (per caption, against the *visible* objects):
- a mention is hallucinated when its class is not visible; CHAIR_i is micro over mentions;
- partner_rate: among captions of scenes where a trigger is visible and its partner is not, the share
  that mention the partner; partner_rate_control: the same partner class, on scenes where neither is
  visible (the class's base hallucination rate, to compare against);
- attribute_error: claimed sizes/colours of mentions of visible classes that the best-matching
  visible instance does not have, over all such claimed attributes;
- relation_error: relation claims between visible classes that no pair of instances satisfies;
- count_error: (caption, visible mentioned class) pairs whose summed claimed count is not the truth.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from halluc.world.language import parse_caption
from halluc.geometry import relation_holds
from halluc.world.scene import WorldConfig

DEFAULT_PAIRS = WorldConfig().pairs


def load_scenes(split_dir: str | Path) -> dict[str, dict]:
    """The scenes of a world split folder by image id. A malformed line is reported (file:line) and
    skipped; a folder that is not a split is an error."""
    from halluc.errors import BadInput
    from halluc.paths import input_dir
    from halluc.records import read_records
    d = input_dir(split_dir, "world split")
    p = d / "scenes.jsonl"
    if not p.exists():
        raise BadInput(f"{d}: not a world split folder: no scenes.jsonl (make one with `halluc world generate`)")
    out = {}
    for it in read_records(p, id_key="image_id", required={"objects": list}):
        bad = next((i for i, o in enumerate(it.rec["objects"])
                    if not isinstance(o, dict) or not isinstance(o.get("cls"), str)), None)
        if bad is not None:
            print(f"error: {p}:{it.line}: objects[{bad}]: expected an object with a 'cls' string", file=sys.stderr)
            continue
        r = dict(it.rec)
        r["_dir"] = str(d)
        out[it.id] = r
    return out


@dataclass
class WorldResult:
    per_caption: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


def score_caption(text: str, scene: dict, pairs=DEFAULT_PAIRS, cell: float = 16.0) -> dict:
    vis = [o for o in scene["objects"] if o.get("visible", True)]
    classes = Counter(o["cls"] for o in vis)
    claims = parse_caption(text)
    ment = claims.mentions
    halluc = [m.cls for m in ment if m.cls not in classes]
    mentioned = {m.cls for m in ment}
    attr_claims = attr_err = 0
    for m in ment:
        if m.cls not in classes:
            continue
        claimed = [(k, v) for k, v in (("size", m.size), ("colour", m.colour)) if v]
        if not claimed:
            continue
        best = max((sum(o[k] == v for k, v in claimed) for o in vis if o["cls"] == m.cls))
        attr_claims += len(claimed)
        attr_err += len(claimed) - best
    rel_claims = rel_err = 0
    for a, rel, b in claims.relations:
        if a in classes and b in classes:
            rel_claims += 1
            ok = any(relation_holds(rel, oa["box"], ob["box"], cell)
                     for oa in vis if oa["cls"] == a for ob in vis if ob["cls"] == b and ob is not oa)
            rel_err += not ok
    claimed_count = Counter()
    for m in ment:
        claimed_count[m.cls] += m.count
    count_pairs = [c for c in claimed_count if c in classes]
    count_err = sum(claimed_count[c] != classes[c] for c in count_pairs)
    partner = {"bias": 0, "bias_hit": 0, "control": 0, "control_hit": 0}
    for t, p in pairs:
        if p in classes:
            continue
        key = "bias" if t in classes else "control"
        partner[key] += 1
        partner[key + "_hit"] += p in mentioned
    return {"mentions": [m.cls for m in ment], "hallucinated": halluc, "gt": sorted(classes),
            "recall": len(mentioned & set(classes)) / len(classes) if classes else 0.0,
            "attr": [attr_claims, attr_err], "rel": [rel_claims, rel_err], "count": [len(count_pairs), count_err],
            "partner": partner}


def score_world(items, scenes: dict[str, dict], pairs=DEFAULT_PAIRS) -> WorldResult:
    res = WorldResult()
    agg = Counter()
    for rid, image_id, text in items:
        s = score_caption(text, scenes[str(image_id)], pairs)
        res.per_caption.append({"id": rid, "image_id": image_id, "text": text, **s})
        agg["caps"] += 1
        agg["halluc_caps"] += bool(s["hallucinated"])
        agg["mentions"] += len(s["mentions"])
        agg["halluc"] += len(s["hallucinated"])
        agg["gt"] += len(s["gt"])
        agg["covered"] += round(s["recall"] * len(s["gt"]))
        for k in ("attr", "rel", "count"):
            agg[k + "_n"] += s[k][0]
            agg[k + "_err"] += s[k][1]
        for k, v in s["partner"].items():
            agg["p_" + k] += v
    pct = lambda a, b: 100.0 * a / b if b else 0.0
    res.totals = {
        "chair_s": pct(agg["halluc_caps"], agg["caps"]), "chair_i": pct(agg["halluc"], agg["mentions"]),
        "recall": pct(agg["covered"], agg["gt"]),
        "partner_rate": pct(agg["p_bias_hit"], agg["p_bias"]),
        "partner_rate_control": pct(agg["p_control_hit"], agg["p_control"]),
        "attribute_error": pct(agg["attr_err"], agg["attr_n"]),
        "relation_error": pct(agg["rel_err"], agg["rel_n"]),
        "count_error": pct(agg["count_err"], agg["count_n"]),
        "n_captions": agg["caps"], "n_mentions": agg["mentions"], "n_partner_eligible": agg["p_bias"],
        "n_partner_control": agg["p_control"], "n_attribute_claims": agg["attr_n"],
        "n_relation_claims": agg["rel_n"], "n_count_claims": agg["count_n"],
    }
    return res


# ---------------------------------------------------------------- as a registered caption metric

def find_scenes(items, dirs=None) -> dict:
    """Scenes of the world split folders ``dirs``; without them, of the splits the records' images lie in,
    else of the builtin splits their image_ids name (100000 x split index + n)."""
    from halluc.world.domain import split_of
    dirs = list(dirs or [])
    if not dirs:
        dirs = list(dict.fromkeys(d for d in (split_of(it.rec.get("image")) for it in items) if d))
    if not dirs:
        from halluc.world.builtin import DATASETS, split_dir
        from halluc.world.generate import SPLITS
        splits = {int(it.rec.get("image_id", 0)) // 100000 for it in items if str(it.rec.get("image_id", "")).isdigit()}
        names = {v[0]: k for k, v in DATASETS.items()}
        dirs = [split_dir(names[SPLITS[i]]) for i in sorted(splits) if i < len(SPLITS) and SPLITS[i] in names]
    scenes = {}
    for d in dirs:
        scenes.update(load_scenes(d))
    return scenes


class WorldMetric:
    """``halluc eval world``: the world's metrics as the evaluate pipeline runs them."""
    name, kind = "world", "captions"
    description = ("Score captions of controlled-world scenes against their exact ground truth. "
                   "Records need an image_id (the world's integer ids) and a text.")
    columns = ("chair_s", "chair_i", "recall", "partner_rate", "partner_rate_control", "attribute_error",
               "relation_error", "count_error")

    def add_options(self, p) -> None:
        p.add_argument("--world", type=Path, action="append", help="world split folder(s) holding scenes.jsonl "
                       "(default: found from the records' image paths, else the builtin splits)")

    def tag(self, args) -> str:
        return "world"

    def image_key(self, args) -> str:
        return "image_id"

    def ground_truth(self, args, items) -> dict:
        return find_scenes(items, args.world)

    def missing(self, args, image_id) -> str:
        return f"scene {image_id!r} not found in the world splits"

    def text(self, args, text: str) -> str:
        return text

    def score(self, args, rows, scenes) -> WorldResult:
        return score_world(rows, scenes)

    def title(self, args) -> str:
        return "world metrics"


METRIC = WorldMetric()
