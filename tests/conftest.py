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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random model of the builtin architecture (LLaVA with the world's word-level vocabulary),
    saved once per session: ``--model DIR`` for command tests."""
    import torch
    from halluc.world.vlm import VlmSpec, build, save
    d = tmp_path_factory.mktemp("tinyvlm")
    torch.manual_seed(0)
    model, processor = build(VlmSpec(image_size=32, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=2,
                                     text_hidden=64, text_layers=2, text_heads=2, max_positions=64))
    save(model, processor, d)
    return d


@pytest.fixture
def no_hang():
    """A FIFO opened for reading blocks forever: fail the test after 60 s instead of hanging the suite."""
    import signal

    def alarm(*_):
        raise TimeoutError("blocked (a FIFO opened?)")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def run_command(argv, capsys) -> tuple[int, str]:
    """``halluc ARGV`` in this process: (exit status, stderr); argparse's own exit counts as a status."""
    from halluc.cli import main
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err
