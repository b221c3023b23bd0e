"""Exact, dependency-free re-implementation of ``nltk.word_tokenize`` (English).

CHAIR (Rohrbach et al. 2018) lower-cases a caption and tokenises it with
``nltk.word_tokenize``: Punkt sentence splitting with NLTK's pretrained English
parameters, then NLTK's improved Treebank tokenizer (``NLTKWordTokenizer``) on
each sentence.  Published numbers depend on that exactly -- e.g. the Treebank
rules split a period off only at the end of a sentence, so whether ``dog.``
becomes ``dog`` ``.`` is decided by Punkt.  Importing nltk is too slow for the
CLI, and its data cannot be downloaded here, so this module re-implements both
stages with the standard library only, reading the English Punkt parameters
from plain-text files in ``halluc/assets/punkt_english/``.

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
from the stdlib ``re`` ones (``\\w`` includes combining marks, ``\\s`` excludes
U+001C..U+001F, ``\\d`` knows newer digits).  So wherever NLTK's pattern says
``\\s``/``\\w``/``\\d`` under ``regex``, we use explicit classes read from
``regex_unicode_classes.txt``.  The only pattern NLTK runs through the stdlib
``re`` (the contraction splitting) we also run through ``re`` unchanged.
Python's own ``str`` methods (``lower``, ``isupper``, ``strip``, ``split``)
are used exactly where NLTK uses them, for the same reason.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right

__all__ = ["sent_tokenize", "word_tokenize"]

_ASSETS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "punkt_english"
)

# Punkt orthographic-context flags (bit values as in the trained parameters):
# position in sentence (beginning / middle / unknown) x case of first letter.
_BEG_UC, _MID_UC, _UNK_UC = 1 << 1, 1 << 2, 1 << 3
_BEG_LC, _MID_LC, _UNK_LC = 1 << 4, 1 << 5, 1 << 6
_ORTHO_UC = _BEG_UC | _MID_UC | _UNK_UC
_ORTHO_LC = _BEG_LC | _MID_LC | _UNK_LC

# A token equal to one of these never starts a sentence (Punkt's PUNCTUATION).
_PUNCT_TOKENS = frozenset(";:,.!?")
# Closing brackets/quotes the Treebank final-period rules keep after the ".".
_CLOSERS = "\\]\\)}>\"'»”’"

_MODEL = None


def _read_lines(name: str) -> list[str]:
    # Split on "\n" only (not splitlines()), as NLTK's loader iterates lines;
    # entries may legitimately end in a space (one abbreviation does).
    with open(os.path.join(_ASSETS, name), encoding="utf-8", newline="") as f:
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


class _Model:
    """English Punkt parameters plus every compiled pattern (built once)."""

    def __init__(self) -> None:
        self.abbrev = frozenset(_read_lines("abbrev_types.txt"))
        self.starters = frozenset(_read_lines("sent_starters.txt"))
        self.colloc = frozenset(
            tuple(line.split("\t")) for line in _read_lines("collocations.tab")
        )
        self.colloc_first = frozenset(a for a, _ in self.colloc)
        self._ortho: dict[str, int] | None = None  # parsed on first use

        cls = {}
        for line in _read_lines("regex_unicode_classes.txt"):
            if line and not line.startswith("#"):
                name, spec = line.split("\t")
                cls[name] = _ranges(spec)
        # \w is only ever tested one character at a time, so it stays a range
        # table (compiling its ~800 ranges into a pattern costs ~25 ms).
        self.word_starts, self.word_ends = cls["word"]
        self.digit_starts, self.digit_ends = cls["digit"]
        # regex-engine equivalents: s = \s, ns = \S, D = \d body.
        S, D = _class_body(*cls["space"]), _class_body(*cls["digit"])
        s, ns = f"[{S}]", f"[^{S}]"
        c = re.compile

        # ---- Punkt (nltk/tokenize/punkt.py, PunktLanguageVars) ----
        # Characters that cannot appear within words (the sentence-end chars
        # other than "." included, plus curly quotes and guillemets).
        nonword = "[)\";}\\]*:@'({\\[\u2018\u2019\u201c\u201d\xab\xbb?!]"
        multi = f"(?:-{{2,}}|\\.{{2,}}|(?:\\.{s}){{2,}}\\.)"  # --, .., ". . ."
        word_start = "[^(\"`{\\[:;&#*@)}\\]\\-,]"
        # Punkt's word splitter: split off punctuation other than periods.
        self.punkt_words = c(
            f"{multi}"
            f"|(?={word_start}){ns}+?"
            f"(?={s}|$|{nonword}|{multi}|,(?=$|{s}|{nonword}|{multi}))"
            f"|{ns}"
        ).findall
        # A candidate sentence end and the token (or punctuation) after it.
        self.period_context = c(
            f"[.?!](?=(?P<after_tok>{nonword}|{s}+(?P<next_tok>{ns}+)))"
        ).finditer
        # Closing quotes/brackets after a break belong to the sentence before.
        self.realign = c(
            f"[\"')\\]}}\u2018\u2019\u201c\u201d\xab\xbb]+?(?:{s}+|(?=--)|$)", re.M
        ).match
        self.ellipsis = c(r"\.\.+$").match
        self.numeric = c(f"-?[.,]?[{D}][{D},.\\-]*\\.?$").match  # -> "##number##"

        # ---- Treebank (nltk/tokenize/destructive.py, NLTKWordTokenizer) ----
        # Each rule is guarded in _treebank() by a cheap test for the
        # characters it needs; literal rules are done with str.replace.
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

    @property
    def ortho(self) -> dict[str, int]:
        # 20k entries, needed only after abbreviations, initials and numbers.
        if self._ortho is None:
            # "type<TAB>flags" lines; keys hold neither tab nor newline.
            parts = "\n".join(_read_lines("ortho_context.tab")).replace("\t", "\n")
            it = iter(parts.split("\n"))
            self._ortho = {k: int(v) for k, v in zip(it, it)}
        return self._ortho

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


def _model() -> _Model:
    global _MODEL
    if _MODEL is None:
        _MODEL = _Model()
    return _MODEL


# --------------------------------------------------------------------------
# Punkt sentence splitting (PunktSentenceTokenizer.tokenize, realigned).
# --------------------------------------------------------------------------


def _contains_sentbreak(m: _Model, context: str) -> bool:
    """Does *context* hold a sentence break followed by another token?"""
    toks = []
    for line in context.split("\n"):
        if line.strip():  # Punkt skips blank lines (Python's notion of blank)
            toks.extend(m.punkt_words(line))
    # Token i is decided from itself and token i+1 only; the last is ignored.
    for i in range(len(toks) - 1):
        if _is_break(m, toks[i], toks[i + 1]):
            return True
    return False


def _first_pass(m: _Model, tok: str) -> tuple[bool, bool, bool]:
    """Type-based guess: (sentbreak, abbreviation, ellipsis)."""
    if tok in (".", "?", "!"):
        return True, False, False
    if m.ellipsis(tok):
        return False, False, True
    if tok.endswith(".") and not tok.endswith(".."):
        low = tok[:-1].lower()
        if low in m.abbrev or low.split("-")[-1] in m.abbrev:
            return False, True, False
        return True, False, False
    return False, False, False


def _type(m: _Model, tok: str) -> str:
    # Case-normalised type; any number becomes "##number##".
    low = tok.lower()
    return "##number##" if m.numeric(low) else low


def _is_break(m: _Model, tok1: str, tok2: str) -> bool:
    """Final decision for tok1 given the next token (Punkt's second pass)."""
    brk, abbr, ellip = _first_pass(m, tok1)
    if not tok1.endswith("."):
        return brk  # only period-final tokens are reconsidered
    typ = _type(m, tok1)
    if len(typ) > 1 and typ[-1] == ".":
        typ = typ[:-1]
    # Is tok1 an initial ([^\W\d]\. in NLTK's regex engine)?
    initial = len(tok1) == 2 and m.isword(tok1[0]) and not m.isdigit(tok1[0])
    number = typ == "##number##"
    if typ not in m.colloc_first and not abbr and not ellip and not initial and not number:
        return brk  # the common case: no heuristic below can apply

    # The next token's type, less its period if it is itself a break.
    next_typ = _type(m, tok2)
    if len(next_typ) > 1 and next_typ[-1] == "." and _first_pass(m, tok2)[0]:
        next_typ = next_typ[:-1]

    # Collocation heuristic: a known "word. next" pair is not a break.
    if (typ, next_typ) in m.colloc:
        return False
    # An abbreviation/ellipsis is *also* a break if the next word looks like
    # a sentence start (orthographic evidence or a frequent starter).
    if (abbr or ellip) and not initial:
        if _ortho(m, tok2, next_typ) is True:
            return True
        if tok2[0].isupper() and next_typ in m.starters:
            return True
    # Initials and ordinals: not a break when the next word looks mid-sentence.
    if initial or number:
        h = _ortho(m, tok2, next_typ)
        if h is False:
            return False
        if (
            h is None
            and initial
            and tok2[0].isupper()
            and not (m.ortho.get(next_typ, 0) & _ORTHO_LC)
        ):
            return False  # e.g. "J. Bach": next word always capitalised
    return brk


def _ortho(m: _Model, tok: str, typ: str) -> bool | None:
    """Orthographic heuristic: True/False = starts a sentence or not, None = unsure."""
    if tok in _PUNCT_TOKENS:
        return False
    ctx = m.ortho.get(typ, 0)
    # Capitalised here, seen lower-case, never capitalised mid-sentence.
    if tok[0].isupper() and ctx & _ORTHO_LC and not ctx & _MID_UC:
        return True
    # Lower-case here and seen upper-case, or never seen lower-case initially.
    if tok[0].islower() and (ctx & _ORTHO_UC or not ctx & _BEG_LC):
        return False
    return None


def _last_ws(s: str) -> int:
    # Index of the last string.whitespace char (ASCII only, as NLTK), 0 when
    # none -- NLTK's convention, which makes a whitespace at index 0 "none" too.
    return max(
        0, s.rfind(" "), s.rfind("\n"), s.rfind("\t"),
        s.rfind("\r"), s.rfind("\x0b"), s.rfind("\x0c"),
    )


def _spans(m: _Model, text: str) -> list[tuple[int, int]]:
    # 1. Candidate ends with their context "<word before><end char><after>".
    #    The word before reaches back to the last whitespace since the previous
    #    candidate; a candidate whose word overlaps the next one's is dropped
    #    (so "acting!!! I" is judged once, at the last "!").
    cands = []
    prev_start = prev_stop = 0
    prev = None
    for match in m.period_context(text):
        start = match.start()
        idx = _last_ws(text[prev_stop:start])
        word_start = prev_stop + idx + 1 if idx else prev_start
        if prev is not None and prev_stop <= word_start:
            cands.append(prev)
        prev = (match, word_start, start)
        prev_start, prev_stop = word_start, start
    if prev is not None:
        cands.append(prev)

    # 2. Slices between accepted breaks; the last one drops trailing space.
    slices = []
    last_break = 0
    for match, ws, we in cands:
        context = text[ws:we] + match.group() + match.group("after_tok")
        if _contains_sentbreak(m, context):
            slices.append((last_break, match.end()))
            # The next sentence starts at the next token, or right after the
            # end char when punctuation follows it directly.
            last_break = match.start("next_tok") if match.group("next_tok") else match.end()
    slices.append((last_break, len(text.rstrip())))

    # 3. Realign: closing quotes/brackets right after a break move back into
    #    the sentence they close ("(Sent1.) Sent2." -> "(Sent1.)", "Sent2.").
    out = []
    realign = 0
    n = len(slices)
    for i in range(n):
        s, e = slices[i]
        s += realign
        if i == n - 1:
            if text[s:e]:
                out.append((s, e))
            break
        s2, e2 = slices[i + 1]
        r = m.realign(text[s2:e2])
        if r:
            out.append((s, s2 + len(r.group().rstrip())))
            realign = r.end()
        else:
            realign = 0
            if text[s:e]:
                out.append((s, e))
    return out


def sent_tokenize(text: str) -> list[str]:
    """Sentences of *text*, as ``nltk.sent_tokenize(text)`` (English)."""
    m = _model()
    return [text[s:e] for s, e in _spans(m, text)]


# --------------------------------------------------------------------------
# Treebank word tokenization (NLTKWordTokenizer.tokenize), per sentence.
# --------------------------------------------------------------------------


def _split_opening_quotes(m: _Model, text: str) -> str:
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


def _treebank(m: _Model, text: str) -> list[str]:
    """NLTKWordTokenizer.tokenize: NLTK's substitutions, in NLTK's order.

    Each step runs only when the characters it rewrites are present (the
    substitution is a no-op otherwise); single-literal steps use str.replace,
    which rewrites the same non-overlapping left-to-right occurrences.
    """
    # -- starting quotes
    if "«" in text or "“" in text or "‘" in text or "„" in text or "`" in text:
        text = m.open_quotes(r" \1 ", text)
    if text[:1] == '"':
        text = "``" + text[1:]
    text = text.replace("``", " `` ")
    if '"' in text or "''" in text:
        text = m.quote_after_open(r"\1 `` ", text)
    if "'" in text:
        text = _split_opening_quotes(m, text)

    # -- punctuation
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
    text = text.replace("*", " * ")

    # -- brackets, double dashes
    if (
        "(" in text or ")" in text or "[" in text or "]" in text
        or "{" in text or "}" in text or "<" in text or ">" in text
    ):
        text = m.parens(r" \g<0> ", text)
    text = " " + text.replace("--", " -- ") + " "

    # -- ending quotes
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

    # -- contractions: each pattern needs one of these (lower-cased)
    # substrings, none of which holds a letter re's IGNORECASE can match
    # outside ASCII (i, s, k); "'t" rather than " 't" since earlier
    # contractions insert spaces.
    low = text.lower()
    if (
        "'t" in low or "mme" in low or "nna" in low or "tta" in low
        or "cannot" in low or "d'ye" in low or "more'n" in low
    ):
        for sub in m.contractions:
            text = sub(r" \1 \2 ", text)
    return text.split()  # Python whitespace, as NLTK


def _final_period(m: _Model, text: str, first: bool) -> str:
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


def word_tokenize(text: str) -> list[str]:
    """Tokens of *text*, as ``nltk.word_tokenize(text)`` (English)."""
    m = _model()
    return [tok for s, e in _spans(m, text) for tok in _treebank(m, text[s:e])]
