"""A YOLO model from a safetensors folder, without a pickle: ``model.yaml`` (the ultralytics model yaml
with ``nc`` and ``names``, checked: every layer named must be a model layer class, no ``eval``),
``model.safetensors`` (the state dict) and optionally ``yolo.json`` (``imgsz``).

    model, meta = load_folder_model(Path("models/best"))     # BadInput names the folder and the problem
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

from halluc.errors import BadInput

WEIGHTS_FILE = "model.safetensors"
YAML_FILE = "model.yaml"
META_FILE = "yolo.json"
# Layer classes a model.yaml may not name although they are nn.Modules: TorchVision builds (and
# downloads weights for) any torchvision model.
FORBIDDEN_LAYERS = frozenset({"TorchVision"})


def import_ultralytics():
    """Import ultralytics for offline use. Two of its import-time habits are undone here: it
    checks online for updates unless YOLO_OFFLINE is set, and it replaces ``PIL.Image.open``
    process-wide with a version that, on any unreadable file, tries to pip-install a HEIF plugin
    (a network call, and a confusing error in place of "corrupt image"). Pillow's own is restored.
    Call it before the first ultralytics import of any code path."""
    if os.environ.get("HALLUC_ALLOW_DOWNLOAD") != "1":
        os.environ.setdefault("YOLO_OFFLINE", "1")
    import ultralytics
    from PIL import Image
    from ultralytics.utils import patches
    Image.open = getattr(patches, "_image_open", Image.open)
    return ultralytics


# ---------------------------------------------------------------- the model yaml, checked

def _layer_class(name, label: str, where: str):
    """The class a layer of the yaml names, resolved as ultralytics' parse_model does, or BadInput.
    parse_model looks any other name up in ``ultralytics.nn.tasks``' globals and calls it: a yaml
    naming ``torch_safe_load`` there would unpickle a file. Only nn.Module classes of torch.nn,
    torchvision.ops and ultralytics.nn.modules pass."""
    import torch
    if name == "Silence":                   # YOLOv9's old first layer: ultralytics builds nn.Identity for it
        return torch.nn.Identity
    if not isinstance(name, str) or not name.replace(".", "").replace("_", "").isalnum():
        raise BadInput(f"{label}: {where}: the module must be a layer class name, got {name!r}")
    if name.startswith("nn."):
        obj, home = getattr(torch.nn, name[3:], None), ("torch.nn",)
    elif name.startswith("torchvision.ops."):
        import torchvision.ops
        obj, home = getattr(torchvision.ops, name[16:], None), ("torchvision.ops",)
    else:
        from ultralytics.nn import tasks
        obj, home = vars(tasks).get(name), ("ultralytics.nn.modules",)
    if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)) or name in FORBIDDEN_LAYERS or \
            not obj.__module__.startswith(home):
        raise BadInput(f"{label}: {where}: {name!r} is not a model layer this loader builds")
    return obj


def _check_activation(act, label: str) -> None:
    """``activation: nn.SiLU()`` is passed to ``eval`` by ultralytics: only ``[torch.]nn.Class(literals)``."""
    import torch
    bad = BadInput(f"{label}: activation {act!r}: expected nn.<Class>(literal arguments), e.g. nn.SiLU()")
    if not isinstance(act, str) or len(act) > 200:
        raise bad
    try:
        call = ast.parse(act.strip(), mode="eval").body
    except SyntaxError:
        raise bad from None
    if not isinstance(call, ast.Call):
        raise bad
    parts, node = [], call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise bad
    parts = [node.id, *reversed(parts)]
    if parts[:-1] not in (["nn"], ["torch", "nn"]):
        raise bad
    cls = getattr(torch.nn, parts[-1], None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise bad
    try:
        for a in [*call.args, *(k.value for k in call.keywords)]:
            ast.literal_eval(a)
    except ValueError:
        raise bad from None
    if any(k.arg is None for k in call.keywords):
        raise bad


def check_model_yaml(doc, label: str) -> tuple[dict, dict[int, str]]:
    """A model.yaml's content as (the cfg DetectionModel is built from, class names), or BadInput:
    ``nc`` and ``names`` agree, layers are [from, repeats, layer class, [args]], 3 input channels."""
    if not isinstance(doc, dict):
        raise BadInput(f"{label}: expected a mapping (an ultralytics model yaml), got {type(doc).__name__}")
    cfg = dict(doc)
    nc = cfg.get("nc")
    if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
        raise BadInput(f"{label}: 'nc' (the number of classes) must be a positive integer, got {nc!r}")
    names = cfg.pop("names", None)
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or sorted(names) != list(range(nc)) or \
            not all(isinstance(v, str) and v for v in names.values()):
        raise BadInput(f"{label}: 'names' must list the {nc} class names (nc: {nc}), as a list or a mapping "
                       "0..nc-1 -> name")
    if cfg.get("channels", 3) != 3:
        raise BadInput(f"{label}: channels {cfg['channels']!r}: only 3-channel (RGB) models are supported")
    for part in ("backbone", "head"):
        layers = cfg.get(part)
        if not isinstance(layers, list) or not layers:
            raise BadInput(f"{label}: '{part}' must be a list of layers [from, repeats, module, args]")
        for i, layer in enumerate(layers):
            where = f"{part}[{i}]"
            if not (isinstance(layer, list) and len(layer) == 4 and isinstance(layer[3], list)
                    and isinstance(layer[1], int) and not isinstance(layer[1], bool)):
                raise BadInput(f"{label}: {where}: a layer must be [from, repeats, module, [args]], got {layer!r}")
            _layer_class(layer[2], label, where)
    if "activation" in cfg and cfg["activation"] is not None:
        _check_activation(cfg["activation"], label)
    scales, scale = cfg.get("scales"), cfg.get("scale")
    if scales is not None:
        if not isinstance(scales, dict) or not all(
                isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)
                for v in scales.values()):
            raise BadInput(f"{label}: 'scales' must map a scale to [depth, width, max_channels]")
        if scale and scale not in scales:
            raise BadInput(f"{label}: scale {scale!r} is not one of the 'scales' ({', '.join(map(str, scales))})")
    return cfg, names


def _read_meta(d: Path, label: str) -> dict:
    from halluc.paths import read_json
    if not (d / META_FILE).exists():
        return {}
    meta = read_json(d / META_FILE, label)
    if not isinstance(meta, dict):
        raise BadInput(f"{label}: {META_FILE} must be a JSON object")
    imgsz = meta.get("imgsz")
    ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192   # noqa: E731
    if imgsz is not None and not (ok(imgsz) or isinstance(imgsz, list) and len(imgsz) in (1, 2)
                                  and all(map(ok, imgsz))):
        raise BadInput(f"{label}: {META_FILE}: imgsz must be a positive integer or [h, w], got {imgsz!r}")
    return meta


def read_folder(d: Path, label: str | None = None) -> tuple[dict, dict[int, str], dict]:
    """(model cfg, class names, yolo.json metadata) of a converted folder; the safetensors file is
    checked (header, sizes) but not loaded. BadInput names the folder and the problem."""
    from halluc.models import check_safetensors
    from halluc.paths import input_dir, input_file
    from halluc.yamlfile import load_yaml
    d = Path(d)
    label = label or f"yolo:{d}"
    input_dir(d, label)
    st = d / WEIGHTS_FILE
    if not st.exists():
        pts = sorted(p.name for p in d.glob("*.pt"))
        hint = (f" ({', '.join(pts)} is a pickle: convert it once with halluc convert-yolo FILE.pt --out DIR "
                "--trust-pickle)" if pts else " (write one from a .pt with halluc convert-yolo)")
        raise BadInput(f"{label}: no {WEIGHTS_FILE} in {d}{hint}")
    input_file(st, label)
    check_safetensors(st, label)
    if not (d / YAML_FILE).exists():
        raise BadInput(f"{label}: no {YAML_FILE} in {d} (the ultralytics model yaml with nc and names; "
                       "halluc convert-yolo writes it)")
    doc = load_yaml(d / YAML_FILE, label)
    cfg, names = check_model_yaml(doc, f"{label}: {YAML_FILE}")
    return cfg, names, _read_meta(d, label)


# ---------------------------------------------------------------- building the model without a pickle

def _mismatch(model_keys, file_keys) -> str:
    missing, extra = sorted(set(model_keys) - set(file_keys)), sorted(set(file_keys) - set(model_keys))
    out = []
    if missing:
        out.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if extra:
        out.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
    return "; ".join(out)


def build_model(cfg: dict, names: dict[int, str], state_dict: dict, label: str):
    """A DetectionModel (fp32, eval) rebuilt from ``cfg`` and filled with ``state_dict`` (tensors cast to
    the model's dtypes). A state dict of a fused checkpoint (batch norms folded into the convolutions)
    fills the fused layout. Mismatched keys or shapes: BadInput."""
    import copy

    import torch
    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import LOGGER
    level = LOGGER.level
    LOGGER.setLevel(40)                     # no layer table, no "Overriding model.yaml nc" lines
    try:
        with torch.random.fork_rng(devices=[]):          # building draws random weights: leave the caller's RNG
            try:
                model = DetectionModel(copy.deepcopy(cfg), ch=3, verbose=False)
            except BadInput:
                raise
            except Exception as e:                       # noqa: BLE001 - a yaml ultralytics cannot build
                first = (str(e).strip().splitlines() or [""])[0]
                raise BadInput(f"{label}: cannot build the model from {YAML_FILE}: {type(e).__name__}: {first}") \
                    from None
            model = model.float().eval()
            keys = model.state_dict().keys()
            if set(keys) != set(state_dict):
                problem = _mismatch(keys, state_dict)
                model.fuse(verbose=False)                # a checkpoint saved after fuse(): no batch norms
                if set(model.state_dict()) != set(state_dict):
                    raise BadInput(f"{label}: {WEIGHTS_FILE} does not fit {YAML_FILE}: weights {problem}")
    finally:
        LOGGER.setLevel(level)
    target = model.state_dict()
    sd = {}
    for k, v in state_dict.items():
        t = target[k]
        if v.shape != t.shape:
            raise BadInput(f"{label}: {WEIGHTS_FILE} does not fit {YAML_FILE}: {k} has shape {tuple(v.shape)}, "
                           f"the model wants {tuple(t.shape)}")
        if v.is_floating_point() != t.is_floating_point():
            raise BadInput(f"{label}: {WEIGHTS_FILE}: {k} is {v.dtype}, the model wants {t.dtype}")
        sd[k] = v.to(t.dtype)
    model.load_state_dict(sd, strict=True)
    model.names = dict(names)
    model.task = "detect"
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_folder_model(d: Path, label: str | None = None):
    """(DetectionModel, yolo.json metadata) from a converted folder, without unpickling anything."""
    from safetensors.torch import load_file
    d = Path(d)
    label = label or f"yolo:{d}"
    cfg, names, meta = read_folder(d, label)
    try:
        state = load_file(str(d / WEIGHTS_FILE))
    except Exception as e:                               # noqa: BLE001 - what check_safetensors let through
        raise BadInput(f"{label}: {WEIGHTS_FILE} cannot be read ({type(e).__name__}: "
                       f"{(str(e).splitlines() or [''])[0]})") from None
    return build_model(cfg, names, state, label), meta


def wrap_in_yolo(module, source: Path, overrides: dict):
    """An ``ultralytics.YOLO`` around an already built DetectionModel, so that it predicts through
    ultralytics' own predictor exactly as ``YOLO("best.pt")`` does. The model object is handed in
    where YOLO would build one from a yaml; nothing is read from ``source`` (only named)."""
    import_ultralytics()
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT

    class Prebuilt(YOLO):
        def _new(self, cfg, task=None, verbose=False, *args, **kwargs):
            self.cfg = cfg
            self.task = "detect"
            self.model = module
            self.overrides.update({**overrides, "task": "detect"})
            self.model.args = {**DEFAULT_CFG_DICT, **self.overrides}
            self.model_name = cfg

    y = Prebuilt(str(Path(source).with_name(YAML_FILE)), task="detect")
    if y.model is not module:           # a future ultralytics that builds yaml models elsewhere
        import ultralytics
        raise RuntimeError(f"ultralytics {ultralytics.__version__}: cannot wrap a model rebuilt from safetensors")
    return y
