"""A book's chapters spoken with their sentences batched across chapters.

`speak_chapter` hands a batching engine one chapter at a time: a 5,000-character chapter is
74 sentences, so a GPU that runs best at a batch of 128 or 256 gets one part-filled batch a
chapter. `BookSpeaker` speaks a window of the chapters still to be made (from the one asked
for on, at least `WINDOW_BATCHES` of the engine's batches of sentences), all their sentences
sorted by length into the engine's batches, and hands each chapter's `SpokenChapter` back in
order, exactly as `speak_chapter` would have made it: each sentence's audio depends on its
text, voice and seed alone (the csm engine's sentence seeds; on a GPU, bf16 rounding in a
batch of another shape aside), the parts are joined the same way, and a chapter is asked
for, stored and resumed one at a time as before.

The resampling of each sentence to the mastering rate (CPU work) runs on a pool of threads,
not in the thread that keeps the engine busy. Engines that take a chapter's seed (`seeded`:
piper) or do not batch are spoken chapter by chapter, as `speak_chapter` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from audiobook_tts.chapter import (
    Progress,
    SpokenChapter,
    SpokenSentence,
    chunks,
    speak_chapter,
    spoken_sentence,
)
from audiobook_tts.engines.base import Engine

# Sentences spoken together: at least this many of the engine's batches (then whole chapters).
WINDOW_BATCHES = 4


def batches_across_chapters(engine: Engine) -> bool:
    """Whether an engine's sentences may be batched across chapters: it batches, and its
    audio does not hang on a chapter's seed (`seeded`, piper's noise)."""
    return (
        getattr(engine, "batch_size", 1) > 1
        and getattr(engine, "synthesize_batch", None) is not None
        and getattr(engine, "seeded", None) is None
    )


class BookSpeaker:
    """The chapters of a book still to be spoken (`texts`, by their index in the book),
    spoken in windows; `speak(index)` gives chapter `index`'s audio, asked for in order."""

    def __init__(
        self,
        engine: Engine,
        texts: dict[int, str],
        voice: str,
        speed: float = 1.0,
        seed: int = 0,
        workers: int = 0,
    ) -> None:
        self.engine = engine
        self.texts = dict(sorted(texts.items()))
        self.voice = voice
        self.speed = speed
        self.seed = seed
        self.ready: dict[int, SpokenChapter] = {}
        self.workers = workers or max(1, min(8, (os.cpu_count() or 2) - 1))

    def speak(self, index: int, progress: Progress | None = None) -> SpokenChapter:
        """Chapter `index`'s spoken audio; speaks the window from it when not spoken yet.
        `progress(done, total)` follows the chapter's own sentences."""
        spoken = self.ready.pop(index, None)
        if spoken is None:
            if index not in self.texts:
                raise KeyError(f"chapter {index} is not one to speak")
            if not batches_across_chapters(self.engine) or not list(chunks(self.texts[index])):
                # (a chapter with no sentence: speak_chapter's own error, in its own turn)
                return speak_chapter(
                    self.engine, self.texts[index], self.voice, self.speed, progress, self.seed
                )
            self.speak_window(index, progress)
            spoken = self.ready.pop(index)
        elif progress is not None:
            count = len(spoken.sentences)
            progress(count, count)
        return spoken

    def window(self, index: int) -> list[int]:
        """Chapter `index` and the next ones to speak, until the window holds enough
        sentences for `WINDOW_BATCHES` of the engine's batches."""
        wanted = WINDOW_BATCHES * getattr(self.engine, "batch_size", 1)
        chosen: list[int] = []
        count = 0
        for number in self.texts:
            if number < index or number in self.ready or not list(chunks(self.texts[number])):
                continue
            if chosen and count >= wanted:
                break
            chosen.append(number)
            count += len(list(chunks(self.texts[number])))
        return chosen

    def speak_window(self, index: int, progress: Progress | None) -> None:
        chosen = self.window(index)
        pieces = {number: list(chunks(self.texts[number])) for number in chosen}
        everything = [(number, at) for number in chosen for at in range(len(pieces[number]))]
        order = sorted(everything, key=lambda item: len(pieces[item[0]][item[1]].text))
        size = max(1, getattr(self.engine, "batch_size", 1))
        batch = getattr(self.engine, "synthesize_batch", None)
        assert batch is not None  # batches_across_chapters said so
        own_total = len(pieces[index])
        own_done = 0
        with ThreadPoolExecutor(self.workers, thread_name_prefix="resampling") as pool:
            sentences: dict[tuple[int, int], Future[SpokenSentence]] = {}
            for start in range(0, len(order), size):
                group = order[start : start + size]
                texts = [pieces[number][at].text for number, at in group]
                if len(group) > 1:
                    made = batch(texts, self.voice, self.speed)
                else:
                    made = [self.engine.synthesize(texts[0], self.voice, self.speed)]
                for item, said in zip(group, made, strict=True):
                    number, at = item
                    piece = pieces[number][at]
                    sentences[item] = pool.submit(
                        spoken_sentence, piece.text, said, piece.pause_after
                    )
                own_done += sum(1 for number, _ in group if number == index)
                if progress is not None:
                    progress(own_done, own_total)  # may raise (a stopped book)
            for number in chosen:
                self.ready[number] = SpokenChapter(
                    tuple(sentences[(number, at)].result() for at in range(len(pieces[number]))),
                    self.seed,
                )


def speak_chapters(
    engine: Engine,
    texts: Sequence[str],
    voice: str,
    speed: float = 1.0,
    seed: int = 0,
) -> list[SpokenChapter]:
    """Every chapter of `texts`, spoken across chapters where the engine allows (in order)."""
    speaker = BookSpeaker(engine, dict(enumerate(texts)), voice, speed, seed)
    return [speaker.speak(index) for index in range(len(texts))]
