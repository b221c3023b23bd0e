"""``halluc convert-yolo FILE.pt --out DIR --trust-pickle``: the one trusted unpickle of an ultralytics
checkpoint, written as a safetensors folder that ``--detector yolo:DIR`` loads with no pickle
(detectors/yolo_convert.py does the work).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from halluc.command import guard, module_main


def add_parser(subparsers) -> argparse.ArgumentParser:
    from detectors.yolo_convert import TRUST_HELP
    p = subparsers.add_parser(
        "convert-yolo", help="convert a trusted ultralytics YOLO .pt (a pickle) to safetensors + model.yaml, once",
        description="Load an ultralytics YOLO detection checkpoint (.pt) once and write model.safetensors, "
                                 "model.yaml (with the class names) and yolo.json to --out; then use --detector yolo:OUT, "
                    "which loads no pickle. " + TRUST_HELP + ". The folder is checked (same weights, same "
                    "outputs) before anything is written.")
    p.add_argument("file", type=Path, metavar="FILE.pt",
                   help="the ultralytics checkpoint, e.g. runs/detect/train/weights/best.pt")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder to write model.safetensors, model.yaml and yolo.json in (created if missing)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="required: confirm that you trust FILE.pt. " + TRUST_HELP)
    p.set_defaults(func=run)
    return p


def _run(args) -> int:
    from detectors.yolo_folder import META_FILE, WEIGHTS_FILE, YAML_FILE
    from detectors.yolo_convert import convert
    out = convert(args.file, args.out, trust_pickle=args.trust_pickle)
    meta = json.loads((out / META_FILE).read_text())
    print(f"{args.file} -> {out}: {WEIGHTS_FILE}, {YAML_FILE}, {META_FILE} ({meta['nc']} classes, imgsz "
          f"{meta['imgsz']}); use --detector yolo:{out}", file=sys.stderr)
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.convert_yolo FILE.pt --out DIR --trust-pickle``"""
    return module_main(add_parser, argv, command="convert-yolo")


if __name__ == "__main__":
    sys.exit(main())
