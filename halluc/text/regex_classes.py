"""The third-party ``regex`` engine's ``\\s``, ``\\w`` and ``\\d``, for the stdlib ``re``.

NLTK compiles its tokenizer patterns with ``regex``, whose classes differ from
the stdlib ``re`` ones (``\\w`` includes combining marks, ``\\s`` excludes
U+001C..U+001F, ``\\d`` knows newer digits).  The Punkt splitter
(``halluc/text/punkt.py``) and the Treebank rules (``halluc/text/tokenize.py``)
therefore spell those classes out from the table that
``halluc/assets/punkt_english/regex_unicode_classes.txt`` ships.  This module
also reads every file of that folder (``read_lines``), as NLTK reads them.

Usage::

    >>> import re
    >>> from halluc.text.regex_classes import classes, read_lines
    >>> c = classes()                      # parsed once, on first call
    >>> c.isword("\\u0301"), c.isdigit("\\u0663"), c.isword("-")
    (True, True, False)
    >>> bool(re.fullmatch(f"[{c.space}]+", " \\t\\n"))   # regex's \\s+
    True
    >>> "mr" in read_lines("abbrev_types.txt")
    True
"""

from __future__ import annotations

import os
from bisect import bisect_right

__all__ = ["ASSETS", "UnicodeClasses", "classes", "read_lines"]

ASSETS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "punkt_english"
)

_CLASSES = None


def read_lines(name: str) -> list[str]:
    """The lines of ``halluc/assets/punkt_english/<name>``, without their newlines."""
    # Split on "\n" only (not splitlines()), as NLTK's loader iterates lines;
    # entries may legitimately end in a space (one abbreviation does).
    with open(os.path.join(ASSETS, name), encoding="utf-8", newline="") as f:
        text = f.read()
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def _ranges(spec: str) -> tuple[list[int], list[int]]:
    """'30-39,5f' -> (starts, ends) of the inclusive code-point ranges."""
    starts, ends = [], []
    for item in spec.split(","):
        lo, _, hi = item.partition("-")
        starts.append(int(lo, 16))
        ends.append(int(hi or lo, 16))
    return starts, ends


def _class_body(starts: list[int], ends: list[int]) -> str:
    """A regex character-class body (no brackets) for the given ranges."""
    return "".join(
        "\\U%08x" % a + ("-\\U%08x" % b if b != a else "") for a, b in zip(starts, ends)
    )


class UnicodeClasses:
    """``space``/``digit``: class bodies to put in ``[...]``; ``isword``/``isdigit``: one-char tests."""

    def __init__(self) -> None:
        cls = {}
        for line in read_lines("regex_unicode_classes.txt"):
            if line and not line.startswith("#"):
                name, spec = line.split("\t")
                cls[name] = _ranges(spec)
        # \w is only ever tested one character at a time, so it stays a range
        # table (compiling its ~800 ranges into a pattern costs ~25 ms).
        self.word_starts, self.word_ends = cls["word"]
        self.digit_starts, self.digit_ends = cls["digit"]
        self.space = _class_body(*cls["space"])  # body of regex's \s
        self.digit = _class_body(*cls["digit"])  # body of regex's \d

    def isword(self, ch: str) -> bool:
        """``regex``'s \\w for one character."""
        if ch < "\x80":
            return ch.isalnum() or ch == "_"
        cp = ord(ch)
        i = bisect_right(self.word_starts, cp) - 1
        return i >= 0 and cp <= self.word_ends[i]

    def isdigit(self, ch: str) -> bool:
        """``regex``'s \\d for one character."""
        if ch < "\x80":
            return "0" <= ch <= "9"
        cp = ord(ch)
        i = bisect_right(self.digit_starts, cp) - 1
        return i >= 0 and cp <= self.digit_ends[i]


def classes() -> UnicodeClasses:
    """The shipped tables, parsed on first call and shared by both tokenizer stages."""
    global _CLASSES
    if _CLASSES is None:
        _CLASSES = UnicodeClasses()
    return _CLASSES
