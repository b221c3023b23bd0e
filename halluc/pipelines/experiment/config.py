"""An experiment file: the YAML, checked, with defaults and rows (sweeps expanded).

    cfg = load_config("experiments/world_table.yaml")     # ConfigError names the file and the key
    cfg["rows"], cfg["sweep_rows"]                        # Row objects

Keys (experiments/world_table.yaml is the full example): ``name``, ``model``, ``seeds``, ``captions``,
``pope``, ``correct``, ``finetune`` (``{NAME: {negatives: {...}, finetune: {...}}}``: options of those
stages), ``rows`` (each a pipeline decode(method, set) -> [correct] on a model: the base or a fine-tuned
NAME) and ``sweeps`` (rows along one decode parameter). Unknown keys, methods, parameters or options
are errors that name the file, the key and the valid choices.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

POPE_SPLITS = ("random", "popular", "adversarial")
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
        elif v is not False and v is not None:      # not `v not in (False, None)`: 0 == False would drop it
            out += [opt, ",".join(map(str, v)) if isinstance(v, list) else _value(v)]
    return out


def stage_parser(stage: str) -> argparse.ArgumentParser:
    """The parser of a pipeline stage (its ``add_options``): the runner parses a stage's argv with it, so
    YAML keys, types and bounds are checked exactly as on the command line."""
    import importlib
    from halluc.command import Parser
    p = Parser(prog=f"halluc {stage}")
    importlib.import_module(f"halluc.pipelines.{stage}").add_options(p)
    return p


def _options(stage: str) -> set[str]:
    """The long options of a stage, as YAML keys (--neg-ratio -> neg_ratio)."""
    p = stage_parser(stage)
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
    from halluc.registry import decoder_params, entry, names
    _check(r, kind, where, file)
    for k in ("name", "decode"):
        if k not in r:
            raise ConfigError(f"{file}: {where}: missing key {k!r}")
    dec = _check(r["decode"], "decode", f"{where}.decode", file)
    if "method" not in dec:
        raise ConfigError(f"{file}: {where}.decode: missing key 'method'")
    if dec["method"] not in names("decoder"):
        raise ConfigError(f"{file}: {where}.decode.method: unknown decode method {dec['method']!r}; "
                          f"valid: {', '.join(names('decoder'))}")
    params = {k: _value(v) for k, v in (dec.get("set") or {}).items()} | (extra or {})
    try:
        p = decoder_params(dec["method"], params)
    except ValueError as e:
        raise ConfigError(f"{file}: {where}.decode.set: {e}") from None
    model = r.get("model", "base")
    if model != "base" and model not in cfg["finetune"]:
        raise ConfigError(f"{file}: {where}.model: {model!r} is neither 'base' nor a finetune entry "
                          f"({', '.join(cfg['finetune']) or 'none defined'})")
    m = dec["method"]
    meta = entry("decoder", m).meta             # sampling methods, and VCD, whose noise is seeded even with argmax
    stochastic = meta.get("stochastic", False) or (meta.get("contrastive", False)
                                                   and (not p.greedy or meta.get("seeded_negative", False)))
    return Row(r["name"], model, m, tuple(sorted(params.items())), r.get("correct", False), r.get("pope", kind == "row"),
               stochastic=stochastic)


def load_config(path: str | Path) -> dict:
    """The experiment file, validated and with defaults filled in; ``cfg["rows"]`` holds :class:`Row`s
    (sweeps expanded, in ``cfg["sweep_rows"]``)."""
    from halluc.command import SEED_MAX
    from halluc.registry import entry, names
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
    captions = [n for n in names("dataset", kind="caption")             # the world's evaluation splits
                if n != "world-train" and not entry("dataset", n).meta.get("needs_images")]
    if ds not in captions:
        raise ConfigError(f"{path}: captions.dataset: {ds!r} is not a world caption split; valid: {', '.join(captions)}")
    if (cfg["captions"]["limit"] or 0) > entry("dataset", ds).meta["n"]:
        raise ConfigError(f"{path}: captions.limit: {ds} has {entry('dataset', ds).meta['n']} scenes")
    for s in cfg["pope"]["splits"]:
        if s not in POPE_SPLITS:
            raise ConfigError(f"{path}: pope.splits: unknown split {s!r}; valid: {', '.join(POPE_SPLITS)}")
    if cfg["pope"]["parser"] not in names("pope-parser"):
        raise ConfigError(f"{path}: pope.parser: unknown parser {cfg['pope']['parser']!r}; "
                          f"valid: {', '.join(names('pope-parser'))}")
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


