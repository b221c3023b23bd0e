"""Shared fixtures. Reference data lives in ../shared/data beside the checkout (HALLUC_SHARED overrides)."""
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("HALLUC_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED} (set HALLUC_SHARED to the shared/ folder)")
    return SHARED
