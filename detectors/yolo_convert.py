"""Turn a trusted ultralytics ``.pt`` into a folder that loads without a pickle (``halluc convert-yolo``).

    halluc convert-yolo best.pt --out models/best --trust-pickle      # once, on a file you trust
    halluc correct captions.jsonl --detector yolo:models/best          # from then on: no pickle

A ``.pt`` is a pickle: loading it runs code from the file, so it is loaded here once, only with
``--trust-pickle``, and written as

    model.safetensors   the state dict; float tensors in fp16 where that is exact (always so for the
                        checkpoints ultralytics saves, which it stores in half), else at their dtype (fp32)
    model.yaml          the model's ultralytics yaml, with ``names`` (the class names) added
    yolo.json           source file name and sha256, imgsz (the size it was trained at), versions

``detectors.load("yolo:DIR")`` rebuilds the model from the yaml and fills it from the safetensors
(detectors/yolo.py). Before anything is written to ``--out`` the conversion is checked: the folder,
loaded the way the detector loads it, must hold exactly the checkpoint's weights and give the same
outputs on a probe image. The output is deterministic (no timestamps): the same .pt, the same files.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

from detectors.yolo import truthy
from detectors.yolo_folder import META_FILE, WEIGHTS_FILE, YAML_FILE, import_ultralytics, load_folder_model
from halluc.errors import BadInput

TRUST_HELP = ("A .pt is a pickle: loading it runs code from the file. Convert only files you trust "
              "(your own training run, or a download whose checksum you have checked)")


def _stored(t):
    """The tensor as written: fp16 when that holds its values exactly, else unchanged (contiguous)."""
    import torch
    t = t.detach().cpu()
    if t.is_floating_point() and t.dtype != torch.float16:
        h = t.to(torch.float16)
        if torch.equal(h.to(t.dtype), t):
            return h.contiguous()
    return t.contiguous().clone()


def _no_alias_dumper():
    import yaml

    class Dumper(yaml.SafeDumper):          # repeated objects written out: halluc's yaml reader refuses aliases
        def ignore_aliases(self, data):
            return True
    return Dumper


def _tensors(x) -> list:
    import torch
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors(v)]
    return []


def _same_outputs(ref, new, label: str) -> None:
    """Both models, fused as ultralytics' predictor fuses them, on one fixed probe image."""
    import torch
    s = max(64, 2 * int(ref.stride.max()))
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a = _tensors(ref.fuse(verbose=False)(x))
        b = _tensors(new.fuse(verbose=False)(x))
    if len(a) != len(b) or any(u.shape != v.shape for u, v in zip(a, b)):
        raise BadInput(f"{label}: the model rebuilt from its yaml has another output layout; it cannot be "
                       "converted faithfully")
    for u, v in zip(a, b):
        if not torch.allclose(u, v, rtol=1e-5, atol=1e-5):
            d = (u - v).abs().max().item()
            raise BadInput(f"{label}: the model rebuilt from its yaml gives other outputs (max |difference| "
                           f"{d:.3g}); it cannot be converted faithfully")


def convert(pt_path, out_dir, trust_pickle: bool = False) -> Path:
    """Load ``pt_path`` (a YOLO detection checkpoint) once and write model.safetensors, model.yaml and
    yolo.json to ``out_dir`` (created; those three files are replaced). Refused (BadInput) unless
    ``trust_pickle``: loading a .pt runs code from it. Returns ``out_dir``."""
    from halluc.paths import input_file, output_dir
    from halluc.outputs import atomic_write_text
    from halluc.provenance import sha256_files
    pt = Path(pt_path)
    if not truthy(trust_pickle):
        raise BadInput(f"{pt}: not converted: a .pt checkpoint is a pickle, and loading it runs code from the "
                       "file. If you trust it (your own training run, a checked download), pass --trust-pickle")
    input_file(pt, "checkpoint")
    if pt.suffix != ".pt":
        raise BadInput(f"checkpoint {pt}: expected an ultralytics .pt file")
    out = output_dir(out_dir, "--out")
    label = f"convert-yolo {pt}"

    import torch
    ultralytics = import_ultralytics()
    from safetensors.torch import save_file
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    source_sha256 = sha256_files([pt])               # the bytes that were trusted
    try:
        y = YOLO(str(pt.resolve()), task="detect")   # THE unpickling: an absolute, existing path, no download
    except Exception as e:                           # noqa: BLE001 - not a checkpoint ultralytics reads
        first = (str(e).strip().splitlines() or [""])[0]
        raise BadInput(f"{label}: ultralytics cannot load it ({type(e).__name__}: {first})") from None
    model = y.model
    if type(model) is not DetectionModel:
        raise BadInput(f"{label}: a {type(model).__name__} ({getattr(model, 'task', '?')} model); only plain "
                       "detection models (DetectionModel) convert")
    if (y.ckpt or {}).get("modelopt"):
        raise BadInput(f"{label}: a quantization-aware (QAT) checkpoint; these do not convert")
    names = dict(model.names)
    if sorted(names) != list(range(len(names))):
        raise BadInput(f"{label}: class ids {sorted(names)[:5]}... are not 0..n-1")
    doc = copy.deepcopy(dict(model.yaml))
    if doc.get("nc") != len(names):
        raise BadInput(f"{label}: the yaml says nc={doc.get('nc')!r} but the model names {len(names)} classes")
    doc["names"] = [str(names[i]) for i in range(len(names))]
    imgsz = y.overrides.get("imgsz")
    if not (isinstance(imgsz, int) and not isinstance(imgsz, bool) or
            isinstance(imgsz, (list, tuple)) and all(isinstance(v, int) for v in imgsz)):
        imgsz = None
    meta = {"source": pt.name, "source_sha256": source_sha256, "imgsz": list(imgsz) if isinstance(imgsz, tuple)
            else imgsz, "task": "detect", "nc": len(names),
            "fused": bool(model.is_fused()) if hasattr(model, "is_fused") else None,
            "float_storage": "fp16 where exact, else the checkpoint's loaded dtype",
            "ultralytics": ultralytics.__version__, "torch": torch.__version__.split("+")[0],
            "converted_by": "halluc convert-yolo"}

    import yaml
    try:
        text = yaml.dump(doc, Dumper=_no_alias_dumper(), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as e:
        raise BadInput(f"{label}: its model yaml holds values that are not plain data ({e})") from None
    sd = model.state_dict()
    tensors = {k: _stored(v) for k, v in sd.items()}

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-yolo-", dir=out))
    try:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})   # one key: the header order is fixed
        atomic_write_text(tmp / YAML_FILE, text)
        atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=1) + "\n")
        # The check: loaded as the detector loads it, the folder holds these weights and gives these outputs.
        new, _ = load_folder_model(tmp, label)
        got = new.state_dict()
        if set(got) != set(sd) or not all(torch.equal(got[k], sd[k].to(got[k].dtype)) and got[k].dtype == sd[k].dtype
                                          for k in sd):
            raise BadInput(f"{label}: the written weights do not read back exactly")
        _same_outputs(copy.deepcopy(model).float().eval(), new, label)
        for name in (WEIGHTS_FILE, YAML_FILE, META_FILE):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
