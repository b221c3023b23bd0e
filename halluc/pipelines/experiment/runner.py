"""Running an experiment: every row's stages, each a pipeline called directly, each resumable.

    results = run_experiment(cfg, args)        # args: file, out, seeds, limit, threads, overwrite

Every stage writes JSONL under the run folder (default ``runs/<name>``):

    finetune-NAME/data/train.jsonl, finetune-NAME/model/       negatives, finetune
    <base or NAME>-<method>[-<param><value>…]/s<seed>/
        captions/captions.jsonl      + captions/score-world/       decode, eval world
        corrected/corrected.jsonl    + corrected/score-world/      correct, eval world
        pope-<split>/answers.jsonl   + pope-<split>/score-<parser>/ decode, eval pope

Each stage folder holds ``stage.json`` (its key: the stage's argv, input hashes, model weights' sha256)
and ``stage.log``. A stage whose stamp has the same key and is done is skipped; an interrupted one
resumes (decode and correct skip ids already written); a changed one is redone (``--overwrite``: all).
Rows that share a decode share its files. Deterministic decodes run with the first seed only. A stage's
argv is parsed by the stage's own options, exactly as on the command line, and kept for provenance;
the pipeline function then runs in this process.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from halluc.pipelines.experiment.config import NUM, Row, _flags, stage_parser
from halluc.outputs import atomic_write_text
from halluc.provenance import sha256_files

METRIC_KEYS = ("chair_s", "chair_i", "recall", "partner_rate", "partner_rate_control", "attribute_error",
               "relation_error", "count_error", "n_captions")


class StageFailed(RuntimeError):
    """A stage that stopped with an error; the message names it and ends with its log."""


def run_stage(argv: list[str], d: Path) -> dict:
    """One pipeline stage in this process (``argv`` as ``halluc`` takes it); its output goes to ``d/stage.log``."""
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "stage.log", "a", encoding="utf-8") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        print("$ halluc " + shlex.join(argv), flush=True)
        try:
            stage, args = _parse(argv)
            return importlib.import_module(f"halluc.pipelines.{stage}").run(args)
        except KeyboardInterrupt:
            raise                                         # the experiment is interrupted too (resumable)
        except (Exception, SystemExit) as e:              # noqa: BLE001 - the log says what; the runner says where
            print(f"error: {type(e).__name__}: {e}", flush=True)
    tail = "".join((d / "stage.log").read_text(encoding="utf-8").splitlines(True)[-15:])
    raise StageFailed(f"halluc {shlex.join(argv)} failed; {d / 'stage.log'} ends:\n{tail}")


def _parse(argv: list[str]):
    """(pipeline module name, Namespace) for ``argv``, parsed by the stage's own options (eval: the metric's)."""
    if argv[0] == "eval":
        from halluc.command import Parser
        from halluc.pipelines.evaluate import add_options
        from halluc.registry import resolve
        p = Parser(prog=f"halluc eval {argv[1]}")
        add_options(p, resolve("metric", argv[1]))
        args = p.parse_args(argv[2:])
        args.command, args.metric = "eval", argv[1]
        return "evaluate", args
    args = stage_parser(argv[0]).parse_args(argv[1:])
    args.command = argv[0]
    return argv[0], args


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
        run_stage(argv, d)          # what a stage reports is read back from the files it wrote (run.json)

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
        from halluc.registry import resolve
        parser, d = self.cfg["pope"]["parser"], answers.parent / f"score-{self.cfg['pope']['parser']}"
        questions = answers.parent / "questions.jsonl"    # the questions decoded: the first --limit, in file order
        source = resolve("dataset", f"world-pope-{split}")(f"world-pope-{split}")["questions"]
        lines = source.read_text(encoding="utf-8").splitlines(True)
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
            keep = {k: m[k] for k in METRIC_KEYS}
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


def run_experiment(cfg: dict, args) -> dict:
    """Every row over its seeds, then the table, plots, results.json and run.json."""
    from halluc.pipelines.experiment.report import markdown, plots
    from halluc.outputs import atomic_write_json
    from halluc.provenance import git_hash, package_versions, write_manifest
    from halluc.registry import resolve
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
    data = lambda name: str(resolve("dataset", name)(name)["dir"])
    results = {
        "experiment": cfg["name"], "config_file": str(args.file), "command": shlex.join(command), "out": str(out),
        "config": {k: v for k, v in cfg.items() if k not in ("rows", "sweep_rows")},
        "seeds": seeds, "limits": {"captions": runner.cap_limit, "pope": runner.pope_limit},
        "rows": rows, "sweeps": sweeps, "view": list(dict.fromkeys(view)),
        "provenance": {"git": git_hash(), "versions": package_versions(), "models": runner.models,
                       "detector": runner.detector, "threads": threads,
                       "data": {"captions": data(cfg["captions"]["dataset"]), "pope": data("world-pope-random")}},
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


