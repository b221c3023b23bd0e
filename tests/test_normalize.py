"""The two CHAIR word normalisers: pattern's singularize and NLTK's tagged WordNet lemmatisation.

Expected singularize values are what pattern.en.singularize really returns (checked against the
Pattern3 3.0.0 sdist); expected lemmas are what NLTK's WordNetLemmatizer returns on WordNet 3.0.
The parity tests compare with NLTK itself, with the NLTK data of ../shared/data/nltk_data: the
tagger and the lemmatiser, token by token, on every caption of every shared log.
"""
import pytest
from hypothesis import given, settings, strategies as st

from halluc.text.lemma import (lemmatize, lemmatize_many, lemmatize_tokens, morphy, pos_tag,
                               pos_tag_many, tagger_info, wordnet_pos)
from halluc.text.singularize import singularize

# ------------------------------------------------------------------------------ singularize

SINGULARIZE = {
    "irregular": {"children": "child", "people": "person", "men": "man", "women": "woman",
                  "policemen": "policeman", "feet": "foot", "teeth": "tooth", "geese": "goose",
                  "oxen": "ox", "leaves": "leaf", "axes": "axe", "our": "my", "boxen": "box",
                  # irregular keys match as suffixes, case-insensitively
                  "your": "ymy", "hour": "hmy", "Children": "child"},
    "uninflected": {"sheep": "sheep", "fish": "fish", "deer": "deer", "series": "series",
                    "species": "species", "news": "news", "scissors": "scissors",
                    "headquarters": "headquarters", "christmas": "christmas", "swiss": "swiss",
                    # any suffix of an uninflected/uncountable word is kept as is
                    "is": "is", "es": "es", "s": "s", "a": "a", "ries": "ries", "": ""},
    "-ses/-xes/-ches/-shes": {"buses": "bus", "glasses": "glass", "dresses": "dress",
                              "boxes": "box", "benches": "bench", "dishes": "dish",
                              "quizzes": "quiz", "statuses": "status", "aliases": "alias",
                              "taxes": "taxe", "viruses": "viruse", "analyses": "analysis",
                              "bases": "basis", "theses": "thesis", "crises": "crisis",
                              "diagnoses": "diagnosis", "synopses": "synopsis",
                              "roses": "rose", "neuroses": "neurose"},
    "-ves": {"knives": "knife", "wolves": "wolf", "lives": "life", "wives": "wife",
             "halves": "half", "calves": "calf", "scarves": "scarf", "shelves": "shelve",
             "nerves": "nerve", "olives": "olife", "gloves": "glove", "curves": "curf",
             "waves": "wave", "hives": "hive", "archives": "archive"},
    "-ies": {"cherries": "cherry", "ladies": "lady", "ties": "ty", "pies": "py",
             "cookies": "cookies", "movies": "movie", "zombies": "zombie", "monkeys": "monkey",
             # pattern's missing comma glues "zombie"+"bogie": bogies falls to the -ies rule
             "bogies": "bogy", "COOKIES": "cookies"},
    "-oes/-ae/-eaux/latin": {"tomatoes": "tomato", "shoes": "shoe", "larvae": "larva",
                             "chateaux": "chateau", "octopi": "octopus", "cacti": "cactus",
                             "radii": "radius", "fungi": "fungi", "data": "datum",
                             "bacteria": "bacterium", "criteria": "criterium",
                             "vertices": "vertex", "matrices": "matrix", "mice": "mouse",
                             "lice": "louse", "dice": "dice"},
    "CHAIR quirks": {"bus": "bu", "glass": "glas", "process": "proces", "features": "feature",
                     "has": "ha", "towards": "toward", "its": "it", "'s": "'", "this": "thi",
                     "was": "wa", "us": "u", "skis": "ski", "ski": "ski", "kiwis": "kiwi"},
    "not plurals ending in s": {"octopus": "octopu", "cactus": "cactu", "tennis": "tenni",
                                "lens": "len", "dress": "dres", "grass": "gras", "iris": "iri",
                                "status": "statu", "gas": "ga", "itis": "iti",
                                "bronchitis": "bronchitis"},
    "compounds/possessive/case": {"mothers-in-law": "mother-in-law", "passers-by": "passer-by",
                                  "hot-dogs": "hot-dog", "dogs'": "dog's", "Buses": "Bus",
                                  "Zombies": "Zombie"},
}


@pytest.mark.parametrize("family", list(SINGULARIZE))
def test_singularize_rule_family(family):
    got = {w: singularize(w) for w in SINGULARIZE[family]}
    assert got == SINGULARIZE[family]


# ------------------------------------------------------------------------------ lemma

@pytest.mark.parametrize("word,pos,expected", [
    # noun rules: s, ses, ves, xes, zes, ches, shes, men, ies
    ("dogs", "n", "dog"), ("glasses", "n", "glass"), ("wolves", "n", "wolf"),
    ("boxes", "n", "box"), ("buzzes", "n", "buzz"), ("churches", "n", "church"),
    ("dishes", "n", "dish"), ("firemen", "n", "fireman"), ("ladies", "n", "lady"),
    # verb rules: s, ies, es->e, es, ed->e, ed, ing->e, ing
    ("runs", "v", "run"), ("carries", "v", "carry"), ("uses", "v", "use"),
    ("fixes", "v", "fix"), ("used", "v", "use"), ("walked", "v", "walk"),
    ("making", "v", "make"), ("walking", "v", "walk"), ("skiing", "v", "ski"),
    # adjective rules: er, est, er->e, est->e
    ("taller", "a", "tall"), ("tallest", "a", "tall"), ("nicer", "a", "nice"),
    ("nicest", "a", "nice"),
    # adverbs have no rules; exceptions only
    ("quickly", "r", "quickly"), ("better", "r", "well"), ("faster", "r", "faster"),
    # exception lists
    ("geese", "n", "goose"), ("mice", "n", "mouse"), ("children", "n", "child"),
    ("better", "a", "good"), ("bigger", "a", "big"), ("are", "v", "be"), ("was", "v", "be"),
    ("ran", "v", "run"),
    # min(..., key=len) keeps the first of the shortest: NLTK's quirks
    ("men", "n", "men"), ("us", "n", "u"), ("riding", "v", "rid"), ("dining", "v", "din"),
    # satellite adjectives are adjectives; unknown words and other cases come back unchanged
    ("better", "s", "good"), ("Dogs", "n", "Dogs"), ("xyzzyq", "v", "xyzzyq"), ("", "n", ""),
    # NLTK 3.9+ applies the rules once: a non-word that needs two rounds stays as it is
    ("boxeses", "n", "boxeses"), ("catss", "n", "catss"),
])
def test_lemmatize(word, pos, expected):
    assert lemmatize(word, pos) == expected


def test_morphy_lists_all_base_forms_in_order():
    assert morphy("us", "n") == ["us", "u"]
    assert morphy("better", "a") == ["better", "good", "well"]
    assert morphy("riding", "v") == ["ride", "rid"]
    assert morphy("xyzzyq", "n") == []
    with pytest.raises(ValueError):
        morphy("dogs", "x")


@pytest.mark.parametrize("tag,pos", [
    *[(t, "a") for t in ("JJ", "JJR", "JJS")],
    *[(t, "v") for t in ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ")],
    *[(t, "n") for t in ("NN", "NNS", "NNP", "NNPS")],
    *[(t, "r") for t in ("RB", "RBR", "RBS", "RP")],  # RP starts with R: adverb, as in OPERA
    *[(t, "n") for t in ("DT", "IN", "CD", "PRP", "WRB", "MD", ".", "XX", "_SP", "HYPH", "")],
])
def test_wordnet_pos(tag, pos):
    assert wordnet_pos(tag) == pos


def test_nltk_tags_a_caption():
    tokens = "two people are skiing down a snowy hill with their skis .".split()
    assert pos_tag(tokens) == ["CD", "NNS", "VBP", "VBG", "RP", "DT", "NN", "NN", "IN", "PRP$", "NNS", "."]
    assert lemmatize_tokens(tokens) == ["two", "people", "be", "ski", "down", "a", "snowy",
                                        "hill", "with", "their", "ski", "."]
    info = tagger_info()
    assert "PerceptronTagger" in info["tagger"] and len(info["sha256"]) == 64


def test_tagging_keeps_tokens_and_batches_consistently():
    captions = [["a", "dog", "sitting", "next", "to", "the", "bigger", "cat"],
                [], ["", "buses", "", "parked", ""], ["a b", " ", "x"]]
    batched = pos_tag_many(captions)
    assert batched == [pos_tag(c) for c in captions]
    assert [len(t) for t in batched] == [len(c) for c in captions]        # tokens are never re-split
    assert lemmatize_many(captions)[0] == ["a", "dog", "sit", "next", "to", "the", "big", "cat"]


# ------------------------------------------------------------------------------ parity with NLTK

def shared_captions(shared) -> dict[str, list[str]]:
    import json
    out = {}
    for f in sorted((shared / "reference-outputs").glob("*.jsonl")):
        texts = []
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            texts += [r[k] for k in ("caption", "text") if isinstance(r.get(k), str)]
        out[f.name] = texts
    return out


@pytest.fixture(scope="module")
def nltk_ref(shared):
    """NLTK itself, reading only ../shared/data/nltk_data (the tagger, Punkt and WordNet 3.0)."""
    nltk = pytest.importorskip("nltk")
    import nltk.data
    old = list(nltk.data.path)
    nltk.data.path[:] = [str(shared / "nltk_data")]
    from nltk.stem import WordNetLemmatizer
    from nltk.tag import PerceptronTagger
    try:
        yield nltk, PerceptronTagger(), WordNetLemmatizer()
    finally:
        nltk.data.path[:] = old


def test_shipped_tagger_is_the_shared_model(shared):
    import hashlib
    import zipfile
    from halluc.assets import asset_path
    with zipfile.ZipFile(asset_path("nltk_data/taggers/averaged_perceptron_tagger_eng.zip")) as z:
        for f in (shared / "nltk_data" / "taggers" / "averaged_perceptron_tagger_eng").iterdir():
            shipped = z.read(f"averaged_perceptron_tagger_eng/{f.name}")
            assert hashlib.sha256(shipped).digest() == hashlib.sha256(f.read_bytes()).digest(), f.name


def test_tags_and_lemmas_equal_nltk_on_every_shared_caption(shared, nltk_ref):
    """Token by token (halluc's tokenizer), tag by tag and lemma by lemma, with both CHAIR's lowercasing
    and AMBER's (none), on every caption of every shared log."""
    from halluc.text.tokenize import word_tokenize
    nltk, tagger, wnl = nltk_ref
    n = 0
    for name, texts in shared_captions(shared).items():
        for text in texts:
            for t in (text.lower(), text):
                toks = word_tokenize(t)
                assert toks == nltk.word_tokenize(t), (name, t)
                ref = tagger.tag(toks)
                tags = pos_tag(toks)
                assert tags == [p for _, p in ref], (name, t)
                mine = lemmatize_tokens(toks)
                assert mine == [wnl.lemmatize(w, wordnet_pos(p)) for w, p in ref], (name, t)
                n += len(toks)
    assert n > 400_000


def test_lemmatize_parity_with_nltk_on_wordnet_words(nltk_ref, shared):
    """A deterministic few thousand words: every 97th WordNet lemma of each POS and every 7th exception,
    each with inflectional endings added, in every POS."""
    import zipfile
    _, _, wnl = nltk_ref
    words = set()
    with zipfile.ZipFile(shared / "nltk_data" / "corpora" / "wordnet.zip") as z:
        for name in ("noun", "verb", "adj", "adv"):
            index = [l for l in z.read(f"wordnet/index.{name}").decode().splitlines() if not l.startswith(" ")]
            words.update(l.split()[0] for l in index[::97])
            words.update(l.split()[0] for l in z.read(f"wordnet/{name}.exc").decode().splitlines()[::7])
    words |= {w + s for w in list(words) for s in ("s", "es", "ed", "ing", "er", "est", "ies", "eses")}
    assert len(words) > 3000
    for w in sorted(words):
        for pos in ("n", "v", "a", "r"):
            assert lemmatize(w, pos) == wnl.lemmatize(w, pos), (w, pos)


# ------------------------------------------------------------------------------ robustness

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalisers_never_crash(text):
    assert isinstance(singularize(text), str)
    for pos in ("n", "v", "a", "s", "r"):
        assert isinstance(lemmatize(text, pos), str)
