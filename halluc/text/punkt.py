"""Punkt sentence splitting, exactly as ``nltk.sent_tokenize(text)`` (English).

The first stage of ``nltk.word_tokenize`` (see ``halluc/text/tokenize.py``):
``PunktSentenceTokenizer.tokenize`` with NLTK's pretrained English parameters
(abbreviations, collocations, sentence starters, orthographic context), read
from ``halluc/assets/punkt_english/``, and the patterns of
``PunktLanguageVars`` written with the ``regex`` engine's classes
(``halluc/text/regex_classes.py``).  Only the standard library is used; the
parameters and patterns load once, on first use.

Usage::

    >>> from halluc.text.punkt import sent_tokenize, sentence_spans
    >>> sent_tokenize("a dog sits on mr. smith's sofa. it sleeps.")
    ["a dog sits on mr. smith's sofa.", 'it sleeps.']
    >>> sentence_spans("a dog sits on mr. smith's sofa. it sleeps.")
    [(0, 31), (32, 42)]
"""

from __future__ import annotations

import re

from halluc.text.regex_classes import classes, read_lines

__all__ = ["sent_tokenize", "sentence_spans"]

# Punkt orthographic-context flags (bit values as in the trained parameters):
# position in sentence (beginning / middle / unknown) x case of first letter.
_BEG_UC, _MID_UC, _UNK_UC = 1 << 1, 1 << 2, 1 << 3
_BEG_LC, _MID_LC, _UNK_LC = 1 << 4, 1 << 5, 1 << 6
_ORTHO_UC = _BEG_UC | _MID_UC | _UNK_UC
_ORTHO_LC = _BEG_LC | _MID_LC | _UNK_LC

# A token equal to one of these never starts a sentence (Punkt's PUNCTUATION).
_PUNCT_TOKENS = frozenset(";:,.!?")

_PARAMS = None


class _Punkt:
    """English Punkt parameters plus the compiled PunktLanguageVars patterns."""

    def __init__(self) -> None:
        self.abbrev = frozenset(read_lines("abbrev_types.txt"))
        self.starters = frozenset(read_lines("sent_starters.txt"))
        self.colloc = frozenset(
            tuple(line.split("\t")) for line in read_lines("collocations.tab")
        )
        self.colloc_first = frozenset(a for a, _ in self.colloc)
        self._ortho: dict[str, int] | None = None  # parsed on first use
        u = classes()
        self.isword, self.isdigit = u.isword, u.isdigit
        self._compile(u.space, u.digit)

    def _compile(self, S: str, D: str) -> None:
        # The patterns of nltk/tokenize/punkt.py, with regex's \s (S) and \d (D).
        s, ns = f"[{S}]", f"[^{S}]"
        c = re.compile
        # Characters that cannot appear within words (the sentence-end chars
        # other than "." included, plus curly quotes and guillemets).
        nonword = "[)\";}\\]*:@'({\\[\u2018\u2019\u201c\u201d\xab\xbb?!]"
        multi = f"(?:-{{2,}}|\\.{{2,}}|(?:\\.{s}){{2,}}\\.)"  # --, .., ". . ."
        word_start = "[^(\"`{\\[:;&#*@)}\\]\\-,]"
        # Punkt's word splitter: split off punctuation other than periods.
        self.words = c(
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

    @property
    def ortho(self) -> dict[str, int]:
        # 20k entries, needed only after abbreviations, initials and numbers.
        if self._ortho is None:
            # "type<TAB>flags" lines; keys hold neither tab nor newline.
            parts = "\n".join(read_lines("ortho_context.tab")).replace("\t", "\n")
            it = iter(parts.split("\n"))
            self._ortho = {k: int(v) for k, v in zip(it, it)}
        return self._ortho


def _punkt() -> _Punkt:
    global _PARAMS
    if _PARAMS is None:
        _PARAMS = _Punkt()
    return _PARAMS


# --------------------------------------------------------------------------
# Is there a break after a token? (PunktSentenceTokenizer's two passes)
# --------------------------------------------------------------------------


def _contains_sentbreak(m: _Punkt, context: str) -> bool:
    """Does *context* hold a sentence break followed by another token?"""
    toks = []
    for line in context.split("\n"):
        if line.strip():  # Punkt skips blank lines (Python's notion of blank)
            toks.extend(m.words(line))
    # Token i is decided from itself and token i+1 only; the last is ignored.
    for i in range(len(toks) - 1):
        if _is_break(m, toks[i], toks[i + 1]):
            return True
    return False


def _first_pass(m: _Punkt, tok: str) -> tuple[bool, bool, bool]:
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


def _type(m: _Punkt, tok: str) -> str:
    # Case-normalised type; any number becomes "##number##".
    low = tok.lower()
    return "##number##" if m.numeric(low) else low


def _is_break(m: _Punkt, tok1: str, tok2: str) -> bool:
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


def _ortho(m: _Punkt, tok: str, typ: str) -> bool | None:
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


# --------------------------------------------------------------------------
# Sentence spans (PunktSentenceTokenizer.span_tokenize, realigned).
# --------------------------------------------------------------------------


def _last_ws(s: str) -> int:
    # Index of the last string.whitespace char (ASCII only, as NLTK), 0 when
    # none -- NLTK's convention, which makes a whitespace at index 0 "none" too.
    return max(
        0, s.rfind(" "), s.rfind("\n"), s.rfind("\t"),
        s.rfind("\r"), s.rfind("\x0b"), s.rfind("\x0c"),
    )


def _candidates(m: _Punkt, text: str) -> list[tuple[re.Match, int, int]]:
    """Candidate ends with the (start, end) of the word before each.

    The word before reaches back to the last whitespace since the previous
    candidate; a candidate whose word overlaps the next one's is dropped (so
    "acting!!! I" is judged once, at the last "!").
    """
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
    return cands


def _slices(m: _Punkt, text: str, cands: list[tuple[re.Match, int, int]]) -> list[tuple[int, int]]:
    """Spans between the accepted breaks; the last one drops trailing space."""
    slices = []
    last_break = 0
    for match, ws, we in cands:
        # Judged on "<word before><end char><after>" only.
        context = text[ws:we] + match.group() + match.group("after_tok")
        if _contains_sentbreak(m, context):
            slices.append((last_break, match.end()))
            # The next sentence starts at the next token, or right after the
            # end char when punctuation follows it directly.
            last_break = match.start("next_tok") if match.group("next_tok") else match.end()
    slices.append((last_break, len(text.rstrip())))
    return slices


def _realign(m: _Punkt, text: str, slices: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Move closing quotes/brackets right after a break back into the sentence
    they close ("(Sent1.) Sent2." -> "(Sent1.)", "Sent2."); drop empty spans."""
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


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of *text*, as ``sent_tokenize`` cuts them."""
    m = _punkt()
    return _realign(m, text, _slices(m, text, _candidates(m, text)))


def sent_tokenize(text: str) -> list[str]:
    """Sentences of *text*, as ``nltk.sent_tokenize(text)`` (English)."""
    return [text[s:e] for s, e in sentence_spans(text)]
