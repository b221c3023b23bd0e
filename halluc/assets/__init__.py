"""Data shipped inside the package (see README.md here for sources and licences)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def asset_path(rel: str) -> Path:
    p = ROOT / rel
    if not p.exists():
        raise FileNotFoundError(f"bundled asset missing: {p} (a broken install? reinstall halluc)")
    return p
