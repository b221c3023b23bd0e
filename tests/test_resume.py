"""Interrupted and concurrent runs: nothing lost, nothing duplicated, nothing torn.

- every decode method gives each example the same output whatever batch it lands in: a straight run,
  an interrupted-and-resumed run and a run with another batch size write the same records;
- Ctrl-C (SIGINT) and SIGTERM exit 130 with "interrupted: N records written to PATH; run the same
  command to resume", no traceback and no torn line, and the rerun completes the file;
- a corrupt line in the middle of an output is dropped and its id done again, said on stderr;
- a second run on the same output is refused while the first holds it.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halluc.registry import names
from halluc.outputs import OutputLocked, ResumableWriter

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--no-progress", "--max-new-tokens", "6", "--dataset", "world-bias"]


def records(path: Path) -> dict[str, dict]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        assert r["id"] not in out, f"duplicate id {r['id']} in {path}"
        out[r["id"]] = r
    return out


def texts(path: Path) -> dict[str, str]:
    return {k: r["text"] for k, r in records(path).items()}


@pytest.mark.parametrize("method", names("decoder"))
def test_same_output_whatever_the_batch_or_interruption(method, tiny_model, tmp_path):
    from halluc.cli import main
    base = ["decode", "--method", method, "--model", str(tiny_model), *FAST, "--seed", "3"]
    if method == "beam":
        base += ["--set", "num_beams=2"]
    straight, other, resumed = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    assert main([*base, "--limit", "6", "--batch-size", "4", "--out", str(straight)]) == 0
    assert main([*base, "--limit", "6", "--batch-size", "3", "--out", str(other)]) == 0
    assert main([*base, "--limit", "2", "--batch-size", "2", "--out", str(resumed)]) == 0     # "interrupted" after 2
    assert main([*base, "--limit", "6", "--batch-size", "4", "--out", str(resumed)]) == 0     # the same command, resumed
    a = texts(straight)
    assert len(a) == 6 and a == texts(other) == texts(resumed)


def _spawn(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "halluc", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_says_what_was_written_and_resumes(sig, tiny_model, tmp_path):
    out = tmp_path / "run" / "captions.jsonl"
    args = ["decode", "--method", "greedy", "--model", str(tiny_model), *FAST, "--batch-size", "1",
            "--max-new-tokens", "24", "--limit", "300", "--out", str(out)]
    p = _spawn(args, tmp_path)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted: " + p.stderr.read()[-2000:]
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    n = len(out.read_text(encoding="utf-8").splitlines())
    assert out.read_text(encoding="utf-8").endswith("\n")                         # no torn line
    assert f"interrupted: {n} records written to {out}; run the same command to resume" in err
    assert not list(out.parent.glob(".*.lock"))                                   # the lock went with the run
    # the same command with a smaller limit completes it: nothing redone, nothing lost
    from halluc.cli import main
    assert main([*args[:-4], "--limit", str(n + 2), "--out", str(out)]) == 0
    recs = records(out)
    assert len(recs) == n + 2


def test_corrupt_line_in_the_middle_is_redone_not_the_rest(tiny_model, tmp_path, capsys):
    from halluc.cli import main
    out = tmp_path / "c.jsonl"
    args = ["decode", "--model", str(tiny_model), *FAST, "--batch-size", "4", "--limit", "8", "--out", str(out)]
    assert main(args) == 0
    want = texts(out)
    lines = out.read_text(encoding="utf-8").splitlines(True)
    lines[3] = lines[3][: len(lines[3]) // 2] + "\n"                # a torn record in the middle
    lines[5] = '{"id": "x", "text": \n'                             # and a corrupt one
    out.write_text("".join(lines), encoding="utf-8")
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "dropped 2 torn, corrupt or duplicate line(s)" in err and "2 decoded, 6 already done" in err
    assert texts(out) == want


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "o.jsonl"
    with ResumableWriter(path) as w:
        w.write({"id": "a"})
        with pytest.raises(OutputLocked, match="another run is writing this file"):
            ResumableWriter(path)
        # a second process too (flock is per open file description, so this is the real case)
        r = subprocess.run([sys.executable, "-c", "from halluc.outputs import ResumableWriter as W; W(%r)" % str(path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "another run is writing this file" in r.stderr
    with ResumableWriter(path) as w:                                    # released on close
        assert w.done == {"a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]


def test_two_decodes_on_one_output_do_not_duplicate(tiny_model, tmp_path):
    out = tmp_path / "c.jsonl"
    args = ["decode", "--model", str(tiny_model), *FAST, "--batch-size", "1", "--max-new-tokens", "24",
            "--limit", "300", "--out", str(out)]
    first = _spawn(args, tmp_path)
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.05)
    second = _spawn(args, tmp_path)
    _, err = second.communicate(timeout=120)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    assert second.returncode == 2 and "another run is writing this file" in err and "Traceback" not in err
    records(out)                                                        # no duplicate ids


def test_writer_never_leaves_half_a_line(tmp_path, monkeypatch):
    path = tmp_path / "o.jsonl"
    w = ResumableWriter(path)
    w.write({"id": "a"})

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def tell(self):
            return self.fh.tell()

        def fileno(self):
            return self.fh.fileno()

        def write(self, data):
            self.fh.write(data[:7])                                     # the disk fills mid-record
            raise OSError(28, "No space left on device")
    real = w._fh
    w._fh = Full(real)
    with pytest.raises(OSError, match="No space"):
        w.write({"id": "b", "text": "x" * 100})
    w._fh = real
    w.close()
    assert path.read_text() == '{"id": "a"}\n'


def test_outputs_respect_the_umask(tmp_path):
    from halluc.outputs import atomic_write_json
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "r.json", {"a": 1})
        with ResumableWriter(tmp_path / "o.jsonl") as w:
            w.write({"id": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "o.jsonl").stat().st_mode & 0o777 == 0o644
