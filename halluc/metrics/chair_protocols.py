"""``halluc eval chair``: CHAIR under a named protocol, as a registered metric.

    halluc eval chair captions.jsonl --protocol opera        # NLTK-lemmatised captions x the singularize table
    halluc eval chair captions.jsonl --protocol chair --gt my_table.json --synonyms my_synonyms.txt

A protocol (registry kind ``chair-protocol``) names the normaliser the captions are read with, the
ground-truth table they are scored against, and the published scorer it reproduces; results.json
records all three, the table's sha256 and (lemma protocols) the tagger model's.
"""
from __future__ import annotations

from pathlib import Path

from halluc.assets import asset_path
from halluc.metrics.chair import Chair, ChairResult, Vocabulary, drop_incomplete_sentence, load_gt


class ChairMetric:
    """``halluc eval chair``: CHAIR under a named protocol (registry ``chair-protocol``: which normaliser
    reads the captions, which ground-truth table they are scored against, whom it reproduces)."""
    name, kind = "chair", "captions"
    description = ("CHAIR (Rohrbach et al. 2018) exactly as the published scorers, by protocol: chair (the original, "
                   "SHIELD), opera (OPERA's Table 2), halc. Records need an image_id and a caption (text/caption/answer).")
    columns = ("chair_s", "chair_i", "recall", "len", "n_mentions")
    ALIASES = {"singularize": "chair", "lemma": "halc"}        # the retired --variant, by what it computed

    def add_options(self, p) -> None:
        from halluc.registry import entry, names
        p.add_argument("--protocol", choices=names("chair-protocol"), help="; ".join(
            f"{n}: {entry('chair-protocol', n).help}" for n in names("chair-protocol")) + " (default chair)")
        p.add_argument("--variant", choices=list(self.ALIASES), help="the older name: singularize = --protocol chair, "
                       "lemma = --protocol halc")
        p.add_argument("--gt", default="builtin", help="ground truth: builtin (the protocol's COCO 2014 table), a JSON "
                       "table {image_id: [objects]}, or a folder of COCO instances_*.json + captions_*.json")
        p.add_argument("--synonyms", type=Path, help="synonym table for another vocabulary (default: COCO's)")
        p.add_argument("--short", action="store_true",
                       help="64-token protocol: drop the last incomplete sentence before scoring")
        p.add_argument("--image-key", default="image_id", help="field holding the image id (default %(default)s)")

    def protocol(self, args) -> str:
        p = getattr(args, "protocol", None)
        v = self.ALIASES.get(getattr(args, "variant", None) or "")
        if p and v and p != v:
            raise ValueError(f"--protocol {p} and --variant {args.variant} (= --protocol {v}) disagree; give one")
        return p or v or "chair"

    def tag(self, args) -> str:
        p = self.protocol(args)
        return "chair" if p == "chair" else f"chair-{p}"

    def image_key(self, args) -> str:
        return args.image_key

    def ground_truth(self, args, items) -> dict:
        from halluc.errors import BadInput
        from halluc.registry import entry
        if args.gt == "builtin" and not args.synonyms:
            from halluc.domains import plugin_for
            claimed = [(it, p) for it in items if (p := plugin_for(it.rec, it.rec.get("image")))]
            if claimed:    # a plug-in's image ids (100001, ...) are COCO ids too: scoring them here is silently wrong
                it, p = claimed[0]
                raise BadInput(f"{args.file}:{it.line}: {p.label} records ({len(claimed)} of {len(items)}, id "
                               f"{it.id!r}); the builtin ground truth is COCO's. Score them with `halluc eval "
                               f"{p.name}`, or pass their split's --gt and --synonyms")
        self.vocab = Vocabulary.from_file(args.synonyms) if args.synonyms else Vocabulary.coco()
        table = entry("chair-protocol", self.protocol(args)).meta["gt"]
        return load_gt(args.gt, table, self.vocab)

    def missing(self, args, image_id) -> str:
        return f"image {image_id!r} is not in the ground truth ({args.gt})"

    def text(self, args, text: str) -> str:
        return drop_incomplete_sentence(text) if args.short else text

    def score(self, args, rows, gt) -> ChairResult:
        from halluc.registry import entry
        name = self.protocol(args)
        meta = entry("chair-protocol", name).meta
        res = Chair(self.vocab, meta["normaliser"]).score(rows, gt)
        res.totals.update(protocol=name, normaliser=meta["normaliser"], citation=meta["citation"], short=args.short,
                          gt=args.gt, gt_table=meta["gt"] if args.gt == "builtin" else args.gt,
                          gt_sha256=gt_fingerprint(args.gt, meta["gt"]))
        if meta["normaliser"] == "lemma":
            from halluc.text.lemma import tagger_info
            res.totals["tagger"] = tagger_info()
        return res

    def title(self, args) -> str:
        from halluc.registry import entry
        meta = entry("chair-protocol", self.protocol(args)).meta
        gt = f"the builtin {meta['gt']}-built table" if args.gt == "builtin" else f"gt={args.gt}"
        return (f"CHAIR, protocol {self.protocol(args)} ({meta['normaliser']} captions x {gt}"
                f"{', short' if args.short else ''})")


def gt_fingerprint(spec: str, table: str) -> str | None:
    """sha256 of the ground truth a score was computed against: the bundled table's file, the given JSON
    table, or (a COCO folder) the annotation files it was built from, in name order."""
    from halluc.provenance import sha256_files
    if spec == "builtin":
        return sha256_files([asset_path(f"coco_chair/gt_objects_{table}.json.gz")])
    p = Path(spec)
    files = [p] if p.is_file() else sorted([*p.glob("**/instances_*.json"), *p.glob("**/captions_*.json")])
    return sha256_files(files) if files else None


METRIC = ChairMetric()
