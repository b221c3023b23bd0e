"""``halluc view``: browse corrected captions in a local Streamlit app (read-only; halluc/viewer/).

    halluc view runs/x/corrected.jsonl                          # http://127.0.0.1:8501
    halluc view greedy.jsonl vcd.jsonl corrected.jsonl --port 8600   # several files, joined by id
    halluc view corrected.jsonl --images val2014/               # COCO records: images under val2014/
    halluc view corrected.jsonl --open                          # also open it in a web browser

Streamlit is started with its settings on its command line (they override any ``~/.streamlit`` or
``./.streamlit`` config): no usage statistics, no first-run e-mail prompt (``server.showEmailPrompt``
false: without it, a machine with no ``~/.streamlit/credentials.toml`` waits on that prompt forever
when stdin is not a terminal), headless (no browser) unless ``--open``, no file watcher, stdin closed.
The file list reaches the app in the environment variable ``HALLUC_VIEW`` (JSON), never through a shell.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from halluc.command import guard, module_main
from halluc.viewer import ENV, config

APP = Path(__file__).resolve().parents[1] / "viewer" / "app.py"


def port_number(s: str) -> int:
    """A TCP port, 1..65535 (``type=port_number``)."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number (1..65535), got {s!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 1..65535, got {v}")
    return v


port_number.__name__ = "port number"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "view", help="browse corrected captions in a local Streamlit app",
        description="Start a read-only Streamlit viewer of halluc JSONL files (DESIGN.md §1). Several files "
                                 "are shown side by side, joined by id. Images are read only from under --images, or by "
                    "default from the input files' folders and (world records) the halluc world cache. "
                    "Streamlit runs with settings of its own: headless (no browser opened; --open opens one), "
                    "no usage statistics, no first-run e-mail prompt, so it also serves from a script or "
                    "a service with no terminal.")
    p.add_argument("files", nargs="+", type=Path, help="JSONL files (corrected.jsonl, captions.jsonl, ...)")
    p.add_argument("--images", type=Path, help="the only folder images are read from; relative image paths and "
                   "COCO image ids refer to it")
    p.add_argument("--port", type=port_number, default=8501, help="port, 1..65535 (default %(default)s)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    b = p.add_mutually_exclusive_group()
    b.add_argument("--open", action="store_true", help="open the viewer in a web browser once it serves")
    b.add_argument("--headless", action="store_false", dest="open",
                   help="do not open a browser (the default; kept for older scripts)")
    p.set_defaults(func=run)
    return p


def command(port: int, address: str = "127.0.0.1", open_browser: bool = False) -> list[str]:
    """The Streamlit command line: every setting that could stop or slow a start is given here, where it
    overrides the user's and the project's ``.streamlit/config.toml``."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", address, "--server.headless", str(not open_browser).lower(),
            "--server.showEmailPrompt", "false", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false"]


def _run(args) -> int:
    from halluc.paths import input_dir, input_file
    for f in args.files:                      # a folder, FIFO, missing or unreadable file: one line, exit 2
        input_file(f)
    if args.images is not None:
        input_dir(args.images, "--images")
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("error: halluc view needs streamlit (pip install streamlit)", file=sys.stderr)
        return 2
    env = {**os.environ, ENV: config(args.files, args.images)}
    print(f"halluc view: http://{args.address}:{args.port}/  (Ctrl-C stops it)", file=sys.stderr)
    proc = subprocess.Popen(command(args.port, args.address, args.open), env=env, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))     # a TERM to halluc view stops the server too
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:                                   # never leave the server behind
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.view FILE …`` (``halluc view`` is the same)."""
    return module_main(add_parser, argv, command="view")


if __name__ == "__main__":
    sys.exit(main())
