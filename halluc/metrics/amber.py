"""``halluc eval amber``: AMBER (Wang et al., "AMBER: An LLM-free Multi-dimensional Benchmark for MLLMs
Hallucination Evaluation", 2023), both tasks, computed as AMBER's reference ``inference.py`` does.

    halluc eval amber responses.json                  # AMBER's own format: [{"id": 1, "response": "..."}, ...]
    halluc eval amber answers.jsonl --parser vlmevalkit   # halluc decode records; a POPE parser reads yes/no
    halluc eval amber all.json --spacy-model /models/en_core_web_lg   # the reference's synonym matching

Input: AMBER's JSON list, or JSON lines (``halluc decode --dataset amber-*`` records): the AMBER id in
``question_id``, ``id`` or ``image_id`` (``amber/1005`` is read as 1005), the text in ``text``,
``response`` or ``answer`` (``--id-key``/``--text-key`` name others). A response whose id is not an
AMBER id is a bad line (``file:line: field: message``), reported and skipped (``--strict``: fatal).
The task of each response is its annotation's: a partial set scores what is there, and the results
name the tasks present (the reference's g, de, da, dr) and only those sections are reported.

Discriminative answers are read as the reference reads them: exactly ``Yes`` or ``No`` (case and
white space count), anything else unreadable (counted, and wrong); ``--parser NAME`` reads them with
a registered POPE parser instead. Generative: see halluc/metrics/amber_generative.py. Without
``--spacy-model`` (a spaCy model with vectors; AMBER uses en_core_web_lg) the synonym checks are
skipped: results say ``"approximate": true`` and the table says so.

Outputs (``--out-dir``, default FILE's name + ``.amber``): results.json (flat ``chair cover hal cog
accuracy precision recall f1 amber_score``, exact percentages; a block per section; counts; and
``amber_printed``, the reference's rounded numbers, which the table shows), scores.jsonl (one row per
response) and run.json. AMBER score = (100 - CHAIR + F1) / 2, given both tasks in full
(all three discriminative dimensions).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from halluc.errors import BadInput
from halluc.metrics import amber_data as data
from halluc.metrics.amber_generative import Judge, SpacySimilarity, extract_nouns
from halluc.metrics.amber_scores import (Tally, add_discriminative, add_generative, dimension, evaluation_type,
                                         numbers, present)
from halluc.records import BadLine

ID_KEYS = ("question_id", "id", "image_id")
TEXT_KEYS = ("text", "response", "answer")
APPROXIMATE = "approximate: no vector model"
FLAT = ("chair", "cover", "hal", "cog", "accuracy", "precision", "recall", "f1", "amber_score")


@dataclass(frozen=True)
class Response:
    line: int
    id: int
    text: str


class _Bad(Exception):
    """One record's problem: (field or None, message)."""


# ---------------------------------------------------------------- reading responses

def _first_char(path: Path) -> str:
    """The first non-white-space character of the file ('' if none), read a block at a time."""
    with open(path, "rb") as f:
        while block := f.read(1 << 16):
            s = block.lstrip().lstrip(b"\xef\xbb\xbf").lstrip()
            if s:
                return chr(s[0])
    return ""


def _list_lines(text: str, n: int) -> list[int]:
    """The line each item of a (valid) top-level JSON list starts on."""
    dec, ws, lines = json.JSONDecoder(), " \t\r\n", []
    pos = text.index("[") + 1
    for _ in range(n):
        while text[pos] in ws or text[pos] == ",":
            pos += 1
        lines.append(text.count("\n", 0, pos) + 1)
        _, pos = dec.raw_decode(text, pos)
    return lines


def _records(path: Path, strict: bool) -> tuple[str, list[tuple[int, object]], list[BadLine]]:
    """(format, [(line, record)], bad lines) of AMBER's JSON list or a JSON-lines file."""
    from halluc.paths import input_file, read_json, read_text
    input_file(path)
    first = _first_char(path)
    if not first:
        raise BadInput(f"{path}: file is empty (no responses)")
    if first == "[":
        items = read_json(path)
        return "amber-json", list(zip(_list_lines(read_text(path), len(items)), items)), []
    from halluc.records import ReadReport, read_records
    report = ReadReport(echo=False)
    recs = [(it.line, it.rec) for it in read_records(path, need_id=False, strict=strict, report=report)]
    return "jsonl", recs, report.bad


def _field(rec: dict, override: str | None, keys: tuple[str, ...]):
    for k in ((override,) if override else keys):
        if rec.get(k) is not None:
            return k, rec[k]
    raise _Bad(override or keys[0], f"missing (looked for {override or ', '.join(keys)})")


def _amber_id(key: str, value) -> int:
    if isinstance(value, str) and value.removeprefix("amber/").isdecimal():     # "amber/1005": halluc decode's ids
        value = int(value.removeprefix("amber/"))
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(key, f"expected an AMBER id (an integer, or 'amber/N'), got {value!r}")
    if not 1 <= value <= data.n_ids():
        raise _Bad(key, f"unknown AMBER id {value} (the annotations hold ids 1-{data.n_ids()})")
    return value


def _response(rec, args) -> tuple[int, str]:
    if not isinstance(rec, dict):
        raise _Bad(None, f"expected a JSON object, got {type(rec).__name__}")
    key, value = _field(rec, args.id_key, ID_KEYS)
    rid = _amber_id(key, value)
    if not args.text_key and not any(rec.get(k) is not None for k in TEXT_KEYS) and isinstance(rec.get("error"), str):
        raise _Bad("error", f"no text: an earlier stage failed on this record ({rec['error']})")
    key, text = _field(rec, args.text_key, TEXT_KEYS)
    if not isinstance(text, str):
        raise _Bad(key, f"expected a string, got {type(text).__name__}")
    return rid, text


def read_responses(args) -> tuple[str, list[Response], list[BadLine]]:
    """Every scoreable response of ``args.file`` in file order, and the bad lines (a duplicate id is
    one: each AMBER item is answered once)."""
    fmt, recs, bad = _records(args.file, args.strict)
    out, seen = [], set()
    for line, rec in recs:
        try:
            rid, text = _response(rec, args)
            if rid in seen:
                raise _Bad("id", f"duplicate AMBER id {rid}")
        except _Bad as e:
            b = BadLine(str(args.file), line, *e.args)
            if args.strict:
                raise BadInput(str(b)) from None
            bad.append(b)
            continue
        seen.add(rid)
        out.append(Response(line, rid, text))
    if not out:
        why = f"{bad[0]}; " if bad else ""
        raise BadInput(f"{why}no response in {args.file} could be scored ({len(bad)} bad)" if bad else
                       f"{args.file}: no responses")
    return fmt, out, bad


# ---------------------------------------------------------------- scoring

def answer_reader(parser: str):
    """(text, truth) -> "Yes" | "No" | None: AMBER's exact match, or a registered POPE parser."""
    if parser == "amber":
        return lambda text, truth: text if text in ("Yes", "No") else None
    from halluc.registry import resolve
    parse = resolve("pope-parser", parser)
    return lambda text, truth: {"yes": "Yes", "no": "No"}.get(parse(text, truth))


def score(responses: list[Response], parser: str = "amber", similar=None) -> tuple[Tally, list[dict]]:
    """The reference's counters over ``responses`` (file order), and one row per response."""
    t = Tally(data.initial_counts())
    judge = Judge(data.association(), data.safe_words(), similar)
    read = answer_reader(parser)
    rows = []
    for r in responses:
        ann = data.annotation(r.id)
        if ann["type"] == "generative":
            s = judge.score(extract_nouns(r.text), ann)
            add_generative(t, s)
            rows.append({"id": r.id, "line": r.line, "type": ann["type"], "task": "generative", "nouns": s.nouns,
                         "hallucinated": [n for n, h in zip(s.nouns, s.hallucinated) if h],
                         "truth_covered": [o for o, c in zip(ann["truth"], s.truth_covered) if c],
                         "hallu_covered": [o for o, c in zip(ann["hallu"], s.hallu_covered) if c],
                         "response": r.text})
        else:
            dim, answer = dimension(ann["type"]), read(r.text, ann["truth"])
            add_discriminative(t, dim, ann["truth"], answer)
            rows.append({"id": r.id, "line": r.line, "type": ann["type"], "task": "discriminative",
                         "dimension": dim, "truth": ann["truth"], "parsed": answer,
                         "correct": answer is not None and answer.lower() == ann["truth"], "response": r.text})
    return t, rows


def results(t: Tally, rows: list[dict], parser: str, synonyms: dict | None) -> dict:
    """results.json: flat exact percentages, a block per section, counts, and the reference's printout."""
    exact, printed = numbers(t)
    tasks = present(t)
    gen, dis = exact.get("generative"), exact.get("discriminative")
    complete = gen is not None and all(k in tasks for k in ("de", "da", "dr"))
    flat = {k: (gen or {}).get(k) for k in ("chair", "cover", "hal", "cog")}
    flat |= {k: (dis or {}).get(k) for k in ("accuracy", "precision", "recall", "f1")}
    flat["amber_score"] = (100 - gen["chair"] + dis["f1"]) / 2 if complete else None
    dis_rows = [r for r in rows if r["task"] == "discriminative"]
    approximate = gen is not None and synonyms is None
    return {**flat, "unknown": sum(r["parsed"] is None for r in dis_rows), **exact,
            "counts": {"responses": len(rows), "generative": len(rows) - len(dis_rows), "discriminative": len(dis_rows),
                       "unreadable": sum(r["parsed"] is None for r in dis_rows),
                       "of_generative": len(data.queries("generative")),
                       "of_discriminative": len(data.queries("discriminative"))},
            "tasks_present": tasks, "evaluation_type": evaluation_type(tasks), "parser": parser,
            "approximate": approximate, "synonym_matching": "spacy-vectors" if synonyms else "exact",
            **({"synonym_model": synonyms} if synonyms else {}), "amber_printed": printed}


# ---------------------------------------------------------------- as a registered metric

class AmberMetric:
    """``halluc eval amber``: both AMBER tasks from one response file (own format and report)."""
    name, kind = "amber", "own"
    description = ("AMBER (Wang et al. 2023): generative CHAIR, Cover, Hal, Cog and discriminative accuracy, "
                   "precision, recall, F1 (positive class: no), as AMBER's inference.py computes them.")
    columns = FLAT
    file_help = ("responses: AMBER's JSON list [{\"id\": N, \"response\": ...}] or JSON lines (halluc decode "
                 "--dataset amber-*): the AMBER id in question_id, id (amber/N) or image_id, the text in text, "
                 "response or answer")

    def add_options(self, p) -> None:
        from halluc.registry import names
        p.add_argument("--parser", choices=["amber", *names("pope-parser")], default="amber",
                       help="discriminative answers: amber = exactly Yes or No, as AMBER's scorer; or a POPE "
                            "parser (default %(default)s)")
        p.add_argument("--spacy-model", metavar="PATH", help="a spaCy model with word vectors (folder or package; "
                       "AMBER uses en_core_web_lg) for AMBER's synonym matching; without it matching is exact and "
                       "the generative numbers are marked approximate")

    def tag(self, args) -> str:
        return "amber" if args.parser == "amber" else f"amber-{args.parser}"

    def title(self, args) -> str:
        return f"AMBER ({args.parser} parser)"

    def evaluate(self, args) -> dict:
        fmt, responses, bad = read_responses(args)
        for b in bad:
            print(f"error: {b}", file=sys.stderr)
        gen = any(data.annotation(r.id)["type"] == "generative" for r in responses)
        similar = SpacySimilarity(args.spacy_model) if gen and args.spacy_model else None
        t, rows = score(responses, args.parser, similar)
        res = results(t, rows, args.parser, similar.info if similar else None)
        if gen:
            from halluc.text.lemma import tagger_info
            res["tagger"] = tagger_info()
        res |= {"input": str(args.file), "format": fmt, "n_skipped": len(bad)}
        out = _out_dir(args, self.tag(args))
        _write(out, res, rows, args)
        title = (f"{self.title(args)} on {args.file} ({'AMBER JSON list' if fmt == 'amber-json' else 'JSON lines'}): "
                 f"{len(rows)} responses (tasks {', '.join(res['tasks_present'])}), {len(bad)} skipped"
                 + (f"; {APPROXIMATE}" if res["approximate"] else ""))
        return {"title": title, "totals": res, "columns": list(self.columns), "out": out, "table": table(title, res)}


def _out_dir(args, tag: str) -> Path:
    from halluc.paths import output_dir
    if args.out_dir:
        return output_dir(args.out_dir, "--out-dir")
    stem = args.file.name.removesuffix(".jsonl").removesuffix(".json")
    return output_dir(args.file.with_name(f"{stem}.{tag}"), "output folder")


def _write(out: Path, res: dict, rows: list[dict], args) -> None:
    from halluc.outputs import atomic_write_json, atomic_write_jsonl
    from halluc.provenance import args_config, write_manifest
    atomic_write_jsonl(out / "scores.jsonl", rows)
    atomic_write_json(out / "results.json", res)
    write_manifest(out, command="eval amber", config=args_config(args))


def table(title: str, res: dict) -> str:
    """AMBER's printout, section by section, with its rounding; then the AMBER score."""
    lines = [title]
    partial = not all(k in res["tasks_present"] for k in ("de", "da", "dr"))
    for name, block in res["amber_printed"].items():
        note = (f"  ({APPROXIMATE})" if name == "generative" and res["approximate"] else
                "  (partial: not all of existence, attribute, relation present)" if name == "discriminative"
                and partial else "")
        lines.append(f"{name.capitalize()}:{note}")
        lines += [f"  {k + ':':<11}{v:>6}" for k, v in block.items()]
    if res["amber_score"] is not None:
        lines.append(f"AMBER score (100 - CHAIR + F1) / 2: {res['amber_score']:.1f}"
                     + (f"  ({APPROXIMATE})" if res["approximate"] else ""))
    if res["unknown"]:
        lines.append(f"{res['unknown']} discriminative responses could not be read ({res['parser']} parser)")
    return "\n".join(lines)


METRIC = AmberMetric()
