"""Exact, dependency-free re-implementation of ``nltk.word_tokenize`` (English).

CHAIR (Rohrbach et al. 2018) lower-cases a caption and tokenises it with
``nltk.word_tokenize``: Punkt sentence splitting with NLTK's pretrained English
parameters, then NLTK's improved Treebank tokenizer (``NLTKWordTokenizer``) on
each sentence.  Published numbers depend on that exactly -- e.g. the Treebank
rules split a period off only at the end of a sentence, so whether ``dog.``
becomes ``dog`` ``.`` is decided by Punkt.  Importing nltk is too slow for the
CLI, and its data cannot be downloaded here, so both stages are re-implemented
with the standard library only, reading the English Punkt parameters from
plain-text files in ``halluc/assets/punkt_english/``:

- ``halluc/text/punkt.py``: the sentence splitter (``sent_tokenize``);
- this module: the Treebank word rules and ``word_tokenize``;
- ``halluc/text/regex_classes.py``: the character classes both use.

Usage::

    >>> from halluc.text.tokenize import sent_tokenize, word_tokenize
    >>> word_tokenize("a dog sits on mr. smith's sofa. it sleeps.")
    ['a', 'dog', 'sits', 'on', 'mr.', 'smith', "'s", 'sofa', '.', 'it', 'sleeps', '.']
    >>> sent_tokenize("a dog sits on mr. smith's sofa. it sleeps.")
    ["a dog sits on mr. smith's sofa.", 'it sleeps.']

Both give what ``nltk.word_tokenize(text)`` / ``nltk.sent_tokenize(text)``
(language="english", preserve_line=False) give with the NLTK version this was
checked against (3.10.4), for any string; ``tests/test_tokenize.py`` checks the
parity.  The parameters and compiled patterns load once, on first use.

Why the character classes are spelled out: NLTK compiles its patterns with
the third-party ``regex`` engine, whose ``\\s``, ``\\w`` and ``\\d`` differ
from the stdlib ``re`` ones, so wherever NLTK's pattern says
``\\s``/``\\w``/``\\d`` under ``regex``, we use the explicit classes of
``regex_classes.py``.  The only pattern NLTK runs through the stdlib ``re``
(the contraction splitting) we also run through ``re`` unchanged.  Python's
own ``str`` methods (``lower``, ``isupper``, ``strip``, ``split``) are used
exactly where NLTK uses them, for the same reason.
"""

from __future__ import annotations

import re

from halluc.text.punkt import sent_tokenize, sentence_spans
from halluc.text.regex_classes import classes

__all__ = ["sent_tokenize", "word_tokenize"]

# Closing brackets/quotes the Treebank final-period rules keep after the ".".
_CLOSERS = "\\]\\)}>\"'»”’"

_MODEL = None


class _Treebank:
    """The compiled patterns of nltk/tokenize/destructive.py (NLTKWordTokenizer).

    Each rule is guarded in the step functions below by a cheap test for the
    characters it needs; literal rules are done with str.replace.
    """

    def __init__(self) -> None:
        u = classes()
        self.isword = u.isword
        # regex-engine equivalents: s = \s, D = \d body.
        s, D = f"[{u.space}]", u.digit
        c = re.compile
        self.open_quotes = c("([«“‘„]|[`]+)").sub
        self.quote_after_open = c(r"""([ (\[{<])("|'{2})""").sub
        self.clitic = c("(?i:re|ve|ll|m|t|s|d|n)").match
        # The two final-period rules, from just after the last "." (see
        # _final_period); the first class holds a space, hence possessive.
        self.final_period_tail = c(f"([{_CLOSERS} ]*+){s}*$").match
        self.final_period_tail2 = c(f"([{_CLOSERS}]*){s}*$").match
        self.comma_colon = c(f"([:,])([^{D}])").sub
        self.comma_colon_end = c("([:,])$").sub
        self.dots = c(r"\.{2,}").sub
        self.symbols = c("[;@#$%&]").sub
        self.dashes = c("[\u2012-\u2015]").sub  # figure/en/em dash, bar
        self.quote_space = c("([^'])' ").sub
        self.parens = c(r"[\]\[(){}<>]").sub
        self.close_quotes = c("([»”’])").sub
        self.spaces = c(f"{s}+").sub
        self.clitics1 = c("([^' ])('[sS]|'[mM]|'[dD]|') ").sub
        self.clitics2 = c("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ").sub
        # NLTK compiles these with the stdlib re (so \b uses re's \w): same here.
        self.contractions = [
            c(p).sub
            for p in (
                r"(?i)\b(can)(not)\b",
                r"(?i)\b(d)('ye)\b",
                r"(?i)\b(gim)(me)\b",
                r"(?i)\b(gon)(na)\b",
                r"(?i)\b(got)(ta)\b",
                r"(?i)\b(lem)(me)\b",
                r"(?i)\b(more)('n)\b",
                r"(?i)\b(wan)(na)(?=\s)",
                r"(?i) ('t)(is)\b",
                r"(?i) ('t)(was)\b",
            )
        ]


def _model() -> _Treebank:
    global _MODEL
    if _MODEL is None:
        _MODEL = _Treebank()
    return _MODEL


# --------------------------------------------------------------------------
# Treebank word tokenization (NLTKWordTokenizer.tokenize), per sentence:
# NLTK's substitutions, in NLTK's order.  Each step runs only when the
# characters it rewrites are present (the substitution is a no-op otherwise);
# single-literal steps use str.replace, which rewrites the same
# non-overlapping left-to-right occurrences.
# --------------------------------------------------------------------------


def _split_opening_quotes(m: _Treebank, text: str) -> str:
    # NLTK: (?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w) -> "' ", i.e. a
    # quote opening a word is split off unless a clitic follows; the \b after
    # the clitic (which ends in a letter) means "no word character next".
    out = []
    last = 0
    i = text.find("'")
    n = len(text)
    while i >= 0:
        j = i + 1
        if j < n and m.isword(text[j]) and (i == 0 or not m.isword(text[i - 1])):
            cl = m.clitic(text, j)
            if not (cl and (cl.end() == n or not m.isword(text[cl.end()]))):
                out.append(text[last:j])
                out.append(" ")
                last = j
        i = text.find("'", j)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _starting_quotes(m: _Treebank, text: str) -> str:
    """NLTK's STARTING_QUOTES: opening quotes become `` and stand apart."""
    if "«" in text or "“" in text or "‘" in text or "„" in text or "`" in text:
        text = m.open_quotes(r" \1 ", text)
    if text[:1] == '"':
        text = "``" + text[1:]
    text = text.replace("``", " `` ")
    if '"' in text or "''" in text:
        text = m.quote_after_open(r"\1 `` ", text)
    if "'" in text:
        text = _split_opening_quotes(m, text)
    return text


def _final_period(m: _Treebank, text: str, first: bool) -> str:
    # NLTK: ([^\.])(\.)([closers ]*+)\s*$ -> "\1 \2 \3 " (first) and
    #       ([^\.])(\.)([closers]*)\s*$   -> "\1 \2\3 "  (second).
    # Nothing after the matched "." may be a ".", so it can only be the last
    # "." of the text: test that one instead of scanning every position.
    k = text.rfind(".")
    if k < 1 or text[k - 1] == ".":
        return text
    tail = (m.final_period_tail if first else m.final_period_tail2)(text, k + 1)
    if tail is None:
        return text
    return text[:k] + (" . " if first else " .") + tail.group(1) + " " + text[tail.end():]


def _punctuation(m: _Treebank, text: str) -> str:
    """NLTK's PUNCTUATION: the final period, commas, colons, dots, symbols, dashes."""
    text = _final_period(m, text, True)
    if "," in text or ":" in text:
        text = m.comma_colon(r" \1 \2", text)
        if text.endswith((",", ":", ",\n", ":\n")):
            text = m.comma_colon_end(r" \1 ", text)
    if ".." in text:
        text = m.dots(r" \g<0> ", text)
    if (
        ";" in text or "@" in text or "#" in text
        or "$" in text or "%" in text or "&" in text
    ):
        text = m.symbols(r" \g<0> ", text)
    if "\u2012" in text or "\u2013" in text or "\u2014" in text or "\u2015" in text:
        text = m.dashes(r" \g<0> ", text)
    text = _final_period(m, text, False)
    text = text.replace("?", " ? ").replace("!", " ! ")
    if "' " in text:
        text = m.quote_space(r"\1 ' ", text)
    return text.replace("*", " * ")


def _brackets_and_dashes(m: _Treebank, text: str) -> str:
    """NLTK's PARENS_BRACKETS and DOUBLE_DASHES, then the padding spaces."""
    if (
        "(" in text or ")" in text or "[" in text or "]" in text
        or "{" in text or "}" in text or "<" in text or ">" in text
    ):
        text = m.parens(r" \g<0> ", text)
    return " " + text.replace("--", " -- ") + " "


def _ending_quotes(m: _Treebank, text: str) -> str:
    """NLTK's ENDING_QUOTES: closing quotes become '', clitics split off."""
    if "»" in text or "”" in text or "’" in text:
        text = m.close_quotes(r" \1 ", text)
    text = text.replace("''", " '' ").replace('"', " '' ")
    # Whitespace runs -> one space. Only non-space whitespace changes what
    # follows (the clitic rules need a literal space); extra spaces do not.
    if (
        not text.isascii()
        or "\n" in text or "\t" in text or "\r" in text
        or "\x0b" in text or "\x0c" in text
    ):
        text = m.spaces(" ", text)
    if "'" in text:
        text = m.clitics1(r"\1 \2 ", text)
        text = m.clitics2(r"\1 \2 ", text)
    return text


def _contractions(m: _Treebank, text: str) -> str:
    """NLTK's CONTRACTIONS2/3: cannot, gonna, 'tis, ... split in two."""
    # Each pattern needs one of these (lower-cased) substrings, none of which
    # holds a letter re's IGNORECASE can match outside ASCII (i, s, k); "'t"
    # rather than " 't" since earlier contractions insert spaces.
    low = text.lower()
    if (
        "'t" in low or "mme" in low or "nna" in low or "tta" in low
        or "cannot" in low or "d'ye" in low or "more'n" in low
    ):
        for sub in m.contractions:
            text = sub(r" \1 \2 ", text)
    return text


def _treebank(m: _Treebank, text: str) -> list[str]:
    """NLTKWordTokenizer.tokenize on one sentence."""
    text = _starting_quotes(m, text)
    text = _punctuation(m, text)
    text = _brackets_and_dashes(m, text)
    text = _ending_quotes(m, text)
    text = _contractions(m, text)
    return text.split()  # Python whitespace, as NLTK


def word_tokenize(text: str) -> list[str]:
    """Tokens of *text*, as ``nltk.word_tokenize(text)`` (English)."""
    m = _model()
    return [tok for s, e in sentence_spans(text) for tok in _treebank(m, text[s:e])]
