"""A book's chapters spoken with their sentences batched across chapters.

`speak_chapter` hands a batching engine one chapter at a time: a 5,000-character chapter is
74 sentences, so a GPU that runs best at a batch of 128 or 256 gets one part-filled batch a
chapter. `BookSpeaker` speaks a window of the chapters still to be made (from the one asked
for on, at least `WINDOW_BATCHES` of the engine's batches of sentences), their sentences cut
into the engine's batches (in book order on a GPU, by length on a CPU), and hands each chapter's `SpokenChapter` back as
soon as its last batch is spoken, exactly as `speak_chapter` would have made it: each sentence's audio depends on its
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
from dataclasses import dataclass, field

from audiobook_tts.chapter import (
    Chunk,
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


@dataclass
class Window:
    """Chapters spoken together: their sentences in book order, cut into the engine's
    batches; each sentence's resampling, once spoken, on the pool."""

    pieces: dict[int, list[Chunk]]
    batches: list[list[tuple[int, int]]]
    pool: ThreadPoolExecutor
    sentences: dict[tuple[int, int], Future[SpokenSentence]] = field(default_factory=dict)

    def complete(self, number: int) -> bool:
        return all((number, at) in self.sentences for at in range(len(self.pieces[number])))


class BookSpeaker:
    """The chapters of a book still to be spoken (`texts`, by their index in the book),
    spoken in windows; `speak(index)` gives chapter `index`'s audio, asked for in order.

    A window's sentences go to the engine a batch at a time, and a chapter is handed back as
    soon as its last sentence is spoken: the next batches are spoken only when a later
    chapter is asked for. On a GPU they go in book order, so a chapter's finishing overlaps
    the next batches' speech (sorted by length, every chapter of a window waited for the
    window's last batch, and the CPU's finishing, which bounds a book on a GPU, waited with
    them); on a CPU, sorted by length, so batches of like lengths waste fewest frames."""

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
        self.workers = workers or max(1, min(8, (os.cpu_count() or 2) - 1))
        self.current: Window | None = None

    def speak(self, index: int, progress: Progress | None = None) -> SpokenChapter:
        """Chapter `index`'s spoken audio; speaks the window from it when not spoken yet.
        `progress(done, total)` follows the chapter's own sentences."""
        if index not in self.texts:
            raise KeyError(f"chapter {index} is not one to speak")
        if not batches_across_chapters(self.engine) or not list(chunks(self.texts[index])):
            # (a chapter with no sentence: speak_chapter's own error, in its own turn)
            return speak_chapter(
                self.engine, self.texts[index], self.voice, self.speed, progress, self.seed
            )
        window = self.current
        if window is None or index not in window.pieces:
            self.close()
            window = self.current = self.open_window(index)
        self.speak_until(window, index, progress)
        spoken = SpokenChapter(
            tuple(
                window.sentences.pop((index, at)).result()
                for at in range(len(window.pieces[index]))
            ),
            self.seed,
        )
        del window.pieces[index]
        if not window.pieces:
            self.close()
        return spoken

    def close(self) -> None:
        """Let the current window go (its resampling threads with it)."""
        if self.current is not None:
            self.current.pool.shutdown(wait=True, cancel_futures=True)
            self.current = None

    def window(self, index: int) -> list[int]:
        """Chapter `index` and the next ones to speak, until the window holds enough
        sentences for `WINDOW_BATCHES` of the engine's batches."""
        wanted = WINDOW_BATCHES * getattr(self.engine, "batch_size", 1)
        chosen: list[int] = []
        count = 0
        for number in self.texts:
            if number < index or not list(chunks(self.texts[number])):
                continue
            if chosen and count >= wanted:
                break
            chosen.append(number)
            count += len(list(chunks(self.texts[number])))
        return chosen

    def open_window(self, index: int) -> Window:
        chosen = self.window(index)
        pieces = {number: list(chunks(self.texts[number])) for number in chosen}
        everything = [(number, at) for number in chosen for at in range(len(pieces[number]))]
        if not self.engine.device.startswith("cuda"):
            # On a CPU the engine bounds a book: batches of like lengths waste fewest frames.
            everything.sort(key=lambda item: len(pieces[item[0]][item[1]].text))
        size = max(1, getattr(self.engine, "batch_size", 1))
        batches = [everything[start : start + size] for start in range(0, len(everything), size)]
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="resampling")
        return Window(pieces, batches, pool)

    def speak_until(self, window: Window, index: int, progress: Progress | None) -> None:
        """The window's next batches, until chapter `index` is all spoken."""
        batch = getattr(self.engine, "synthesize_batch", None)
        assert batch is not None  # batches_across_chapters said so
        own_total = len(window.pieces[index])
        reported = False
        while not window.complete(index):
            group = window.batches.pop(0)
            texts = [window.pieces[number][at].text for number, at in group]
            if len(group) > 1:
                made = batch(texts, self.voice, self.speed)
            else:
                made = [self.engine.synthesize(texts[0], self.voice, self.speed)]
            for item, said in zip(group, made, strict=True):
                number, at = item
                piece = window.pieces[number][at]
                window.sentences[item] = window.pool.submit(
                    spoken_sentence, piece.text, said, piece.pause_after
                )
            if progress is not None:
                own_done = sum(1 for number, _ in window.sentences if number == index)
                progress(own_done, own_total)  # may raise (a stopped book)
                reported = True
        if progress is not None and not reported:
            progress(own_total, own_total)  # spoken in batches asked for by another chapter


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
