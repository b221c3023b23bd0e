"""JSONL records: every kind of bad line is reported with file:line and field, good lines survive,
--strict is fatal, the writer resumes by id and survives a torn last line."""
import json
import subprocess
import sys

import pytest

from halluc.cli import main
from halluc.records import BadInput, ReadReport, read_records
from halluc.outputs import ResumableWriter, atomic_write_json
from halluc.provenance import write_manifest


def _write(path, lines: list[bytes]):
    path.write_bytes(b"".join(l + b"\n" for l in lines))
    return path


GOOD = b'{"image_id": 1, "caption": "a dog"}'


@pytest.mark.parametrize("bad,field,msg", [
    (b'{"image_id": 2, "caption": "a cat"', None, "malformed JSON"),
    (b'{"image_id": 2}', "text", "missing"),
    (b'{"image_id": 2, "caption": 5}', "caption", "expected a string"),
    (b'{"image_id": [2], "caption": "x"}', "image_id", "expected a string or integer id"),
    (b'{"image_id": 2, "caption": "caf\xe9"}', None, "not valid UTF-8"),
    (b'[1, 2]', None, "expected a JSON object"),
    (GOOD, "image_id", "duplicate id"),
])
def test_bad_line_is_reported_and_the_rest_read(tmp_path, bad, field, msg):
    f = _write(tmp_path / "in.jsonl", [GOOD, bad, b'{"image_id": 3, "caption": "a cow"}'])
    rep = ReadReport(echo=False)
    items = list(read_records(f, need_text=True, report=rep))
    assert [i.id for i in items] == ["1", "3"] and rep.n_good == 2
    assert len(rep.bad) == 1
    b = rep.bad[0]
    assert (b.path, b.line, b.field) == (str(f), 2, field) and msg in b.message
    assert str(b).startswith(f"{f}:2: ")
    with pytest.raises(BadInput, match=f"{f}:2"):
        list(read_records(f, need_text=True, strict=True))


def test_aliases_and_overrides(tmp_path):
    f = _write(tmp_path / "a.jsonl", [b'{"question_id": 7, "answer": "Yes"}', b'{"qid": 8, "resp": "No"}'])
    rep = ReadReport(echo=False)
    got = [(i.id, i.text) for i in read_records(f, need_text=True, report=rep)]
    assert got == [("7", "Yes")] and rep.bad[0].line == 2
    got = [(i.id, i.text) for i in read_records(f, need_text=True, id_key="qid", text_key="resp",
                                                 report=ReadReport(echo=False))]
    assert got == [("8", "No")]


def test_required_field_types(tmp_path):
    f = _write(tmp_path / "a.jsonl", [b'{"id": 1, "text": "t", "image_id": true}'])
    rep = ReadReport(echo=False)
    assert list(read_records(f, need_text=True, required={"image_id": (int, str)}, report=rep)) == []
    assert rep.bad[0].field == "image_id" and "got bool" in rep.bad[0].message


def test_empty_file(tmp_path):
    f = tmp_path / "empty.jsonl"
    f.write_bytes(b"")
    rep = ReadReport(echo=False)
    assert list(read_records(f, report=rep)) == []
    assert "file is empty" in rep.bad[0].message
    with pytest.raises(BadInput, match="empty"):
        list(read_records(f, strict=True))


def test_cli_bad_lines_exit_codes_and_summary(tmp_path, capsys):
    f = _write(tmp_path / "caps.jsonl", [
        b'{"image_id": 9, "caption": "A bowl of broccoli and an orange."}',
        b'{"image_id": 25, "caption": "A giraffe and a dog."',          # malformed
        b'{"image_id": 25, "caption": "A giraffe and a dog."}',
        b'{"image_id": 999999999, "caption": "A cat."}',                  # not in the ground truth
    ])
    out = tmp_path / "o"
    assert main(["eval", "chair", str(f), "--out-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{f}:2:" in err and f"{f}:4: image_id:" in err
    res = json.loads((out / "results.json").read_text())
    assert res["n_captions"] == 2 and res["n_skipped"] == 2
    assert res["n_mentions"] == 5 and res["n_hallucinated"] == 1     # the dog
    assert main(["eval", "chair", str(f), "--strict", "--out-dir", str(out)]) == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["eval", "chair", str(empty), "--out-dir", str(out)]) == 2


def test_writer_resumes_and_cuts_torn_tail(tmp_path):
    p = tmp_path / "out.jsonl"
    with ResumableWriter(p) as w:
        w.write({"id": "a", "x": 1})
        w.write({"id": "b", "x": 2})
    with open(p, "ab") as f:
        f.write(b'{"id": "c", "x"')                   # killed mid-write
    w = ResumableWriter(p)
    assert w.done == {"a", "b"}
    w.write({"id": "c", "x": 3})
    w.close()
    lines = [json.loads(l) for l in p.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["a", "b", "c"]
    assert ResumableWriter(p, overwrite=True).done == set() and p.read_text() == ""


def test_writer_flushes_each_record(tmp_path):
    p = tmp_path / "out.jsonl"
    w = ResumableWriter(p)
    w.write({"id": "a"})
    assert json.loads(p.read_text()) == {"id": "a"}    # visible before close
    w.close()


def test_atomic_write_leaves_no_partial_file(tmp_path):
    p = tmp_path / "r.json"
    atomic_write_json(p, {"a": 1})

    class Boom:
        pass
    with pytest.raises(TypeError):
        atomic_write_json(p, {"a": Boom()})
    assert json.loads(p.read_text()) == {"a": 1}
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


def test_manifest(tmp_path):
    m = json.loads(write_manifest(tmp_path, command="eval chair", config={"variant": "lemma"}, seed=3,
                                  argv=["halluc", "eval"]).read_text())
    assert m["config"] == {"variant": "lemma"} and m["seed"] == 3 and m["argv"] == ["halluc", "eval"]
    assert m["versions"]["python"] and "halluc" in m["versions"] and "git" in m


def test_help_and_ls_do_not_import_torch():
    code = ("import sys; from halluc.cli import main\n"
            "for a in (['--help'], ['ls']):\n"
            "    try: main(a)\n"
            "    except SystemExit: pass\n"
            "bad = [m for m in ('torch', 'transformers', 'spacy', 'nltk') if m in sys.modules]\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_command_help_does_not_import_torch():
    """``halluc CMD --help`` for every command of the CLI table (and every eval metric, every world action)."""
    code = ("import sys; from halluc.cli import build_parser, main\n"
            "ap = build_parser(); sub = next(a for a in ap._actions if a.dest == 'command')\n"
            "cmds = [[c] for c in sub.choices] + [['eval', m] for m in sub.choices['eval']._actions[-1].choices]\n"
            "cmds += [['world', w] for w in ('generate', 'train')] + [['experiment', 'run']]\n"
            "for a in cmds:\n"
            "    try: main([*a, '--help'])\n"
            "    except SystemExit: pass\n"
            "bad = [m for m in ('torch', 'transformers', 'spacy', 'ultralytics') if m in sys.modules]\n"
            "assert not bad, bad\n"
            "print(len(cmds))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip().splitlines()[-1]) >= 14
