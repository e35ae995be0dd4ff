"""A book's chapters spoken with sentences batched across chapters (`BookSpeaker`): the same
spoken chapters as `speak_chapter` makes one by one, batches that cross chapters, progress
per chapter, order kept, and chapter by chapter for engines that take a chapter's seed."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from audiobook_tts.books.making import Finishing
from audiobook_tts.books.speaking import BookSpeaker, batches_across_chapters, speak_chapters
from audiobook_tts.chapter import ChapterError, SpokenChapter, speak_chapter
from audiobook_tts.engines.base import Audio, Voice

CHAPTERS = [
    "One. The second sentence is longer than the first.\n\nTwo. Three, four.",
    "It rained. The river rose all night, and nobody slept.",
    "Morning came. The bridge was gone.",
]


class Batching:
    """A fake GPU engine: each sentence's audio from its text alone; batches recorded."""

    name, version, device = "batching", "1", "cpu"

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.batches: list[list[str]] = []

    def voices(self) -> list[Voice]:
        return [Voice("0", self.name, "en", "zero")]

    def facts(self) -> dict[str, str]:
        return {"name": self.name}

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        self.batches.append([text])
        return self.said(text)

    def synthesize_batch(self, texts: list[str], voice: str, speed: float) -> list[Audio]:
        self.batches.append(list(texts))
        return [self.said(text) for text in texts]

    @staticmethod
    def said(text: str) -> Audio:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
        rng = np.random.default_rng(seed)
        return Audio((0.2 * rng.standard_normal(2400 + 240 * len(text))).astype(np.float32), 24000)


def same(one: SpokenChapter, other: SpokenChapter) -> bool:
    return (
        one.seed == other.seed
        and len(one.sentences) == len(other.sentences)
        and all(
            a.text == b.text
            and a.pause_after == b.pause_after
            and a.hit_bound == b.hit_bound
            and np.array_equal(a.samples, b.samples)
            for a, b in zip(one.sentences, other.sentences, strict=True)
        )
    )


def test_chapters_spoken_across_chapters_equal_chapter_by_chapter() -> None:
    engine = Batching(batch_size=3)
    alone = [speak_chapter(Batching(3), text, "0", 1.0, seed=5) for text in CHAPTERS]
    together = speak_chapters(engine, CHAPTERS, "0", 1.0, seed=5)
    assert all(same(one, other) for one, other in zip(alone, together, strict=True))
    chapter_of = {
        piece: number for number, text in enumerate(CHAPTERS) for piece in text_pieces(text)
    }
    # all three chapters went in one window, and some batch held two chapters' sentences
    assert any(len({chapter_of[text] for text in batch}) > 1 for batch in engine.batches)
    assert sum(len(batch) for batch in engine.batches) == len(chapter_of)


def text_pieces(text: str) -> list[str]:
    from audiobook_tts.chapter import chunks

    return [piece.text for piece in chunks(text)]


def test_each_chapter_reports_its_own_progress_and_windows_follow_the_batch_size() -> None:
    engine = Batching(batch_size=1)
    assert not batches_across_chapters(engine)  # a batch of one: chapter by chapter
    engine = Batching(batch_size=2)
    speaker = BookSpeaker(engine, {0: CHAPTERS[0], 2: CHAPTERS[2]}, "0")
    assert speaker.window(0) == [0, 2]  # 4 batches of 2 wanted: both chapters (7 sentences)
    seen: dict[int, list[tuple[int, int]]] = {0: [], 2: []}
    first = speaker.speak(0, lambda done, total: seen[0].append((done, total)))
    second = speaker.speak(2, lambda done, total: seen[2].append((done, total)))
    assert seen[0][-1] == (4, 4) and seen[2] == [(2, 2)]
    assert [done for done, _ in seen[0]] == sorted(done for done, _ in seen[0])
    assert len(first.sentences) == 4 and len(second.sentences) == 2
    with pytest.raises(KeyError):
        speaker.speak(1)


def test_a_chapter_is_handed_back_when_its_last_batch_is_spoken_not_the_windows() -> None:
    # On a GPU, book order: chapter 0 (4 sentences) is two batches of 2; chapters 1 and 2
    # wait until they are asked for, so chapter 0's finishing overlaps their speech.
    engine = Batching(batch_size=2)
    engine.device = "cuda"
    speaker = BookSpeaker(engine, dict(enumerate(CHAPTERS)), "0")
    assert speaker.window(0) == [0, 1, 2]  # one window: 8 sentences, 4 batches of 2 wanted
    first = speaker.speak(0)
    assert engine.batches == [text_pieces(CHAPTERS[0])[:2], text_pieces(CHAPTERS[0])[2:]]
    second = speaker.speak(1)
    assert len(engine.batches) == 3 and len(second.sentences) == 2
    third = speaker.speak(2)
    assert len(engine.batches) == 4 and speaker.current is None  # the window let go
    alone = [speak_chapter(Batching(2), text, "0", 1.0) for text in CHAPTERS]
    assert all(same(one, other) for one, other in zip(alone, [first, second, third], strict=True))
    # On a CPU, the window's sentences by length: the shortest first, across chapters.
    cpu = Batching(batch_size=2)
    BookSpeaker(cpu, dict(enumerate(CHAPTERS)), "0").speak(0)
    spoken = [text for batch in cpu.batches for text in batch]
    assert [len(text) for text in spoken] == sorted(len(text) for text in spoken)
    assert len(cpu.batches) == 4  # chapter 0's longest sentence is the window's longest


def test_a_chapter_with_nothing_to_say_fails_in_its_own_turn() -> None:
    speaker = BookSpeaker(Batching(batch_size=4), {0: CHAPTERS[1], 1: "  ", 2: CHAPTERS[2]}, "0")
    assert len(speaker.speak(0).sentences) == 2
    with pytest.raises(ChapterError, match="no sentence"):
        speaker.speak(1)
    assert len(speaker.speak(2).sentences) == 2


class Seeded(Batching):
    """An engine whose audio takes the chapter's seed (as piper's noise does)."""

    def seeded(self, seed: int) -> Seeded:
        return self


def test_an_engine_that_takes_a_chapters_seed_is_spoken_chapter_by_chapter() -> None:
    engine = Seeded(batch_size=8)
    assert not batches_across_chapters(engine)
    speak_chapters(engine, CHAPTERS[:2], "0")
    assert len(engine.batches) == 2  # one batch a chapter


def test_the_tiny_csm_speaks_a_book_across_chapters_as_chapter_by_chapter(
    tmp_path: Path,
) -> None:
    pytest.importorskip("torch")
    from audiobook_tts.engines.csm import CsmEngine
    from audiobook_tts.engines.csmrandom import save

    engine = CsmEngine.load(str(save(tmp_path / "tiny-csm")), "cpu", batch_size=4)
    texts = ["Hi there. Then rain.", "A longer sentence, with more words. Done."]
    alone = [speak_chapter(engine, text, "alloy") for text in texts]
    together = speak_chapters(engine, texts, "alloy")
    assert all(same(one, other) for one, other in zip(alone, together, strict=True))


class BatchingTone(Batching):
    """`Batching` at a book's rate: a tone a sentence, its pitch and length from the text."""

    @staticmethod
    def said(text: str) -> Audio:
        rate = 16000
        pitch = 150 + int.from_bytes(hashlib.sha256(text.encode()).digest()[:1], "big")
        t = np.arange(int(rate * 0.03 * len(text))) / rate
        return Audio((0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), rate)


def make(
    engine: Batching,
    tmp_path: Path,
    name: str,
    should_stop: Callable[[], bool] = lambda: False,
    finishing: Finishing | None = None,
) -> Path:
    from audiobook_tts.books.making import BookRequest, ChapterStore, make_book, plan_chapters
    from audiobook_tts.books.reading import read_book
    from tests import bookfiles

    source = tmp_path / "tales.epub"
    if not source.exists():
        source.write_bytes(bookfiles.epub())
    book = read_book(source)
    store = ChapterStore(tmp_path / f"store-{name}")
    output = tmp_path / name
    make_book(
        book,
        plan_chapters(book),
        engine,
        BookRequest("0"),
        store,
        output,
        should_stop=should_stop,
        finishing=finishing,
    )
    return output


FILES = ("chapter-02.mp3", "chapter-03.mp3", "chapter-04.mp3", "book.m4b", "book.json")


def test_a_book_batched_across_chapters_is_byte_for_byte_the_book_chapter_by_chapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audiobook_tts.books.making import Cancelled

    across = BatchingTone(batch_size=4)
    by_chapter = BatchingTone(batch_size=1)  # a batch of one: chapter by chapter
    one = make(across, tmp_path, "across")
    other = make(by_chapter, tmp_path, "by-chapter")
    for name in FILES:
        assert (one / name).read_bytes() == (other / name).read_bytes(), name
    assert max(len(batch) for batch in across.batches) == 4
    assert len(across.batches) < len(by_chapter.batches)
    # stopped once a chapter is stored, then resumed: the rest made, the same files again
    # (windows of one chapter here, so that the stop comes before the last is spoken)
    monkeypatch.setattr("audiobook_tts.books.speaking.WINDOW_BATCHES", 1)
    stopped = BatchingTone(batch_size=2)
    with pytest.raises(Cancelled):
        make(stopped, tmp_path, "resumed", should_stop=lambda: len(stopped.batches) >= 3)
    resumed = BatchingTone(batch_size=2)
    again = make(resumed, tmp_path, "resumed")
    said = sum(len(batch) for batch in resumed.batches)
    assert 0 < said < sum(len(batch) for batch in by_chapter.batches)  # chapter 2 was kept
    for name in FILES:
        assert (again / name).read_bytes() == (one / name).read_bytes(), name


def test_chapters_finished_in_processes_are_the_chapters_finished_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A GPU's book finishes its chapters in spawned processes (threads were 2.4x slower on
    # an H200 host), each handed its samples in a file: the same files as threads make,
    # each chapter's AAC joined into the M4B, and no handed file left behind.
    threads = make(BatchingTone(batch_size=4), tmp_path, "threads", finishing=Finishing(2))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    processes = make(
        BatchingTone(batch_size=4),
        tmp_path,
        "processes",
        finishing=Finishing(2, processes=True),
    )
    assert list(scratch.iterdir()) == []
    for name in FILES:
        assert (processes / name).read_bytes() == (threads / name).read_bytes(), name
    assert (
        sorted(path.suffix for path in (tmp_path / "store-processes").glob("*.m4a")) == [".m4a"] * 3
    )
    # Made again, every chapter is found made: no finishing process is spawned for it.
    from audiobook_tts.books import making

    def spawned(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a finishing process for a book with nothing to finish")

    monkeypatch.setattr(making, "ProcessPoolExecutor", spawned)
    again = make(
        BatchingTone(batch_size=4), tmp_path, "processes", finishing=Finishing(2, processes=True)
    )
    for name in FILES:
        assert (again / name).read_bytes() == (threads / name).read_bytes(), name
