"""The one registry: every named thing a user can choose, declared once, with what the CLI, ``halluc ls``,
the experiment runner, the table printers and the viewer need to know about it.

    names("decoder")                      # argparse choices, experiment validation, halluc ls
    entry("column", "chair_i").title      # "CHAIR_i": table headers; .better says which way is good
    resolve("pope-parser", "vcd")         # the function, imported only now (targets are "module:attr")
    make_decoder("vcd", {"alpha": "1"})   # a validated decode method object

Targets are strings, so listing never imports a heavy module (torch, transformers, spaCy) and the
registry, which sits in the core, points at domain packages and plug-ins without importing them.
A new decoding method, detector, metric, dataset or domain is one entry here (ARCHITECTURE.md).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    name: str
    target: str                      # "module:attr"
    help: str = ""
    title: str | None = None         # a column's header
    better: str | None = None        # "higher" | "lower" for a column
    meta: dict = field(default_factory=dict)


def _table(kind: str, rows: list[tuple]) -> dict[str, Entry]:
    return {r[0]: Entry(r[0], r[1], r[2] if len(r) > 2 else "", **(r[3] if len(r) > 3 else {})) for r in rows}


_M = "decoding.methods:"
_P = "decoding.params:"
REGISTRY: dict[str, dict[str, Entry]] = {
    "decoder": _table("decoder", [
        ("greedy", _M + "Greedy", "argmax through transformers' generate", {"meta": {"params": _P + "GreedyParams"}}),
        ("sample", _M + "Sample", "multinomial sampling, per-example generators",
         {"meta": {"params": _P + "SampleParams", "stochastic": True}}),
        ("beam", _M + "Beam", "beam search through generate", {"meta": {"params": _P + "BeamParams"}}),
        ("vcd", _M + "VCD", "visual contrastive decoding: a diffusion-noised image as the negative",
         {"meta": {"params": _P + "VCDParams", "contrastive": True, "seeded_negative": True}}),
        ("icd", _M + "ICD", "instruction contrastive decoding: a disturbing instruction as the negative",
         {"meta": {"params": _P + "ICDParams", "contrastive": True}}),
        ("vdd", _M + "VDD", "contrast with no image (the language prior)",
         {"meta": {"params": _P + "VDDParams", "contrastive": True}}),
        ("m3id", _M + "M3ID", "no-image contrast with a growing alpha",
         {"meta": {"params": _P + "M3IDParams", "contrastive": True}}),
    ]),
    "detector": _table("detector", [
        ("hf-grounding-dino", "detectors.hf:load_grounding_dino", "GroundingDINO through transformers (FOLDER or hub id)"),
        ("owlv2", "detectors.hf:load_owlv2", "OWLv2 through transformers (FOLDER or hub id)"),
        ("yolo", "detectors.yolo:load", "an ultralytics YOLO safetensors folder (halluc convert-yolo)"),
        ("groundingdino-py", "detectors.groundingdino_py:load", "the groundingdino-py package (own environment)"),
        ("oracle", "detectors.oracle:load", "ground-truth objects: oracle:coco, oracle:INSTANCES.json, oracle:world:DIR"),
        ("world-yolo", "halluc.world.detector:load", "YOLOv8n trained on the controlled world (plug-in)"),
    ]),
    "metric": _table("metric", [
        ("chair", "halluc.metrics.chair_protocols:METRIC", "CHAIR_s, CHAIR_i, recall of captions against a COCO-style table"),
        ("pope", "halluc.metrics.pope:METRIC", "POPE accuracy, precision, recall, F1, yes-ratio"),
        ("world", "halluc.world.metrics:METRIC", "controlled-world object CHAIR, partner rate, attribute, "
                  "relation and count errors (plug-in)"),
        ("amber", "halluc.metrics.amber:METRIC", "AMBER: generative CHAIR, Cover, Hal, Cog and discriminative "
                  "accuracy, precision, recall, F1 (both tasks, one response file)"),
    ]),
    "chair-variant": _table("chair-variant", [
        ("singularize", "halluc.text.singularize:singularize_many", "the original CHAIR, SHIELD, Maxlinn: pattern's singular"),
        ("lemma", "halluc.text.lemma:lemmatize_many", "OPERA, HALC, PAI, lmms-eval: POS-tagged WordNet lemmas"),
    ]),
    "chair-protocol": _table("chair-protocol", [
        ("chair", "halluc.text.singularize:singularize_many",
         "the original CHAIR: pattern-singularised captions x the singularize-built table",
         {"meta": {"normaliser": "singularize", "gt": "singularize", "citation":
                   "Rohrbach et al., Object Hallucination in Image Captioning, EMNLP 2018; scorer LisaAnne/Hallucination "
                   "utils/chair.py as packaged by Maxlinn/CHAIR-metric-standalone (used by SHIELD)"}}),
        ("opera", "halluc.text.lemma:lemmatize_many",
         "OPERA's scorer: NLTK-lemmatised captions x the singularize-built table",
         {"meta": {"normaliser": "lemma", "gt": "singularize", "citation":
                   "Huang et al., OPERA, CVPR 2024; scorer shikiw/OPERA chair.py (NLTK tagger + WordNet lemmas, "
                   "Maxlinn's chair.pkl ground truth)"}}),
        ("halc", "halluc.text.lemma:lemmatize_many",
         "HALC's scorer: NLTK-lemmatised captions x the lemma-built table",
         {"meta": {"normaliser": "lemma", "gt": "lemma", "citation":
                   "Chen et al., HALC, ICML 2024; scorer BillChan226/HALC (NLTK lemmas, its lemma-built chair.pkl)"}}),
    ]),
    "pope-parser": _table("pope-parser", [
        ("original", "halluc.metrics.pope_parsers:parse_original",
         "POPE's evaluate.py: first sentence, 'No'/'no'/'not' words; never unknown",
         {"meta": {"source": "RUCAIBox/POPE evaluate.py, as copied in haotian-liu/LLaVA llava/eval/eval_pope.py "
                             "@ 4241f08c6368 and CircleRadon/Osprey osprey/eval/pope/evaluate.py @ 75642bfafa32"}}),
        ("vcd", "halluc.metrics.pope_parsers:parse_vcd",
         "VCD/SHIELD's eval_pope.py: label-conditioned substrings; never unknown",
         {"meta": {"source": "DAMO-NLP-SG/VCD experiments/eval/eval_pope.py @ 039af55ecd68; hukcc/SHIELD @ 1a895894184f"}}),
        ("strict", "halluc.metrics.pope_parsers:parse_strict", "exactly yes or no, else unknown",
         {"meta": {"source": "this project"}}),
        ("vlmevalkit", "halluc.metrics.pope_parsers:parse_vlmevalkit",
         "VLMEvalKit's YOrN_Extraction: VQA punctuation cleaning, the word yes xor the word no",
         {"meta": {"source": "open-compass/VLMEvalKit vlmeval/dataset/utils/yorn.py @ 0c7163c9c71c; "
                             "vlmeval/smp/misc.py @ 4e85dcd302cc"}}),
        ("lmms-eval", "halluc.metrics.pope_parsers:parse_lmms_eval",
         "lmms-eval's pope task: exactly yes or no; an unknown is in neither FP nor FN",
         {"meta": {"source": "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/pope/utils.py @ 2c03baf04b36",
                   "unknown_counts_as_fn": False, "printed_yes_ratio": "labels"}}),
    ]),
    "dataset": _table("dataset", [
        (f"world-{s}", "halluc.world.builtin:dataset_items", f"the builtin world's {s} split",
         {"meta": {"kind": "caption", "split": s, "n": n}})
        for s, n in (("train", 2000), ("test", 300), ("bias", 300), ("control", 300), ("bias-hard", 300))
    ] + [
        (f"world-pope-{s}", "halluc.world.builtin:dataset_items", f"the builtin world's POPE questions, {s} sampling",
         {"meta": {"kind": "question", "split": "pope", "n": 300, "sampling": s}})
        for s in ("random", "popular", "adversarial")
    ] + [
        ("amber-generative", "halluc.metrics.amber_data:dataset_items",
         "AMBER's generative task: 1,004 images, 'Describe this image.' (needs --images: AMBER's image folder)",
         {"meta": {"kind": "caption", "needs_images": True, "n": 1004}}),
        ("amber-discriminative", "halluc.metrics.amber_data:dataset_items",
         "AMBER's discriminative task: 14,216 yes/no questions (needs --images: AMBER's image folder)",
         {"meta": {"kind": "question", "needs_images": True, "n": 14216}}),
    ]),
    "domain": _table("domain", [
        ("world", "halluc.world.domain:PLUGIN", "the controlled world: its records, vocabulary, grammar, detector"),
    ]),
    "negatives-source": _table("negatives-source", [
        ("world", "halluc.world.lrv:load_world", "a world split (scenes.jsonl): exact objects, hidden partners"),
        ("coco", "halluc.pipelines.negatives.sources:load_coco", "COCO instances (+ captions)"),
        ("vg", "halluc.pipelines.negatives.sources:load_vg", "a Visual-Genome-like JSON"),
    ]),
    "column": _table("column", [
        ("chair_s", "", "captions with a hallucinated object", {"title": "CHAIR_s", "better": "lower"}),
        ("chair_i", "", "object mentions that are hallucinated", {"title": "CHAIR_i", "better": "lower"}),
        ("recall", "", "ground-truth objects mentioned", {"title": "Recall", "better": "higher"}),
        ("len", "", "caption length in words", {"title": "Len"}),
        ("n_mentions", "", "object mentions", {"title": "mentions"}),
        ("partner_rate", "", "planted partner named while absent", {"title": "Partner", "better": "lower"}),
        ("partner_rate_control", "", "the same class named where no trigger is", {"title": "Partner(ctl)", "better": "lower"}),
        ("attribute_error", "", "wrong colour or size", {"title": "Attr err", "better": "lower"}),
        ("relation_error", "", "wrong spatial relation", {"title": "Rel err", "better": "lower"}),
        ("count_error", "", "wrong count", {"title": "Count err", "better": "lower"}),
        ("accuracy", "", "POPE accuracy", {"title": "Acc", "better": "higher"}),
        ("precision", "", "POPE precision", {"title": "Prec", "better": "higher"}),
        ("f1", "", "POPE F1", {"title": "F1", "better": "higher"}),
        ("yes_ratio", "", "share of yes answers", {"title": "Yes%"}),
        ("unknown", "", "answers the parser could not read", {"title": "unknown", "better": "lower"}),
        ("chair", "", "AMBER: generated objects that are hallucinated", {"title": "CHAIR", "better": "lower"}),
        ("cover", "", "AMBER: annotated objects mentioned", {"title": "Cover", "better": "higher"}),
        ("hal", "", "AMBER: responses with a hallucinated object", {"title": "Hal", "better": "lower"}),
        ("cog", "", "AMBER: the plausible-but-absent objects (cognition) named", {"title": "Cog", "better": "lower"}),
        ("amber_score", "", "AMBER score: (100 - CHAIR + F1) / 2", {"title": "AMBER", "better": "higher"}),
    ]),
}


def kinds() -> list[str]:
    return list(REGISTRY)


def names(kind: str, /, **meta) -> list[str]:
    """The names of ``kind``, optionally only those whose meta has each given value."""
    return [n for n, e in _kind(kind).items() if all(e.meta.get(k) == v for k, v in meta.items())]


# How an unknown name is said, per kind (the words users and tests know).
_SAID = {"decoder": "decode method", "pope-parser": "POPE parser", "chair-variant": "CHAIR variant",
         "chair-protocol": "CHAIR protocol"}


def entry(kind: str, name: str) -> Entry:
    table = _kind(kind)
    if name not in table:
        raise ValueError(f"unknown {_SAID.get(kind, kind)} {name!r}; valid: {', '.join(table)}")
    return table[name]


def resolve(kind: str, name: str):
    """The object an entry names, imported now."""
    return load_target(entry(kind, name).target)


def load_target(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def title(key: str) -> str:
    """A result key's column header (the key itself where none is registered)."""
    e = REGISTRY["column"].get(key)
    return e.title if e and e.title else key


def make_decoder(name: str, overrides: dict | None = None, **kw):
    """A decode method object; its parameters (strings from --set or YAML) are converted and checked."""
    return resolve("decoder", name)(decoder_params(name, overrides), **kw)


def decoder_params(name: str, overrides: dict | None = None):
    """The method's parameter dataclass; unknown keys and bad values are errors that name them."""
    parse = load_target("decoding.params:parse")        # by name: the core never imports a domain package
    e = entry("decoder", name)
    return parse(load_target(e.meta["params"]), overrides, name)


def _kind(kind: str) -> dict[str, Entry]:
    if kind not in REGISTRY:
        raise KeyError(f"unknown registry {kind!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[kind]
