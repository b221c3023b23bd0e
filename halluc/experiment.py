"""``halluc experiment run``: one YAML file -> a results table on the controlled world (issue 7).

    halluc experiment run experiments/world_table.yaml [--out DIR] [--seeds 0 1 2] [--limit N] [--threads N]
    python -m halluc.experiment run experiments/demo.yaml --limit 5          # the same, as a module

The YAML (experiments/world_table.yaml is the full example) names a model, seeds, the caption split,
the POPE splits and parser, the corrector, fine-tuned models (``finetune: {NAME: {negatives: {...},
finetune: {...}}}``: ``halluc negatives`` + ``halluc finetune`` flags) and ``rows``: each a pipeline
decode(method, set) -> [correct] on a model (the base, or a fine-tuned NAME). ``sweeps`` expand into
rows along one decode parameter (``chair_vs_<param>.png``). Unknown keys, methods or parameters are
errors that name the file, the key and the valid choices.

Every stage is a halluc command writing JSONL under the run folder (default ``runs/<yaml name>``):

    finetune-NAME/data/train.jsonl, finetune-NAME/model/       halluc negatives, halluc finetune
    <base or NAME>-<method>[-<param><value>…]/s<seed>/
        captions/captions.jsonl      + captions/score-world/       halluc decode, halluc eval world
        corrected/corrected.jsonl    + corrected/score-world/      halluc correct, halluc eval world
        pope-<split>/answers.jsonl   + pope-<split>/score-<parser>/ halluc decode, halluc eval pope

Each stage folder holds ``stage.json`` (its key: arguments, input hashes, model weights' sha256) and
``stage.log``. A stage whose stamp has the same key and is done is skipped; an interrupted one resumes
(decode and correct skip ids already written); a changed one is redone (``--overwrite``: all of them).
Rows that share a decode share its files. Deterministic decodes (greedy, beam, argmax ICD/M3ID/VDD) run
with the first seed only. Output: ``table.md`` (mean ± std over seeds), ``results.json`` (per-seed
numbers, files, timings and provenance: git hash, model fingerprints, versions), ``run.json``,
``chair_vs_recall.png`` and ``chair_vs_<param>.png`` (with matplotlib installed).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from halluc.command import at_least, guard, module_main
from halluc.command import seed as seed_type
from halluc.records import atomic_write_text, sha256_files

POPE_SPLITS = ("random", "popular", "adversarial")
SHORT = {"random": "rand", "popular": "pop", "adversarial": "adv"}
CAPTION_DATASETS = ("world-bias", "world-test", "world-control", "world-bias-hard")
NUM = (int, float)
SCHEMA = {
    "top": {"name": str, "description": str, "model": str, "seeds": list, "threads": int, "captions": dict,
            "pope": dict, "correct": dict, "finetune": dict, "rows": list, "sweeps": list},
    "captions": {"dataset": str, "limit": int, "max_new_tokens": int, "batch_size": int},
    "pope": {"splits": list, "limit": int, "parser": str, "max_new_tokens": int, "batch_size": int},
    "correct": {"detector": str, "batch_size": int},
    "finetune entry": {"negatives": dict, "finetune": dict},
    "row": {"name": str, "model": str, "decode": dict, "correct": bool, "pope": bool},
    "sweep": {"name": str, "model": str, "decode": dict, "correct": bool, "pope": bool, "param": str, "values": list},
    "decode": {"method": str, "set": dict},
}
DEFAULTS = {"model": "builtin", "seeds": [0], "threads": None,
            "captions": {"dataset": "world-bias", "limit": None, "max_new_tokens": 96, "batch_size": 32},
            "pope": {"splits": list(POPE_SPLITS), "limit": None, "parser": "strict", "max_new_tokens": None,
                     "batch_size": 64},
            "correct": {"detector": "world-yolo", "batch_size": 16}, "finetune": {}, "sweeps": []}
# (table header, metric key); POPE F1 columns follow the configured splits
COLUMNS = [("CHAIR_s", "chair_s"), ("CHAIR_i", "chair_i"), ("Recall", "recall"), ("Partner", "partner_rate"),
           ("Attr err", "attribute_error"), ("Rel err", "relation_error")]
OPTIONAL = ("limit", "max_new_tokens", "threads")      # null: all / the command's default
NAME = re.compile(r"[A-Za-z0-9._-]+")
RESERVED = {"negatives": {"out", "help"}, "finetune": {"out", "data", "model", "help"}}


class ConfigError(ValueError):
    """A bad experiment file: the message names the file and the key."""


# ---------------------------------------------------------------- the YAML

def _check(d, kind: str, where: str, file) -> dict:
    what = where or "top level"
    if not isinstance(d, dict):
        raise ConfigError(f"{file}: {what}: expected a mapping, got {type(d).__name__}")
    schema = SCHEMA[kind]
    for k, v in d.items():
        key = f"{where}.{k}" if where else str(k)
        if k not in schema:
            raise ConfigError(f"{file}: {key}: unknown key; valid: {', '.join(schema)}")
        t = schema[k]
        if v is None and k in OPTIONAL:
            continue
        if not isinstance(v, t) or (t is int and isinstance(v, bool)):
            raise ConfigError(f"{file}: {key}: expected {t.__name__}, got {v!r}")
        if t is int and v < 1:
            raise ConfigError(f"{file}: {key}: must be >= 1{' (null: no limit)' if k in OPTIONAL else ''}, got {v}")
    return d


def _value(v) -> str:
    """A decode parameter as ``--set`` takes it (and as it appears in folder names)."""
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:g}" if isinstance(v, NUM) else str(v)


def _flags(spec: dict) -> list[str]:
    out = []
    for k, v in spec.items():
        opt = "--" + k.replace("_", "-")
        if v is True:
            out.append(opt)
        elif v not in (False, None):
            out += [opt, ",".join(map(str, v)) if isinstance(v, list) else _value(v)]
    return out


def _options(command: str) -> set[str]:
    """The long options of a halluc command, as YAML keys (--neg-ratio -> neg_ratio)."""
    import importlib
    mod = importlib.import_module(f"halluc.{command}")
    p = mod.add_parser(argparse.ArgumentParser().add_subparsers())
    return {o[2:].replace("-", "_") for a in p._actions for o in a.option_strings if o.startswith("--")}


@dataclass(frozen=True)
class Row:
    name: str
    model: str                       # "base" or a finetune entry's name
    method: str
    params: tuple                    # ((key, value string), …) sorted
    correct: bool = False
    pope: bool = True
    sweep: str | None = None         # the sweep it came from, its parameter and value
    param: str | None = None
    value: float | None = None
    stochastic: bool = True

    @property
    def decode_slug(self) -> str:
        return "-".join([self.model, self.method, *(f"{k}{v}" for k, v in self.params)]).replace("/", "_")


def _row(r: dict, kind: str, where: str, file, cfg: dict, extra: dict | None = None) -> Row:
    import decoding
    _check(r, kind, where, file)
    for k in ("name", "decode"):
        if k not in r:
            raise ConfigError(f"{file}: {where}: missing key {k!r}")
    dec = _check(r["decode"], "decode", f"{where}.decode", file)
    if "method" not in dec:
        raise ConfigError(f"{file}: {where}.decode: missing key 'method'")
    if dec["method"] not in decoding.DECODERS:
        raise ConfigError(f"{file}: {where}.decode.method: unknown decode method {dec['method']!r}; "
                          f"valid: {', '.join(decoding.DECODERS)}")
    params = {k: _value(v) for k, v in (dec.get("set") or {}).items()} | (extra or {})
    try:
        p = decoding.parse_params(dec["method"], params)
    except ValueError as e:
        raise ConfigError(f"{file}: {where}.decode.set: {e}") from None
    model = r.get("model", "base")
    if model != "base" and model not in cfg["finetune"]:
        raise ConfigError(f"{file}: {where}.model: {model!r} is neither 'base' nor a finetune entry "
                          f"({', '.join(cfg['finetune']) or 'none defined'})")
    m = dec["method"]
    stochastic = m == "sample" or (m in decoding.CONTRASTIVE and (not p.greedy or m == "vcd"))  # VCD's noise is seeded
    return Row(r["name"], model, m, tuple(sorted(params.items())), r.get("correct", False), r.get("pope", kind == "row"),
               stochastic=stochastic)


def load_config(path: str | Path) -> dict:
    """The experiment file, validated and with defaults filled in; ``cfg["rows"]`` holds :class:`Row`s
    (sweeps expanded, in ``cfg["sweep_rows"]``)."""
    from halluc.command import SEED_MAX
    from halluc.metrics.pope import PARSERS
    from halluc.world.builtin import DATASETS
    from halluc.yamlfile import load_yaml
    path = Path(path)
    raw = load_yaml(path)
    raw = {} if raw is None else raw
    _check(raw, "top", "", path)
    cfg = {**DEFAULTS, **raw}
    for sect in ("captions", "pope", "correct"):
        cfg[sect] = {**DEFAULTS[sect], **_check(raw.get(sect, {}), sect, sect, path)}
    cfg["name"] = raw.get("name", path.stem)
    if not NAME.fullmatch(cfg["name"]) or cfg["name"] in (".", ".."):
        raise ConfigError(f"{path}: name: {cfg['name']!r} is not a plain name (letters, digits, '.', '_', '-'; "
                          "it names the folder under runs/)")
    if not cfg["seeds"] or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= SEED_MAX
                                   for s in cfg["seeds"]):
        raise ConfigError(f"{path}: seeds: expected a non-empty list of integers in 0..{SEED_MAX}, got {cfg['seeds']!r}")
    ds = cfg["captions"]["dataset"]
    if ds not in CAPTION_DATASETS:
        raise ConfigError(f"{path}: captions.dataset: {ds!r} is not a world caption split; valid: {', '.join(CAPTION_DATASETS)}")
    if (cfg["captions"]["limit"] or 0) > DATASETS[ds][1]:
        raise ConfigError(f"{path}: captions.limit: {ds} has {DATASETS[ds][1]} scenes")
    for s in cfg["pope"]["splits"]:
        if s not in POPE_SPLITS:
            raise ConfigError(f"{path}: pope.splits: unknown split {s!r}; valid: {', '.join(POPE_SPLITS)}")
    if cfg["pope"]["parser"] not in PARSERS:
        raise ConfigError(f"{path}: pope.parser: unknown parser {cfg['pope']['parser']!r}; valid: {', '.join(PARSERS)}")
    for name, ft in cfg["finetune"].items():
        where = f"finetune.{name}"
        _check(ft, "finetune entry", where, path)
        for cmd in ("negatives", "finetune"):
            if cmd not in ft:
                raise ConfigError(f"{path}: {where}: missing key {cmd!r}")
            valid = _options(cmd) - RESERVED[cmd]
            for k in ft[cmd]:
                if k not in valid:
                    raise ConfigError(f"{path}: {where}.{cmd}.{k}: unknown key (a halluc {cmd} option); "
                                      f"valid: {', '.join(sorted(valid))}")
    if not isinstance(raw.get("rows"), list) or not raw["rows"]:
        raise ConfigError(f"{path}: rows: expected a non-empty list of rows")
    cfg["rows"] = [_row(r, "row", f"rows[{i}]", path, cfg) for i, r in enumerate(raw["rows"])]
    cfg["sweep_rows"] = []
    for i, s in enumerate(cfg["sweeps"]):
        where = f"sweeps[{i}]"
        _check(s, "sweep", where, path)
        for k in ("param", "values"):
            if k not in s:
                raise ConfigError(f"{path}: {where}: missing key {k!r}")
        if not s["values"] or not all(isinstance(v, NUM) and not isinstance(v, bool) for v in s["values"]):
            raise ConfigError(f"{path}: {where}.values: expected a non-empty list of numbers, got {s['values']!r}")
        base = {k: v for k, v in s.items() if k not in ("param", "values")}
        for v in s["values"]:
            r = _row(base, "sweep", where, path, cfg, {s["param"]: _value(v)})
            cfg["sweep_rows"].append(Row(**{**r.__dict__, "name": f"{s['name']} ({s['param']}={_value(v)})",
                                            "sweep": s["name"], "param": s["param"], "value": float(v)}))
    names = [r.name for r in cfg["rows"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: rows: duplicate names: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return cfg


# ---------------------------------------------------------------- stages

class Runner:
    def __init__(self, cfg: dict, out: Path, seeds: list[int], limit: int | None, overwrite: bool = False):
        self.cfg, self.out, self.seeds, self.overwrite = cfg, out, seeds, overwrite
        cap = lambda n: None if n is None and limit is None else min(x for x in (n, limit) if x is not None)
        self.cap_limit, self.pope_limit = cap(cfg["captions"]["limit"]), cap(cfg["pope"]["limit"])
        self.models: dict[str, dict] = {}
        self.tally = {"run": 0, "skipped": 0}
        self.detector = None
        self.t0 = time.perf_counter()

    def log(self, msg: str, end="\n") -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}" if msg else "", end=end, file=sys.stderr, flush=True)

    def call(self, argv: list[str], d: Path) -> None:
        """A halluc command in this process; its output goes to ``d/stage.log``."""
        from halluc.cli import main as halluc
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "stage.log", "a", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            print("$ halluc " + shlex.join(argv), flush=True)
            try:
                rc = halluc(argv)
            except SystemExit as e:
                rc = e.code
        if rc == 130:                      # the stage was interrupted: so is the experiment (resumable)
            raise KeyboardInterrupt
        if rc != 0:
            tail = "".join((d / "stage.log").read_text(encoding="utf-8").splitlines(True)[-15:])
            raise RuntimeError(f"halluc {shlex.join(argv)} failed (exit {rc}); {d / 'stage.log'} ends:\n{tail}")

    def stage(self, d: Path, label: str, key: dict, fn, output: Path) -> dict:
        """Run ``fn(fresh)`` unless ``d/stage.json`` holds the same key, done, and ``output`` is there."""
        path = d / "stage.json"
        try:
            old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        except (ValueError, OSError):
            old = None                   # an unreadable stamp: the stage is done again
        if old and old.get("key") == key and old.get("done") and output.exists() and not self.overwrite:
            self.tally["skipped"] += 1
            return old
        fresh = self.overwrite or (old is not None and old.get("key") != key)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": key, "done": False}) + "\n")
        self.log(f"{label} …", end="")
        t0 = time.perf_counter()
        info = fn(fresh) or {}
        stamp = {"key": key, "done": True, "wall_seconds": round(time.perf_counter() - t0, 2), **info}
        atomic_write_text(path, json.dumps(stamp, indent=1) + "\n")
        self.tally["run"] += 1
        print(f" {stamp['wall_seconds']:.1f}s" + (f" ({info['note']})" if info.get("note") else ""),
              file=sys.stderr, flush=True)
        return stamp

    # -- models
    def model(self, name: str) -> str:
        """The model folder (or id) of "base" or a fine-tuned entry; fine-tunes it on first use."""
        if name not in self.models:
            from halluc.models import weights_sha256
            path = self.cfg["model"] if name == "base" else str(self.finetune(name))
            self.models[name] = {"path": path, "weights_sha256": weights_sha256(path)}
        return self.models[name]["path"]

    def finetune(self, name: str) -> Path:
        spec, d = self.cfg["finetune"][name], self.out / f"finetune-{name}"
        data, model = d / "data" / "train.jsonl", d / "model"
        neg = ["negatives", *_flags(spec["negatives"])]
        self.stage(d / "data", f"negatives {name}", {"argv": neg},
                   lambda fresh: self.call(neg + ["--out", str(data)] + ["--overwrite"] * fresh, d / "data"), data)
        base = self.model("base")
        ft = ["finetune", "--model", base, "--no-progress", *_flags(spec["finetune"])]

        def train(fresh):
            self.call(ft + ["--data", str(data), "--out", str(model)], model)
            f = json.loads((model / "finetune.json").read_text())
            return {"note": f"loss {f.get('loss_before', float('nan')):.3f} -> {f.get('loss_after', float('nan')):.3f}"
                    if "loss_after" in f else ""}
        self.stage(model, f"finetune {name}", {"argv": ft, "data": sha256_files([data]),
                                               "base": self.models["base"]["weights_sha256"]}, train,
                   model / "model.safetensors")
        return model

    # -- inference
    def decode(self, row: Row, seed: int, split: str | None = None) -> tuple[Path, dict]:
        """Captions of the caption split (split None) or answers to a POPE split's questions."""
        c = self.cfg["pope" if split else "captions"]
        d = self.out / row.decode_slug / f"s{seed}" / (f"pope-{split}" if split else "captions")
        out = d / ("answers.jsonl" if split else "captions.jsonl")
        limit = self.pope_limit if split else self.cap_limit
        model = self.model(row.model)
        argv = ["decode", "--method", row.method, "--model", model, "--seed", str(seed), "--no-progress",
                "--dataset", f"world-pope-{split}" if split else c["dataset"], "--batch-size", str(c["batch_size"])]
        argv += [x for k, v in row.params for x in ("--set", f"{k}={v}")]
        argv += ["--limit", str(limit)] * (limit is not None)
        argv += ["--max-new-tokens", str(c["max_new_tokens"])] * (c["max_new_tokens"] is not None)

        def run(fresh):
            self.call(argv + ["--out", str(out)] + ["--overwrite"] * fresh, d)
            s = json.loads((d / "run.json").read_text())["summary"]
            n = s["decoded"]
            return {"n": n, "seconds": s["decode_seconds"], "note": f"{n} decoded, {s['resumed']} resumed"}
        key = {"argv": argv, "weights": self.models[row.model]["weights_sha256"]}
        label = f"decode {row.decode_slug} s{seed} {'pope-' + split if split else 'captions'}"
        return out, self.stage(d, label, key, run, out)

    def correct(self, captions: Path, seed_dir: Path, label: str) -> tuple[Path, dict]:
        c, d = self.cfg["correct"], seed_dir / "corrected"
        out = d / "corrected.jsonl"
        argv = ["correct", str(captions), "--detector", c["detector"], "--batch-size", str(c["batch_size"]),
                "--no-cache", "--no-progress"]          # no cache: the seconds per caption include detection

        def run(fresh):
            self.call(argv + ["--out", str(out)] + ["--overwrite"] * fresh, d)
            man = json.loads((d / "run.json").read_text())
            self.detector = man["detector"]
            s = man["summary"]
            return {"n": s["corrected"], "seconds": s["correct_seconds"], "detector": man["detector"],
                    "note": f"{s['captions_changed']} captions changed, {s['contradicted']} claims contradicted"}
        stamp = self.stage(d, f"correct {label}", {"argv": argv[2:], "input": sha256_files([captions])}, run, out)
        self.detector = self.detector or stamp.get("detector")
        return out, stamp

    # -- scoring (separate stages: they read the JSONL the inference stages wrote)
    def score_world(self, path: Path, text_key: str | None, label: str) -> dict:
        d = path.parent / "score-world"      # the scenes are found from the records' image paths
        argv = ["eval", "world", str(path), "--out-dir", str(d)] + ["--text-key", text_key] * bool(text_key)
        self.stage(d, f"score {label}", {"input": sha256_files([path]), "text_key": text_key}, lambda fresh: self.call(argv, d),
                   d / "results.json")
        return json.loads((d / "results.json").read_text())

    def score_pope(self, answers: Path, split: str, label: str) -> dict:
        from halluc.world.builtin import split_dir
        parser, d = self.cfg["pope"]["parser"], answers.parent / f"score-{self.cfg['pope']['parser']}"
        questions = answers.parent / "questions.jsonl"    # the questions decoded: the first --limit, in file order
        lines = (split_dir("world-pope") / f"pope_{split}.jsonl").read_text(encoding="utf-8").splitlines(True)
        questions.write_text("".join(lines[:self.pope_limit]), encoding="utf-8")
        argv = ["eval", "pope", str(answers), "--questions", str(questions), "--parser", parser, "--out-dir", str(d)]
        self.stage(d, f"score {label}", {"input": sha256_files([answers]), "questions": sha256_files([questions]), "parser": parser},
                   lambda fresh: self.call(argv, d),
                   d / "results.json")
        return json.loads((d / "results.json").read_text())

    # -- one row
    def run_row(self, row: Row) -> dict:
        runs = []
        for seed in self.seeds if row.stochastic else self.seeds[:1]:
            seed_dir = self.out / row.decode_slug / f"s{seed}"
            captions, dec = self.decode(row, seed)
            label = f"{row.decode_slug} s{seed}"
            files = {"captions": str(captions)}
            secs = [(dec.get("seconds"), dec.get("n"))]
            if row.correct:
                corrected, cor = self.correct(captions, seed_dir, label)
                files["corrected"] = str(corrected)
                secs.append((cor.get("seconds"), cor.get("n")))
                m = self.score_world(corrected, "corrected_text", f"{label} corrected")
            else:
                m = self.score_world(captions, None, f"{label} captions")
            keep = {k: m[k] for k in ("chair_s", "chair_i", "recall", "partner_rate", "partner_rate_control",
                                      "attribute_error", "relation_error", "count_error", "n_captions")}
            ok = all(s is not None and n for s, n in secs)
            keep["s_per_caption"] = sum(s / n for s, n in secs) if ok else None
            if row.pope:
                for split in self.cfg["pope"]["splits"]:
                    answers, _ = self.decode(row, seed, split)
                    p = self.score_pope(answers, split, f"{label} pope-{split}")
                    keep |= {f"pope_{split}_f1": p["f1"], f"pope_{split}_acc": p["accuracy"],
                             f"pope_{split}_yes": p["yes_ratio"], f"pope_{split}_unknown": p["unknown"],
                             f"pope_{split}_n": p["n"]}
                    files[f"pope-{split}"] = str(answers)
            runs.append({"seed": seed, **keep, "files": files})
        return {"name": row.name, "model": row.model, "method": row.method, "set": dict(row.params),
                "correct": row.correct, "pope": row.pope, "deterministic": not row.stochastic, "sweep": row.sweep,
                "param": row.param, "value": row.value, "runs": runs, **summarise(runs)}


def summarise(runs: list[dict]) -> dict:
    mean, std = {}, {}
    for k in dict.fromkeys(k for r in runs for k, v in r.items() if k != "seed" and isinstance(v, NUM)):
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            mean[k] = statistics.mean(vals)
            std[k] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "n_seeds": len(runs)}


# ---------------------------------------------------------------- table and plots

def _cell(r: dict, k: str, digits: int = 1) -> str:
    if k not in r["mean"]:
        return "—"
    m = f"{r['mean'][k]:.{digits}f}"
    return m if r["n_seeds"] == 1 else f"{m} ± {r['std'][k]:.{digits}f}"


def table(rows: list[dict], splits: list[str], pope: bool = True) -> str:
    cols = COLUMNS + ([(f"POPE F1 {SHORT[s]}", f"pope_{s}_f1") for s in splits] if pope else [])
    head = ["method", *(c for c, _ in cols), "s/caption", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in rows:
        seeds = "1 (deterministic)" if r["deterministic"] else str(r["n_seeds"])
        lines.append("| " + " | ".join([r["name"], *(_cell(r, k) for _, k in cols), _cell(r, "s_per_caption", 3),
                                        seeds]) + " |")
    return "\n".join(lines) + "\n"


def plots(results: dict, out: Path) -> list[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'halluc[experiments]')", file=sys.stderr)
        return []
    written = []
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for i, r in enumerate(results["rows"]):
        m, s = r["mean"], r["std"]
        ax.errorbar(m["recall"], m["chair_i"], xerr=s["recall"], yerr=s["chair_i"], fmt="osD^vP<>*X"[i % 10],
                    capsize=3, color=f"C{i % 10}", alpha=0.8, label=r["name"])
        ax.annotate(r["name"], (m["recall"], m["chair_i"]), textcoords="offset points", xytext=(5, 4 + 7 * (i % 2)),
                    fontsize=7, color=f"C{i % 10}")
    ax.set_xlabel("recall (%)")
    ax.set_ylabel("CHAIR_i (%)")
    ax.set_title(f"{results['experiment']}: CHAIR_i against recall (mean ± std over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "chair_vs_recall.png", dpi=120)
    plt.close(fig)
    written.append(out / "chair_vs_recall.png")
    for name, rows in results["sweeps"].items():
        param = rows[0]["param"]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
        for ax, k, label in ((axes[0], "chair_i", "CHAIR_i (%)"), (axes[1], "recall", "recall (%)")):
            ax.errorbar([r["value"] for r in rows], [r["mean"][k] for r in rows], yerr=[r["std"][k] for r in rows],
                        marker="o", capsize=3, label=name)
            base = next((r for r in results["rows"] if r["method"] == "greedy" and r["model"] == "base"
                         and not r["correct"]), None)
            if base:
                ax.axhline(base["mean"][k], color="grey", linestyle="--", label=base["name"])
            ax.set_xlabel(param)
            ax.set_ylabel(label)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{results['experiment']}: {name} against {param}", fontsize=9)
        fig.tight_layout()
        path = out / f"chair_vs_{param}.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def markdown(results: dict) -> str:
    cfg, p = results["config"], results["config"]["pope"]
    base = results["provenance"]["models"].get("base", {})
    lim = results["limits"]
    md = [f"# {results['experiment']}" + (f": {cfg['description'].strip()}" if cfg.get("description") else ""), "",
          f"Model `{cfg['model']}` (weights sha256 {str(base.get('weights_sha256'))[:12]}); captions: "
          f"{cfg['captions']['dataset']}, {lim['captions'] or 'all'} scenes; POPE: {lim['pope'] or 'all'} questions "
          f"per split, {p['parser']} parser; correction: {cfg['correct']['detector']}. Percentages; "
          + (f"mean ± std over seeds {', '.join(map(str, results['seeds']))}. Deterministic rows (greedy decoding) "
             "give the same output for every seed and run once." if len(results["seeds"]) > 1
             else f"seed {results['seeds'][0]}."), "",
          table(results["rows"], p["splits"]),
          "Partner: the planted partner named while absent (trigger visible). A corrected row's POPE is its "
          "decoder's (the corrector edits captions, not yes/no answers). s/caption: decoding (+ correcting, "
          "detector included) time per caption on this machine, model loading left out."]
    for name, rows in results["sweeps"].items():
        md += ["", f"## {name}: sweep of {rows[0]['param']}", "", table(rows, p["splits"], pope=any(r["pope"] for r in rows))]
    prov = results["provenance"]
    md += ["", f"git {prov['git']}; {', '.join(f'{k} {v}' for k, v in prov['versions'].items())}; "
               f"{results['seconds']:.0f} s ({results['stages']['run']} stages run, {results['stages']['skipped']} "
               f"reused). Command: `{results['command']}`."]
    return "\n".join(md) + "\n"


# ---------------------------------------------------------------- command

def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("experiment", help="run an experiment YAML: decode -> correct -> score, table and plots",
                              description="Run every row of an experiment file (experiments/*.yaml) over its seeds, "
                                          "skipping stages already done, and write table.md, results.json and plots.")
    sub = p.add_subparsers(dest="experiment_cmd", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="run (or resume) an experiment")
    r.add_argument("file", type=Path, help="experiment YAML")
    r.add_argument("--out", type=Path, help="run folder (default runs/<name>)")
    r.add_argument("--seeds", type=seed_type, nargs="+", help="override the file's seeds")
    r.add_argument("--limit", type=at_least(1), help="at most N captions and N POPE questions per split (a smoke run)")
    r.add_argument("--threads", type=at_least(1), help="torch CPU threads (default: the file's, else torch's)")
    r.add_argument("--overwrite", action="store_true", help="redo every stage")
    p.set_defaults(func=run)
    return p


def _run(args) -> int:
    cfg = load_config(args.file)            # ConfigError (a ValueError), FileNotFoundError: guard -> exit 2
    try:
        results = run_experiment(cfg, args)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(results["markdown"])
    print(f"wrote {results['out']}/table.md, results.json" + "".join(f", {Path(p).name}" for p in results["plots"]))
    if results["view"]:
        print(f"open the outputs:  halluc view {' '.join(map(shlex.quote, results['view']))}")
    return 0


run = guard(_run)


def run_experiment(cfg: dict, args) -> dict:
    from halluc.records import atomic_write_json, git_hash, package_versions, write_manifest
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    threads = args.threads or cfg["threads"]
    if threads:
        import torch
        torch.set_num_threads(threads)
    from halluc.paths import output_dir
    out = output_dir(args.out or Path("runs") / cfg["name"], "--out" if args.out else "run folder")
    out.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds or cfg["seeds"]
    runner = Runner(cfg, out, seeds, args.limit, args.overwrite)
    rows = [runner.run_row(r) for r in cfg["rows"]]
    sweeps: dict[str, list] = {}
    for r in cfg["sweep_rows"]:
        sweeps.setdefault(r.sweep, []).append(runner.run_row(r))
    view = [r["runs"][0]["files"].get("corrected") for r in rows if r["correct"]] or \
           [r["runs"][0]["files"]["captions"] for r in rows[:4]]
    command = ["halluc", "experiment", "run", str(args.file)] + ["--out", str(args.out)] * bool(args.out)
    command += ["--seeds", *map(str, args.seeds)] if args.seeds else []
    command += ["--limit", str(args.limit)] * (args.limit is not None)
    from halluc.world.builtin import split_dir
    results = {
        "experiment": cfg["name"], "config_file": str(args.file), "command": shlex.join(command), "out": str(out),
        "config": {k: v for k, v in cfg.items() if k not in ("rows", "sweep_rows")},
        "seeds": seeds, "limits": {"captions": runner.cap_limit, "pope": runner.pope_limit},
        "rows": rows, "sweeps": sweeps, "view": list(dict.fromkeys(view)),
        "provenance": {"git": git_hash(), "versions": package_versions(), "models": runner.models,
                       "detector": runner.detector, "threads": threads,
                       "data": {"captions": str(split_dir(cfg["captions"]["dataset"])),
                                "pope": str(split_dir("world-pope"))}},
        "stages": runner.tally, "seconds": round(time.perf_counter() - runner.t0, 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    results["plots"] = [str(p) for p in plots(results, out)]
    results["markdown"] = markdown(results)
    atomic_write_text(out / "table.md", results["markdown"])
    atomic_write_json(out / "results.json", results)
    write_manifest(out, command="experiment run", config={"file": str(args.file), "seeds": seeds, "limit": args.limit,
                                                          "threads": threads, "overwrite": args.overwrite},
                   extra={"experiment": cfg["name"]})
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.experiment run FILE …`` (``halluc experiment run`` once wired into halluc.cli)."""
    return module_main(add_parser, argv, command="experiment")


if __name__ == "__main__":
    sys.exit(main())
