"""The pronunciation lexicon: parsing lexicon.tsv (errors name the line) and whole-word,
any-case replacement, longest entry first."""

from __future__ import annotations

import re

import pytest

from audiobook_tts.lexicon import SAYING_PATTERN, WORD_PATTERN, Lexicon, LexiconError


def test_a_lexicon_replaces_whole_words_in_any_case_longest_first() -> None:
    lexicon = Lexicon.parse(
        "# name\tsaying\nCholmondeley\tChumley\nSt John\tSinjin\nSt\tSaint  # comment\n\n"
        "Hermione\t[[h3:m'aI@ni]]\n"
    )
    assert len(lexicon.entries) == 4
    said = lexicon.apply("CHOLMONDELEY met St John at St Paul's; Cholmondeleys, Hermione.")
    assert said == "Chumley met Sinjin at Saint Paul's; Cholmondeleys, [[h3:m'aI@ni]]."
    assert Lexicon().apply("unchanged") == "unchanged"
    assert Lexicon.of({"Nguyen": "Win"}).apply("Mr Nguyen.") == "Mr Win."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Cholmondeley Chumley\n", "line 1: use `word<TAB>how to say it`"),
        ("ok\tfine\nword\t\n", "line 2: use `word<TAB>how to say it`"),
        ("word\t[[tS'Vmli\n", "line 1: phonemes go in"),
        ("word\t" + "x" * 201 + "\n", "line 1: at most 200 characters"),
    ],
)
def test_a_bad_lexicon_line_is_named(text: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message.replace("[", r"\[").replace("`", "`")):
        Lexicon.parse(text)


def test_the_apis_mapping_is_held_to_what_its_schema_says() -> None:
    """Lexicon.of takes exactly the pairs the API schema lets through (schemathesis found
    {"x": ""} passed by a schema that did not say a saying must not be empty)."""
    fine = {"Cholmondeley": "Chumley", "Hermione": "[[h3:m'aI@ni]]", "St John": "Sinjin"}
    assert Lexicon.of(fine).apply("cholmondeley and st john") == "Chumley and Sinjin"
    # A control character is not a space to the schema's readers: a word like any other.
    assert Lexicon.of({"\x1d": "x"}).apply("a \x1d b") == "a x b"
    bad = [("x", ""), ("", "y"), (" ", "y"), ("a#b", "y"), ("x", "[[ ]"), ("x", "a]b"), ("x", "\t")]
    for word, saying in bad:
        assert not (re.fullmatch(WORD_PATTERN, word) and re.fullmatch(SAYING_PATTERN, saying))
        with pytest.raises(LexiconError):
            Lexicon.of({word: saying})
