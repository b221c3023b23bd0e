"""Parameters of each decode method: small frozen dataclasses, parsed from ``--set key=value``.

    p = parse(VCDParams, {"alpha": "2", "greedy": "true"})   # VCDParams(alpha=2.0, ..., greedy=True)
    parse(VCDParams, {"alfa": "2"})   # ValueError: unknown parameter 'alfa' for vcd; valid: alpha, beta, ...

No torch here: the CLI validates parameters before it loads a model. Value ranges are checked by
the processors built from them (decoding/processors.py), which say how to fix a bad value.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

ICD_INSTRUCTION = "You are a confused object detector."   # ICD (Wang et al. 2024)'s disturbance prefix


@dataclass(frozen=True)
class GreedyParams:
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class SampleParams:
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class BeamParams:
    num_beams: int = 5
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class ContrastParams:
    """DESIGN.md §5: s = (1+alpha)·l − alpha·l' on tokens with p >= beta·p_max, then the usual processors,
    then argmax (greedy=true) or sampling (VCD's reference: temperature 1, no top-k/top-p)."""
    alpha: float = 1.0
    beta: float = 0.1
    greedy: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class VCDParams(ContrastParams):
    noise_step: int = 500          # 0-based index into the 1000-step schedule (reference default)


@dataclass(frozen=True)
class ICDParams(ContrastParams):
    instruction: str = ICD_INSTRUCTION


@dataclass(frozen=True)
class M3IDParams(ContrastParams):
    """alpha_t = alpha · (e^{lam·t} − 1), t the 0-based generation step: alpha=1 is M3ID's own schedule;
    other alphas scale it (how the experiments sweep its strength)."""
    lam: float = 0.02


@dataclass(frozen=True)
class VDDParams(ContrastParams):
    pass


def _coerce(name: str, typ, value):
    if not isinstance(value, str):
        return value
    t = typ if isinstance(typ, type) else {"bool": bool, "int": int, "float": float, "str": str}[typ]
    if t is bool:
        v = value.strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"parameter {name}={value!r}: expected true or false")
    try:
        v = t(value)
    except ValueError:
        raise ValueError(f"parameter {name}={value!r}: expected a {t.__name__}") from None
    if t is float and not math.isfinite(v):
        raise ValueError(f"parameter {name}={value!r}: expected a finite number")
    return v


def parse(cls, overrides: dict | None = None, method: str = ""):
    """Build ``cls`` from ``{key: value}`` (strings are converted to each field's type)."""
    types = {f.name: f.type for f in fields(cls)}
    kw = {}
    for k, v in (overrides or {}).items():
        if k not in types:
            raise ValueError(f"unknown parameter {k!r}{' for ' + method if method else ''}; "
                             f"valid: {', '.join(types) or '(none)'}")
        kw[k] = _coerce(k, types[k], v)
    return cls(**kw)


def as_dict(p) -> dict:
    return asdict(p)
