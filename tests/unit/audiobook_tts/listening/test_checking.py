"""A chapter heard as it is made: a sentence that does not say its text is retaken with seeds
from its key where the engine samples, flagged where it does not, and made again the same."""

from __future__ import annotations

import numpy as np

from audiobook_tts.chapter import master_chapter, speak_chapter
from audiobook_tts.engines.base import sentence_seed
from audiobook_tts.listening.checking import check_chapter
from tests.unit.audiobook_tts.listening.fakes import CodedEngine, CodedListener, SeededCodedEngine

TEXT = (
    "The first sentence is here. The second one follows it. "
    "A third comes after that. And the fourth ends the chapter."
)
SECOND, THIRD = "The second one follows it.", "A third comes after that."


def test_a_sampling_engine_retakes_until_a_take_passes_with_seeds_from_the_key() -> None:
    engine = SeededCodedEngine({SECOND: 2})  # the first take and the first retake mumble
    listener = CodedListener(engine)
    spoken = speak_chapter(engine, TEXT, "alloy")
    checked = check_chapter(spoken, engine, "alloy", 1.0, "chapter-key", listener)
    assert checked.check is not None
    assert checked.check.passed and checked.check.flagged == ()
    assert checked.check.remade == (1,) and checked.check.retakes == 2
    assert engine.seeds == [
        (SECOND, sentence_seed(f"chapter-key\0{1}\0{SECOND}", 1)),
        (SECOND, sentence_seed(f"chapter-key\0{1}\0{SECOND}", 2)),
    ]
    assert checked.sentences[1] is not spoken.sentences[1]
    assert checked.sentences[0] is spoken.sentences[0]  # sentences that passed are kept as made


def test_a_sentence_that_never_passes_is_flagged_with_its_best_take() -> None:
    engine = SeededCodedEngine({THIRD: 5})
    checked = check_chapter(
        speak_chapter(engine, TEXT, "alloy"), engine, "alloy", 1.0, "k", CodedListener(engine)
    )
    assert checked.check is not None and not checked.check.passed
    assert [(score.index, score.verdict) for score in checked.check.flagged] == [(2, "misread")]
    assert checked.check.flagged[0].heard == "mumble grumble"
    assert checked.check.retakes == 2  # attempts 3: the first take and two more
    assert checked.check.remade == ()  # no take was better than the first


def test_a_deterministic_engine_is_flagged_without_retakes() -> None:
    engine = CodedEngine({THIRD: 1})
    checked = check_chapter(
        speak_chapter(engine, TEXT, "alloy"), engine, "alloy", 1.0, "k", CodedListener(engine)
    )
    assert checked.check is not None
    assert [score.index for score in checked.check.flagged] == [2]
    assert checked.check.retakes == 0 and engine.seeds == []
    report = master_chapter(checked).report()
    assert report["check"]["flagged"][0]["sentence"] == 3  # type: ignore[index]
    assert report["check"]["dnsmos"] == {  # type: ignore[index]
        "p808_mos": 3.5,
        "ovrl_mos": 3.0,
        "sig_mos": 3.2,
        "bak_mos": 3.9,
    }


def test_a_checked_chapter_made_again_is_the_same_audio() -> None:
    def make() -> np.ndarray:
        engine = SeededCodedEngine({SECOND: 1})
        spoken = speak_chapter(engine, TEXT, "alloy")
        return master_chapter(
            check_chapter(spoken, engine, "alloy", 1.0, "k", CodedListener(engine))
        ).samples

    np.testing.assert_array_equal(make(), make())
