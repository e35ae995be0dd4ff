"""Mastering a spoken chapter: its length is whole AAC frames, its tail room tone within ACX."""

from __future__ import annotations

import numpy as np
import pytest

from audiobook_tts.chapter import (
    CHAPTER_SAMPLES_MULTIPLE,
    HEAD_SECONDS,
    MASTER_RATE,
    TAIL_SECONDS,
    SpokenChapter,
    SpokenSentence,
    master_chapter,
)


def tone(samples: int) -> np.ndarray:
    return (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 220 / MASTER_RATE)).astype(np.float32)


@pytest.mark.parametrize("speech_samples", [1, 1023, 1024, 44_100, 100_003])
def test_a_mastered_chapter_is_whole_aac_frames_and_its_tail_stays_in_acx(
    speech_samples: int,
) -> None:
    spoken = SpokenChapter(
        (
            SpokenSentence("One.", tone(speech_samples), 0.4),
            SpokenSentence("Two.", tone(777), 0.0),
        ),
        seed=7,
    )
    samples = master_chapter(spoken).samples
    assert samples.size % CHAPTER_SAMPLES_MULTIPLE == 0
    speech = speech_samples + int(0.4 * MASTER_RATE) + 777
    tail = samples.size - int(HEAD_SECONDS * MASTER_RATE) - speech
    # The padding lengthens the tail's room tone by less than a frame: 1-5 s stays 2.0-2.03 s.
    shortest = int(TAIL_SECONDS * MASTER_RATE)
    assert shortest <= tail < shortest + CHAPTER_SAMPLES_MULTIPLE
    assert np.abs(samples[-tail:]).max() < 10 ** (-60 / 20)
