"""A chapter listened to as it is made: sentences that do not say their text are made again
(an engine that samples gets other seeds) or flagged (an engine that does not).

The n-th take of a sentence is seeded from the sentence's key (the chapter's key, its place
and its text) and n, and the recognizer is greedy at temperature 0: a chapter made again is
the same file, retakes included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from audiobook_tts.chapter import (
    MASTER_RATE,
    Progress,
    RenderedChapter,
    SpokenChapter,
    SpokenSentence,
    chapter_seed,
    master_chapter,
    retake,
    speak_chapter,
)
from audiobook_tts.engines.base import Engine, sentence_seed
from audiobook_tts.listening.alignment import SentenceScore, chapter_wer, score_sentences
from audiobook_tts.listening.listener import Hearing
from audiobook_tts.listening.report import ChapterCheck

# What a check is doing, for progress: "listening", "retaking sentence 12", "scoring".
Activity = Callable[[str], None]


def engine_name(engine: Engine) -> str:
    return engine.facts().get("name", engine.name)


def check_chapter(
    spoken: SpokenChapter,
    engine: Engine,
    voice: str,
    speed: float,
    key: str,
    listener: Hearing,
    activity: Activity | None = None,
) -> SpokenChapter:
    """`spoken` heard whole; each sentence over the engine's bar retaken (at most the policy's
    attempts, the best take kept) where the engine samples; DNSMOS of the result."""
    say = activity or (lambda _: None)
    name = engine_name(engine)
    threshold = listener.policy.threshold(name)
    texts = [sentence.text for sentence in spoken.sentences]
    say("listening")
    heard = listener.hear(np.concatenate(spoken.parts), MASTER_RATE)
    scores = list(score_sentences(texts, heard, threshold).sentences)
    sentences = list(spoken.sentences)
    remade: list[int] = []
    retakes = 0
    for score in list(scores):
        if not score.flagged:
            continue
        best, best_score = sentences[score.index], score
        for attempt in range(1, listener.policy.attempts):
            say(f"retaking sentence {score.index + 1}")
            seed = sentence_seed(f"{key}\0{score.index}\0{score.text}", attempt)
            take = retake(engine, sentences[score.index], voice, speed, seed)
            if take is None:
                break  # a deterministic engine: another take would say the same
            retakes += 1
            take_score = _score_alone(take, score.index, listener, threshold)
            if take_score.wer < best_score.wer:
                best, best_score = take, take_score
            if not take_score.flagged:
                break
        if best is not sentences[score.index]:
            sentences[score.index] = best
            scores[score.index] = best_score
            remade.append(score.index)
    result = replace(spoken, sentences=tuple(sentences))
    say("scoring")
    dnsmos = listener.score(np.concatenate(result.parts), MASTER_RATE)
    check = ChapterCheck(
        engine=name,
        max_wer=threshold,
        wer=chapter_wer(scores),
        words=sum(score.words for score in scores),
        sentences=len(scores),
        flagged=tuple(score for score in scores if score.flagged),
        remade=tuple(remade),
        retakes=retakes,
        dnsmos=dnsmos,
    )
    return replace(result, check=check)


def _score_alone(
    take: SpokenSentence, index: int, listener: Hearing, threshold: float
) -> SentenceScore:
    """A retake heard on its own."""
    heard = listener.hear(take.samples, MASTER_RATE)
    (score,) = score_sentences([take.text], heard, threshold).sentences
    return replace(score, index=index, start=None)


def render_checked_chapter(
    engine: Engine,
    text: str,
    voice: str,
    speed: float,
    listener: Hearing | None,
    progress: Progress | None = None,
    seed: int = 0,
) -> RenderedChapter:
    """A chapter spoken, heard (with a listener: retakes, flags, DNSMOS) and mastered."""
    spoken = speak_chapter(engine, text, voice, speed, progress, seed)
    if listener is not None:
        key = str(chapter_seed(text, voice, speed, seed))
        spoken = check_chapter(spoken, engine, voice, speed, key, listener)
    return master_chapter(spoken)
