"""Sentences scored against what was heard: the flagged sentence is the damaged one."""

from __future__ import annotations

from audiobook_tts.listening.alignment import ChapterScore, HeardSegment, score_sentences

SENTENCES = [
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "Winston Smith slipped quickly through the glass doors of Victory Mansions.",
    "The hallway smelt of boiled cabbage and old rag mats.",
    "At one end of it a coloured poster had been tacked to the wall.",
    "It depicted simply an enormous face, more than a metre wide.",
]


def heard(*texts: str) -> tuple[HeardSegment, ...]:
    return tuple(
        HeardSegment(text, 2.0 * index, 2.0 * index + 1.5) for index, text in enumerate(texts)
    )


def flagged(scored: ChapterScore) -> dict[int, str]:
    return {score.index: score.verdict for score in scored.flagged}


def test_what_whisper_writes_for_the_same_words_is_no_error() -> None:
    # Digits, American spelling, case and punctuation: as Whisper writes the book's words.
    scores = score_sentences(
        SENTENCES,
        heard(
            "It was a bright cold day in April and the clocks were striking 13.",
            "winston smith slipped quickly through the glass doors of victory mansions",
            "The hallway smelt of boiled cabbage and old rag mats.",
            "At one end of it, a colored poster had been tacked to the wall.",
            "It depicted simply an enormous face, more than a meter wide.",
        ),
        0.3,
    )
    assert flagged(scores) == {}
    assert scores.wer == 0.0


def test_a_dropped_and_a_repeated_sentence_are_flagged_at_exactly_those_two() -> None:
    scores = score_sentences(
        SENTENCES,
        heard(SENTENCES[0], SENTENCES[2], SENTENCES[3], SENTENCES[3], SENTENCES[4]),
        0.3,
    )
    assert flagged(scores) == {1: "missing", 3: "repeated"}
    assert scores.sentences[1].wer >= 0.9  # a stray "the" of a neighbour may align to it
    assert scores.sentences[3].wer >= 1.0


def test_a_misread_sentence_is_flagged_with_what_was_heard() -> None:
    scores = score_sentences(
        SENTENCES,
        heard(
            SENTENCES[0],
            SENTENCES[1],
            "The mumble of something else entirely here now.",
            *SENTENCES[3:],
        ),
        0.3,
    )
    assert flagged(scores) == {2: "misread"}
    assert "mumble" in scores.sentences[2].heard
    assert scores.sentences[2].start == 4.0  # where its first heard word begins


def test_one_misheard_word_stays_under_the_bar() -> None:
    scores = score_sentences(
        SENTENCES[:1],
        heard("It was a bright cold May in April and the clocks were striking 13."),
        0.3,
    )
    assert flagged(scores) == {}
    assert 0 < scores.sentences[0].wer < 0.1


def test_a_single_misheard_word_of_a_short_sentence_is_not_flagged() -> None:
    scores = score_sentences(["Suddenly, thump!", "Thump!"], heard("Suddenly some.", "Some."), 0.3)
    assert flagged(scores) == {}
    assert [score.wer for score in scores.sentences] == [0.5, 1.0]


def test_nothing_heard_flags_every_sentence_missing() -> None:
    scores = score_sentences(SENTENCES[:2], (), 0.5)
    assert flagged(scores) == {0: "missing", 1: "missing"}
    assert scores.wer == 1.0


def test_a_sentence_of_no_words_is_never_flagged() -> None:
    scores = score_sentences(["…", SENTENCES[0]], heard(SENTENCES[0]), 0.3)
    assert flagged(scores) == {}
    assert scores.sentences[0].words == 0


def test_a_sentence_said_twice_beside_one_much_like_it_is_charged_to_itself() -> None:
    # Both speak of a rabbit, a watch and a waistcoat pocket: an alignment that slides the
    # second copy onto the next sentence would flag that one instead.
    alike = [
        "There was nothing so very remarkable in that.",
        "But when the Rabbit actually took a watch out of its waistcoat pocket, and looked at "
        "it, and then hurried on, Alice started to her feet.",
        "It flashed across her mind that she had never before seen a rabbit with either a "
        "waistcoat pocket, or a watch to take out of it.",
        "Burning with curiosity, she ran across the field after it.",
    ]
    said = heard(alike[0], alike[1], alike[1], alike[2], alike[3])
    assert flagged(score_sentences(alike, said, 0.4)) == {1: "repeated"}
    dropped = heard(alike[0], alike[2], alike[3])
    assert flagged(score_sentences(alike, dropped, 0.4)) == {1: "missing"}


def test_the_alignment_covers_every_word_once_in_order() -> None:
    import random

    from audiobook_tts.listening.alignment import SAME, align

    chooser = random.Random(1)
    words = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "and",
        "then",
        "it",
        "ran",
        "off",
        "to",
        "see",
        "the",
        "dog",
    ]
    for _ in range(200):
        text = [chooser.choice(words) for _ in range(chooser.randint(0, 30))]
        said = [chooser.choice(words) for _ in range(chooser.randint(0, 30))]
        steps = align(text, said)
        assert [step[1] for step in steps if step[1] >= 0] == list(range(len(text)))
        assert [step[2] for step in steps if step[2] >= 0] == list(range(len(said)))
        assert all(text[r] == said[h] for kind, r, h in steps if kind == SAME)
