"""POPE answer parsers, one per public harness: each maps (answer text, ground-truth label) to "yes", "no"
or "unknown", following the harness's own rule, quirks included, because the rule moves the numbers.

    from halluc.registry import resolve
    resolve("pope-parser", "vlmevalkit")("**Yes**", "yes")     # -> "unknown" (``*`` is not punctuation to it)

Each function names the file and commit its rule was read from. How a harness then *counts* an unknown
(a false negative or nothing) and which yes-ratio it prints are properties of the registry entry
(``meta``), used by ``halluc.metrics.pope.score_pope``; these functions only read the answer.
"""
from __future__ import annotations

import re


def parse_original(text: str, label: str | None = None) -> str:
    """POPE's ``evaluate.py`` (RUCAIBox/POPE; that repository is not in our reference index, so the rule was
    read from its verbatim copies: haotian-liu/LLaVA ``llava/eval/eval_pope.py`` @ 4241f08c6368 and
    CircleRadon/Osprey ``osprey/eval/pope/evaluate.py`` @ 75642bfafa32).

    Keep the text before the first ".", drop commas, split on single spaces; "No", "no" or "not" among the
    pieces -> no, anything else -> yes. Never unknown. Case-sensitive and space-split, so "NO" and "No\\n"
    are yes answers (the script does the same).
    """
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "no" in words or "not" in words) else "yes"


def parse_vcd(text: str, label: str | None = None) -> str:
    """VCD's and SHIELD's ``experiments/eval/eval_pope.py`` (DAMO-NLP-SG/VCD @ 039af55ecd68, hukcc/SHIELD
    @ 1a895894184f: the same rule).

    Lower-cased and stripped, then conditioned on the label: a "yes" question is answered yes when "yes"
    occurs anywhere in the text (else no); a "no" question is answered no when "no" occurs anywhere (else
    yes), so "not sure" and "I know" answer a "no" question correctly. Never unknown; needs the label.
    """
    t = text.lower().strip()
    if label == "yes":
        return "yes" if "yes" in t else "no"
    if label == "no":
        return "no" if "no" in t else "yes"
    raise ValueError(f"the vcd parser needs a yes/no label, got {label!r}")


def parse_lmms_eval(text: str, label: str | None = None) -> str:
    """lmms-eval's ``pope`` task (EvolvingLMMs-Lab/lmms-eval ``lmms_eval/tasks/pope/utils.py`` @ 2c03baf04b36;
    the scoring is the same @ 9cd42ee0d878, which only changes the prompt): ``pope_process_results``
    compares the lower-cased, stripped answer with the label, so only exactly "yes" or "no" is read.

    The reading equals ``strict``; the counting does not: lmms-eval's recall counts as false negatives only
    "no" answers to "yes" questions, so an unreadable answer is wrong in accuracy but in neither FP nor FN,
    and its ``pope_yes_ratio`` is the share of *labels* that are yes. Both live in this parser's registry
    meta (``unknown_counts_as_fn``, ``printed_yes_ratio``). lmms-eval prints fractions (0.9137); results
    here are percent (91.37), the same numbers.
    """
    t = text.lower().strip()
    return t if t in ("yes", "no") else "unknown"


def parse_strict(text: str, label: str | None = None) -> str:
    """This project's strict reading: exactly "yes" or "no" after lower-casing and stripping white space,
    else unknown (counted as wrong, and as a false negative on a "yes" question)."""
    t = text.lower().strip()
    return t if t in ("yes", "no") else "unknown"


# VLMEvalKit's punctuation (the VQA evaluation list): note what is absent: "." (handled below), ":", "'",
# "*", "#", so "yes:" and "**yes**" stay unreadable words.
_VLM_PUNCT = ';/[]"{}()=+\\_-><@`,?!'
_VLM_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
_VLM_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")
# VLMEvalKit calls ``periodStrip.sub('', outText, re.UNICODE)``: the flag lands in ``count`` (re.UNICODE is
# 32), so only the first 32 such periods are removed. Kept: it is the number VLMEvalKit prints.
_VLM_PERIOD_COUNT = int(re.UNICODE)


def _vlm_punctuation(s: str) -> str:
    # Each mark is deleted where the original text has it next to a space (or has a digit,digit anywhere),
    # else it becomes a space; the test looks at the original text, not the partly cleaned one.
    glue = _VLM_DIGIT_COMMA.search(s) is not None
    out = s
    for p in _VLM_PUNCT:
        out = out.replace(p, "" if glue or p + " " in s or " " + p in s else " ")
    return _VLM_PERIOD.sub("", out, count=_VLM_PERIOD_COUNT)


def parse_vlmevalkit(text: str, label: str | None = None) -> str:
    """VLMEvalKit's ``YOrN_Extraction`` (open-compass/VLMEvalKit ``vlmeval/dataset/utils/yorn.py``
    @ 0c7163c9c71c, with ``process_punctuation`` from ``vlmeval/smp/misc.py`` @ 4e85dcd302cc).

    Lower-case, clean punctuation the VQA way (``_vlm_punctuation``), split on white space: the word "yes"
    without the word "no" -> yes, "no" without "yes" -> no, else unknown. This is its exact-matching mode;
    with a judge model configured VLMEvalKit asks an LLM about the unknowns (``image_yorn.py``
    @ 145bdaf15ea0), which no offline parser reproduces. Its ``POPE_rating`` counts an unknown as a "no"
    prediction: a false negative on a "yes" question, as here.
    """
    words = _vlm_punctuation(str(text).lower()).split()
    yes, no = "yes" in words, "no" in words
    return "yes" if yes and not no else "no" if no and not yes else "unknown"
