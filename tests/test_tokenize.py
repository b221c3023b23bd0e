"""Parity of halluc.text.tokenize with nltk.word_tokenize / nltk.sent_tokenize.

The reference is real NLTK: its own ``nltk.word_tokenize`` and
``nltk.sent_tokenize`` functions, with the Punkt model they load replaced by a
``PunktSentenceTokenizer`` built from the parameters we ship (nltk_data cannot
be downloaded here, and the files are exactly NLTK's English ``punkt_tab``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from halluc.text.tokenize import sent_tokenize, word_tokenize

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "halluc" / "assets" / "punkt_english"
# ../shared/data beside the checkout; HALLUC_SHARED overrides (as conftest.py).
SHIELD = (
    Path(os.environ.get("HALLUC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    / "data" / "reference-outputs" / "shield_llava15_chair.jsonl"
)
# Every published log beside it, and NLTK's own English punkt_tab data.
REFERENCE_LOGS = sorted(SHIELD.parent.glob("*.jsonl"))
NLTK_DATA = SHIELD.parents[1] / "nltk_data"
PUNKT_TAB = NLTK_DATA / "tokenizers" / "punkt_tab" / "english"


def _lines(name: str) -> list[str]:
    text = (ASSETS / name).read_text(encoding="utf-8")
    return text[:-1].split("\n")


@pytest.fixture(scope="module")
def nltk_ref():
    """(nltk.sent_tokenize, nltk.word_tokenize) running on our shipped model."""
    nltk = pytest.importorskip("nltk")
    import nltk.tokenize as nt
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    if not hasattr(nltk, "redos"):
        # Our target: NLTK >= 3.10, whose tokenizer patterns run on the
        # `regex` engine (older NLTK used `re`, with other Unicode classes).
        pytest.skip("parity target is NLTK >= 3.10 (tokenizers on `regex`)")
    params = PunktParameters()
    params.abbrev_types = set(_lines("abbrev_types.txt"))
    params.sent_starters = set(_lines("sent_starters.txt"))
    params.collocations = {tuple(x.split("\t")) for x in _lines("collocations.tab")}
    params.ortho_context = defaultdict(
        int, {k: int(v) for k, v in (x.split("\t") for x in _lines("ortho_context.tab"))}
    )
    punkt = PunktSentenceTokenizer(params)
    with pytest.MonkeyPatch.context() as mp:
        # word_tokenize -> sent_tokenize -> _get_punkt_tokenizer("english")
        mp.setattr(nt, "_get_punkt_tokenizer", lambda language="english": punkt)
        yield nltk.sent_tokenize, nltk.word_tokenize


def _check(ref, text: str) -> None:
    ref_sent, ref_word = ref
    assert sent_tokenize(text) == ref_sent(text)
    assert word_tokenize(text) == ref_word(text)


TRICKY = [
    "",
    " ",
    "\n\n",
    "a dog sits on a sofa.",
    "a caption ending without a period",
    "mr. smith met dr. jones at st. mary's church.",
    "Mr. Smith met Dr. Jones. They talked.",
    "fruit, e.g. apples, and i.e. pears. the end.",
    "it costs 3.5 dollars or $4.25 today. 12. that is all.",
    "wait... what? no!! really?! yes.",
    "there is a dog . . . and a cat.",
    '"hello," she said. "don\'t go." \'ok\' he said.',
    "don't can't won't child's dogs' i'm you're we've they'll he'd",
    "cannot gonna gimme gotta lemme wanna go 'tis 'twas d'ye more'n",
    "a (small) dog [left] {right} <tag> sits.",
    "(How does it deal with this parenthesis?)  \"It should be part of the\n"
    "previous sentence.\" \"(And the same with this one.)\" ('And this one!')\n"
    "\"('(And (this)) '?)\" [(and this. )]",
    "a dog.\nthe cat sleeps.\n\nanother paragraph here.",
    "multiple   spaces   here.   and   there.",
    "j. s. bach and J. S. Bach played. The u.s. army left.",
    "the u.s. is big. The U.S. is big.",
    "jan. 5 and sept. 3. no. 4 is here.",
    "a -- b --- c ... d .. e",
    "“curly quotes.” next ‘one’ «guillemets» sentence.",
    "tab\tseparated.\tcolumns here",
    "key: value, 3,5 and a:b",
    "50% of @users #tag & co; fine.",
    "a figure‒dash, en–dash, em—dash and bar―here.",
    "the end.)",
    "the end.' next",
    "a.b.c. d",
    "ellipsis at end...",
    "question at end?",
    "!!!",
    ". leading period",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings(nltk_ref, text):
    _check(nltk_ref, text)
    _check(nltk_ref, text.lower())


def test_shield_captions(nltk_ref):
    if not SHIELD.exists():
        pytest.skip(f"{SHIELD} not present")
    captions = [json.loads(line)["caption"] for line in SHIELD.open(encoding="utf-8")]
    assert len(captions) == 500
    ref_sent, ref_word = nltk_ref
    for caption in captions:
        low = caption.lower()  # as CHAIR does
        assert word_tokenize(low) == ref_word(low), caption
        assert sent_tokenize(low) == ref_sent(low), caption


@pytest.fixture(scope="module")
def nltk_punkt_tab():
    """(nltk.sent_tokenize, nltk.word_tokenize) on NLTK's own English
    punkt_tab, loaded by NLTK from ../shared/data/nltk_data (not our copy)."""
    nltk = pytest.importorskip("nltk")
    import nltk.data
    import nltk.tokenize as nt
    from nltk.tokenize.punkt import PunktTokenizer

    if not hasattr(nltk, "redos"):
        pytest.skip("parity target is NLTK >= 3.10 (tokenizers on `regex`)")
    if not PUNKT_TAB.is_dir():
        pytest.skip(f"{PUNKT_TAB} not present")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nltk.data, "path", [str(NLTK_DATA), *nltk.data.path])
        punkt = PunktTokenizer("english")  # what nltk's cached loader builds
        # Set explicitly: nltk_ref (module-scoped) may still patch this name,
        # and NLTK's own loader caches whatever it loaded first.
        mp.setattr(nt, "_get_punkt_tokenizer", lambda language="english": punkt)
        yield nltk.sent_tokenize, nltk.word_tokenize


def test_shipped_parameters_are_nltk_punkt_tab():
    # The parity tests above build NLTK's tokenizer from our shipped copy.
    if not PUNKT_TAB.is_dir():
        pytest.skip(f"{PUNKT_TAB} not present")
    for name in ("abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"):
        assert (ASSETS / name).read_bytes() == (PUNKT_TAB / name).read_bytes(), name


@pytest.mark.parametrize("log", REFERENCE_LOGS or [None], ids=lambda p: p.name if p else "none")
def test_reference_log_texts(nltk_punkt_tab, log):
    """Every caption/answer text of every shared reference log, as typed and
    lower-cased (as CHAIR), tokenises as real NLTK on its own punkt_tab data."""
    if log is None:
        pytest.skip(f"no reference logs in {SHIELD.parent}")
    ref_sent, ref_word = nltk_punkt_tab
    texts = set()
    with log.open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            text = record.get("caption", record.get("text"))
            assert isinstance(text, str), f"{log.name}: no caption/text in {line[:80]}"
            texts.update((text, text.lower()))
    for text in sorted(texts):
        assert word_tokenize(text) == ref_word(text), text
        assert sent_tokenize(text) == ref_sent(text), text


# ---------------------------------------------------------------- hypothesis
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = [
    "mr", "Mr", "st", "e.g", "dog", "The", "the", "However", "He", "I", "it",
    "3.5", "3", "-3", ",5", "a", "J", "j", "can't", "don't", "child's",
    "cannot", "gonna", "'tis", "u.s", "U.S", "inc", "no", "x-ray", "é",
    "\u0301a", "a\u0301", "²", "ſ", "'re", "'s", "'ll", "n't", "N'T", "wanna",
    "jan", "Jan", "ABC", "Co", "٣", "\U000116d0", "Bach", "Sales", "henley",
]
_PUNCT = list(".,;:!?\"'`()[]{}<>-…«»“”‘’„*@#$%&/") + [
    "...", ". .", ". . .", "''", "``", "--", "?!", "!!!", ".)", '."', ".'",
    ".»", ".’", "\u2013", "\u2014", "\x1c",
]
_SPACE = [" ", "  ", "\n", "\n\n", "\t", "\r\n", "\xa0", "\u2028", "\x85", "\x0b"]
_BUILT = st.lists(
    st.one_of(
        st.sampled_from(_WORDS),
        st.sampled_from(_PUNCT),
        st.sampled_from(_SPACE),
        st.characters(),
    ),
    max_size=30,
).map("".join)
_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(text=st.text(max_size=80))
def test_hypothesis_arbitrary_unicode(nltk_ref, text):
    _check(nltk_ref, text)


@_SETTINGS
@given(text=_BUILT)
def test_hypothesis_words_punctuation_whitespace(nltk_ref, text):
    _check(nltk_ref, text)
    _check(nltk_ref, text.lower())


@settings(max_examples=150, deadline=None, database=None)
@given(text=st.text(max_size=200))
def test_never_crashes(text):
    # No nltk needed: any string gives lists of strings.
    sents, toks = sent_tokenize(text), word_tokenize(text)
    assert all(isinstance(s, str) and s for s in sents)
    assert all(isinstance(t, str) and t and not t.isspace() for t in toks)


# --------------------------------------------------------- without nltk
def test_known_outputs():
    # Pinned outputs (checked against nltk), so the suite tests something
    # even where nltk is not installed.
    assert word_tokenize("a dog sits on mr. smith's sofa. it sleeps.") == [
        "a", "dog", "sits", "on", "mr.", "smith", "'s", "sofa", ".", "it", "sleeps", ".",
    ]
    # "ok" is an abbreviation (Oklahoma) in NLTK's English model.
    assert sent_tokenize("a dog. the cat... i can't see! (ok.) fine") == [
        "a dog.", "the cat... i can't see!", "(ok.) fine",
    ]
    assert word_tokenize("there is a dog. 3.5 cats, a \"red\" car") == [
        "there", "is", "a", "dog", ".", "3.5", "cats", ",", "a", "``", "red", "''", "car",
    ]
    assert word_tokenize("") == [] and sent_tokenize("   ") == []


def test_shipped_parameters():
    assert len(_lines("abbrev_types.txt")) == 156
    assert len(_lines("collocations.tab")) == 37
    assert len(_lines("sent_starters.txt")) == 39
    assert len(_lines("ortho_context.tab")) == 20366
    assert {"mr", "dr", "st", "u.s", "jan"} <= set(_lines("abbrev_types.txt"))


def test_does_not_import_nltk():
    code = (
        "import sys\n"
        "import halluc.text.tokenize as t\n"
        "assert t._MODEL is None  # nothing loaded at import\n"
        "assert t.word_tokenize('a dog. a cat.') == ['a', 'dog', '.', 'a', 'cat', '.']\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('nltk', 'regex')]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_split_modules_load_nothing_at_import():
    # The Punkt parameters and character tables also wait for the first call.
    code = (
        "import sys\n"
        "import halluc.text.tokenize as t, halluc.text.punkt as p, halluc.text.regex_classes as c\n"
        "assert (t._MODEL, p._PARAMS, c._CLASSES) == (None, None, None)\n"
        "assert p.sent_tokenize('a dog. a cat.') == ['a dog.', 'a cat.']\n"
        "assert p._PARAMS._ortho is None  # only after abbreviations, initials, numbers\n"
        "assert t._MODEL is None and c._CLASSES is not None\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_unicode_tables_match_regex():
    """The shipped \\s \\w \\d tables are those of the installed `regex`."""
    regex = pytest.importorskip("regex")
    everything = "".join(map(chr, range(0x110000)))
    tables = {}
    for line in _lines("regex_unicode_classes.txt"):
        if line and not line.startswith("#"):
            name, spec = line.split("\t")
            tables[name] = [
                tuple(int(x, 16) for x in (item.split("-") * 2)[:2])
                for item in spec.split(",")
            ]
    for name, pat in (("space", r"\s+"), ("word", r"\w+"), ("digit", r"\d+")):
        runs = [(m.start(), m.end() - 1) for m in regex.finditer(pat, everything)]
        assert runs == tables[name], f"{name}: table differs from regex {regex.__version__}"
