"""A book's chapters made, kept by key, and joined: chapter MP3s, the M4B, book.json.

A chapter is keyed by the hash of what it is made from (its spoken text, engine, model,
voice, speed, the mastering's version): a chapter already made, by this run, an interrupted
one or another book, is never made again. The command line and the jobs API both call
`make_book`; what they differ in is where the files go and how progress is shown.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audiobook_tts.audio import encode, encode_mp3_parts
from audiobook_tts.books.m4b import M4bChapter, M4bTags, aac_samples, encode_aac, write_m4b
from audiobook_tts.books.reading import Book, Section
from audiobook_tts.books.speaking import BookSpeaker
from audiobook_tts.chapter import (
    MASTER_RATE,
    RenderedChapter,
    SpokenChapter,
    SpokenSentence,
    chunks,
    master_chapter,
    speak_chapter,
)
from audiobook_tts.engines.base import Engine
from audiobook_tts.lexicon import Lexicon
from audiobook_tts.listening.checking import check_chapter
from audiobook_tts.listening.listener import Hearing
from audiobook_tts.listening.report import ChapterCheck

# Raised when the mastering or the files change, so that chapters kept from before are
# made again instead of reused. 2: each chapter's AAC stored with it, the M4B joined from them;
# 3: chapters whole AAC frames long, joined without the later chapters' priming; 4: chapter
# MP3s from LAME at -q 7, bare frames.
MAKING_VERSION = "4"
M4B_NAME = "book.m4b"
BOOK_JSON = "book.json"


class Cancelled(Exception):
    """The book was stopped (Ctrl-C, DELETE, a service shutting down) between sentences."""


@dataclass(frozen=True)
class PlannedChapter:
    section: Section
    text: str  # what is spoken: title, prose, notes when chosen, the lexicon applied
    sentences: int

    @property
    def file_name(self) -> str:
        return f"chapter-{self.section.number:02d}.mp3"


def plan_chapters(
    book: Book, chapters: str = "", footnotes: str = "", lexicon: Lexicon | None = None
) -> tuple[PlannedChapter, ...]:
    """The chosen sections as they will be spoken (BookRefused for a bad choice); their
    footnotes are read for the chapters `footnotes` names ("all", or numbers like "3-5")."""
    lexicon = lexicon or Lexicon()
    with_notes = book.numbers(footnotes, "footnotes")
    planned = []
    for section in book.select(chapters):
        text = lexicon.apply(section.spoken(section.number in with_notes))
        planned.append(PlannedChapter(section, text, sum(1 for _ in chunks(text))))
    return tuple(planned)


def chapter_key(
    text: str,
    engine: Engine,
    voice: str,
    speed: float,
    seed: int = 0,
    listener: Hearing | None = None,
) -> str:
    """What a chapter is made from, hashed; a checked chapter (retakes, flags) is another
    chapter than an unchecked one, and one checked by another model or bar is too."""
    facts = engine.facts()
    identity: dict[str, object] = {
        "making": MAKING_VERSION,
        "engine": facts.get("name", ""),
        "version": facts.get("version", ""),
        "model": facts.get("model", ""),
        "voice": voice,
        "speed": speed,
        "seed": seed,
        "text": text,
    }
    if "sampling" in facts:
        # An engine that samples (csm): another top-k or temperature is another chapter.
        identity["sampling"] = facts["sampling"]
    if listener is not None:
        name = facts.get("name", "")
        identity["check"] = {
            "listener": listener.identity,
            "max_wer": listener.policy.threshold(name),
            "attempts": listener.policy.attempts,
        }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class MadeChapter:
    flac: Path
    mp3: Path
    aac: Path
    report: dict[str, object]


class ChapterStore:
    """Made chapters by key: `<key>.flac` (lossless), `<key>.mp3` (ACX), `<key>.m4a` (the
    chapter's AAC, which the M4B is joined from), `<key>.json` (the measured levels), the
    JSON written last: a chapter without it was not finished and is made again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, key: str) -> MadeChapter | None:
        made = self._paths(key)
        files = (made.flac, made.mp3, made.aac, self._json(key))
        if not all(path.exists() for path in files):
            return None
        try:
            report = json.loads(self._json(key).read_text())
        except (OSError, ValueError):
            return None
        return MadeChapter(made.flac, made.mp3, made.aac, report)

    def put(self, key: str, rendered: RenderedChapter) -> MadeChapter:
        """Encode and store a mastered chapter: its MP3 (in parts, at its pauses) and FLAC
        in threads of their own (LAME and libFLAC let go of the GIL) while this one encodes
        the AAC."""
        self.folder.mkdir(parents=True, exist_ok=True)
        made = self._paths(key)

        def mp3() -> None:
            samples, rate = rendered.samples, rendered.rate
            write_atomically(made.mp3, encode_mp3_parts(samples, rate, rendered.pauses))

        def flac() -> None:
            write_atomically(made.flac, encode(rendered.samples, rendered.rate, "flac"))

        with ThreadPoolExecutor(2, thread_name_prefix="encoding") as encoders:
            encoding = [encoders.submit(mp3), encoders.submit(flac)]
            write_atomically(made.aac, encode_aac(rendered.samples, rendered.rate, rendered.pauses))
            for done in encoding:
                done.result()
        written = json.dumps(rendered.report(), sort_keys=True)
        write_atomically(self._json(key), (written + "\n").encode())
        # The report as `get` will read it (its keys sorted): a book.json is the same whether
        # its chapters were made now or found made.
        return MadeChapter(made.flac, made.mp3, made.aac, json.loads(written))

    def _paths(self, key: str) -> MadeChapter:
        name = self.folder / key
        return MadeChapter(
            name.with_suffix(".flac"), name.with_suffix(".mp3"), name.with_suffix(".m4a"), {}
        )

    def _json(self, key: str) -> Path:
        return self.folder / f"{key}.json"


def write_atomically(path: Path, data: bytes) -> None:
    """Whole or not at all: a crash leaves a `.part`, never a short file under the name; the
    `.part` has a name of its own, so two workers making one chapter never write one file."""
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.part")
    with temporary.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)


@dataclass
class BookProgress:
    """Where a book stands: chapters and sentences done of all, and the time left, estimated
    from the sentences synthesised in this run (chapters found made count as done)."""

    chapters_total: int
    sentences_total: int
    chapters_done: int = 0
    # Of those done, found already made (by an earlier run, or another book): not made again.
    chapters_found_made: int = 0
    sentences_done: int = 0
    chapter: str = ""
    # What is being done to the chapter: speaking, listening, retaking sentence N, scoring.
    activity: str = ""
    # Sentences the listener flagged in the chapters made so far (after their retakes).
    sentences_flagged: int = 0
    chapter_sentences_done: int = 0
    chapter_sentences_total: int = 0
    synthesised: int = 0
    started: float = field(default_factory=time.monotonic)

    def seconds_left(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.synthesised == 0 or elapsed <= 0:
            return None
        rate = self.synthesised / elapsed
        return max(0.0, (self.sentences_total - self.sentences_done) / rate)


@dataclass(frozen=True)
class BookRequest:
    """Everything a book's files depend on, apart from the book."""

    voice: str
    speed: float = 1.0
    seed: int = 0
    # Listen to each chapter as it is made (where a listener is loaded).
    check: bool = True


@dataclass(frozen=True)
class Finishing:
    """Who masters and encodes the spoken chapters while the engine speaks the next:
    `workers` at once, each a process of its own (`processes`) or a thread."""

    workers: int
    processes: bool = False


def finishing_for(engine: Engine | None = None) -> Finishing:
    """For an engine on a GPU, processes (mastering and PyAV's AAC hold the GIL) on every CPU
    but the one that feeds the GPU, two a chapter (its MP3 and its AAC are encoded at once):
    the finishing is then what bounds a book. Else threads on half the CPUs (the engine has
    the rest), at least one, at most four."""
    cpus = os.cpu_count() or 2
    if engine is not None and engine.device.startswith("cuda"):
        return Finishing(max(1, (cpus - 1) // 2), processes=True)
    return Finishing(max(1, min(4, cpus // 2)))


@dataclass(frozen=True)
class ParcelledChapter:
    """A spoken chapter on its way to a finishing process: its sentences' samples in one
    file, the rest pickled. Through the pool's pipe the samples (150 MB a 14-minute chapter)
    were pickled, written and read by one thread for every chapter in turn: on an H200 host
    the last of six chapters reached its process seconds after the speech had ended."""

    path: Path
    sentences: tuple[tuple[str, int, float, bool], ...]  # text, samples, pause, at its bound
    seed: int
    check: ChapterCheck | None

    @classmethod
    def write(cls, spoken: SpokenChapter, folder: Path) -> ParcelledChapter:
        path = folder / f"{uuid.uuid4().hex}.f32"
        with path.open("wb") as stream:
            for sentence in spoken.sentences:
                stream.write(np.ascontiguousarray(sentence.samples, dtype=np.float32).data)
        return cls(
            path,
            tuple(
                (item.text, item.samples.size, item.pause_after, item.hit_bound)
                for item in spoken.sentences
            ),
            spoken.seed,
            spoken.check,
        )

    def open(self) -> SpokenChapter:
        """The spoken chapter again; its file is removed."""
        samples = np.fromfile(self.path, dtype=np.float32)
        self.path.unlink(missing_ok=True)
        sentences = []
        start = 0
        for text, size, pause, at_bound in self.sentences:
            sentences.append(SpokenSentence(text, samples[start : start + size], pause, at_bound))
            start += size
        return SpokenChapter(tuple(sentences), self.seed, self.check)


def finish_chapter(
    folder: Path, key: str, spoken: SpokenChapter | ParcelledChapter
) -> dict[str, object]:
    """Master a spoken chapter and store it under `key` in the store at `folder`; its report.
    Module-level, so that a process of a pool can run it (its arguments travel pickled)."""
    if isinstance(spoken, ParcelledChapter):
        spoken = spoken.open()
    return ChapterStore(folder).put(key, master_chapter(spoken)).report


def ready_to_finish() -> None:
    """Nothing: run in a new finishing process, it has imported this module and with it
    everything `finish_chapter` needs (NumPy, SciPy, PyAV, libsndfile)."""


def finishing_pool(finishing: Finishing) -> Executor:
    if finishing.processes:
        # Spawned, not forked: the parent holds a GPU context and threads.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(finishing.workers, mp_context=context)
        for _ in range(finishing.workers):
            # Started now, with the finishing's modules imported (2 s on an H200 host), while
            # the engine speaks, not when a chapter waits.
            pool.submit(ready_to_finish)
        return pool
    return ThreadPoolExecutor(finishing.workers, thread_name_prefix="finishing")


def make_book(
    book: Book,
    planned: Sequence[PlannedChapter],
    engine: Engine,
    request: BookRequest,
    store: ChapterStore,
    output: Path,
    on_progress: Callable[[BookProgress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
    listener: Hearing | None = None,
    finishing: Finishing | None = None,
) -> dict[str, object]:
    """Make (or find made) every planned chapter, then write the chapter MP3s, the M4B and
    book.json into `output`; returns book.json's content. Cancelled when `should_stop` says so
    (checked between sentences); what was made by then is kept.

    The engine speaks the chapters in order in this thread; each spoken chapter is mastered,
    encoded (MP3, FLAC and the AAC the M4B is joined from) and stored by a finishing worker
    meanwhile (`finishing`: by default `finishing_for(engine)`; at most one chapter waits for
    one), so a fast engine (a GPU) is not held up by the CPU's share of the work. With a
    `listener` (and `request.check`), each chapter is heard before it is finished: sentences
    that do not say their text are retaken or flagged."""
    output.mkdir(parents=True, exist_ok=True)
    progress = BookProgress(len(planned), sum(chapter.sentences for chapter in planned))
    listening = listener if request.check else None
    keys = [
        chapter_key(chapter.text, engine, request.voice, request.speed, request.seed, listening)
        for chapter in planned
    ]
    lock = threading.Lock()
    finishing = finishing or finishing_for(engine)
    waiting = threading.BoundedSemaphore(finishing.workers + 1)

    def finished(chapter: PlannedChapter, found: MadeChapter) -> MadeChapter:
        _place(found.mp3, output / chapter.file_name)
        check = found.report.get("check")
        with lock:
            progress.chapters_done += 1
            if isinstance(check, dict):
                progress.sentences_flagged += len(check.get("flagged") or ())
            on_progress(progress)
        return found

    def doing(activity: str) -> None:
        with lock:
            progress.activity = activity
            on_progress(progress)
        if should_stop():
            raise Cancelled("stopped")

    def finish(chapter: PlannedChapter, key: str, spoken: SpokenChapter) -> Future[MadeChapter]:
        """Hand the chapter to a finishing worker; the future of its stored files, placed."""
        made: Future[MadeChapter] = Future()

        def stored(report: Future[dict[str, object]]) -> None:
            waiting.release()
            try:
                paths = store._paths(key)
                made.set_result(
                    finished(
                        chapter, MadeChapter(paths.flac, paths.mp3, paths.aac, report.result())
                    )
                )
            except BaseException as error:  # handed on to the book's thread
                made.set_exception(error)

        handed: SpokenChapter | ParcelledChapter = spoken
        if finishing.processes:
            handed = ParcelledChapter.write(spoken, parcels)
        pool.submit(finish_chapter, store.folder, key, handed).add_done_callback(stored)
        return made

    results: list[Future[MadeChapter]] = []
    unmade = {
        index: chapter.text
        for index, (chapter, key) in enumerate(zip(planned, keys, strict=True))
        if store.get(key) is None
    }
    # A book found made has nothing to finish: no processes spawned (they took seconds).
    pool = finishing_pool(finishing if unmade else Finishing(1))
    # Spoken chapters handed to finishing processes wait here; gone with the book's making.
    parcels = Path(tempfile.mkdtemp(prefix="audiobook-tts-finishing-"))
    # The chapters still to speak, their sentences batched across chapters (books/speaking).
    speaker = BookSpeaker(engine, unmade, request.voice, request.speed, request.seed)
    try:
        for index, (chapter, key) in enumerate(zip(planned, keys, strict=True)):
            if should_stop():
                raise Cancelled("stopped")
            found = store.get(key)
            if found is not None:
                with lock:
                    progress.chapters_found_made += 1
                    progress.sentences_done += chapter.sentences
                done: Future[MadeChapter] = Future()
                done.set_result(finished(chapter, found))
                results.append(done)
                continue
            with lock:
                progress.chapter = chapter.section.title
                progress.activity = "speaking"
                progress.chapter_sentences_total = chapter.sentences
                progress.chapter_sentences_done = 0
                on_progress(progress)
            base = progress.sentences_done

            def sentences(count: int, _total: int, base: int = base) -> None:
                with lock:
                    progress.synthesised += count - progress.chapter_sentences_done
                    progress.chapter_sentences_done = count
                    progress.sentences_done = base + count
                    on_progress(progress)
                if should_stop():
                    raise Cancelled("stopped")

            spoken = speaker.speak(index, sentences)
            if listening is not None:
                spoken = check_chapter(
                    spoken, engine, request.voice, request.speed, key, listening, doing
                )
            waiting.acquire()  # a spoken chapter waits for a finishing worker, no more
            results.append(finish(chapter, key, spoken))
        made = [result.result() for result in results]
    except BaseException:
        # Stopped (Ctrl-C, DELETE, a service stopping) or failed: the chapter being finished
        # is finished and kept; those spoken and still waiting are let go, not waited for.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        speaker.close()
        pool.shutdown(wait=True)
        shutil.rmtree(parcels, ignore_errors=True)
    if should_stop():
        raise Cancelled("stopped")
    return join_book(book, planned, keys, made, engine, request, store, output, listening)


def make_chapter(
    chapter: PlannedChapter,
    engine: Engine,
    request: BookRequest,
    store: ChapterStore,
    output: Path,
    on_sentences: Callable[[int, int], None] = lambda _done, _total: None,
    listener: Hearing | None = None,
) -> tuple[MadeChapter, bool]:
    """One chapter, found made in the store or spoken, mastered and stored, then placed in
    `output`: a piece of a book for a worker that shares the book with others. True with it
    when it was found made (by an earlier try, another worker, or another book)."""
    output.mkdir(parents=True, exist_ok=True)
    listening = listener if request.check else None
    key = chapter_key(chapter.text, engine, request.voice, request.speed, request.seed, listening)
    found = store.get(key)
    if found is None:
        spoken = speak_chapter(
            engine, chapter.text, request.voice, request.speed, on_sentences, request.seed
        )
        if listening is not None:
            spoken = check_chapter(
                spoken, engine, request.voice, request.speed, key, listening, lambda _: None
            )
        made = store.put(key, master_chapter(spoken))
    else:
        made = found
    _place(made.mp3, output / chapter.file_name)
    return made, found is not None


def join_book(
    book: Book,
    planned: Sequence[PlannedChapter],
    keys: Sequence[str],
    made: Sequence[MadeChapter],
    engine: Engine,
    request: BookRequest,
    store: ChapterStore,
    output: Path,
    listener: Hearing | None = None,
) -> dict[str, object]:
    """The book's chapters made: the stale chapter files gone, the M4B and book.json written
    into `output`; returns book.json's content. Made again, it gives the same files."""
    output.mkdir(parents=True, exist_ok=True)
    planned_files = {chapter.file_name for chapter in planned}
    for stale in output.glob("chapter-*.mp3"):
        if stale.name not in planned_files:
            stale.unlink()  # a chapter of an earlier choice of chapters: not this book's now
    # The M4B is kept too, by the chapters it joins and the book's tags: a book made again
    # costs links, not an AAC encoding of every hour.
    tags = M4bTags(book.title, book.author, book.language, book.cover)
    kept = store.folder / f"{m4b_key(keys, planned, tags)}.m4b"
    # The M4B's own length: its chapters' audio (the joined AAC adds nothing to it).
    seconds = None
    if not kept.exists():
        seconds = write_m4b(
            [
                M4bChapter(chapter.section.title, found.aac)
                for chapter, found in zip(planned, made, strict=True)
            ],
            tags,
            kept,
        )
    _place(kept, output / M4B_NAME)
    if seconds is None:
        seconds = sum(aac_samples(found.aac) for found in made) / MASTER_RATE
    duration = seconds
    description = describe_book(book, planned, made, engine, request, duration, listener)
    write_atomically(
        output / BOOK_JSON, (json.dumps(description, indent=2, ensure_ascii=False) + "\n").encode()
    )
    return description


def m4b_key(keys: Sequence[str], planned: Sequence[PlannedChapter], tags: M4bTags) -> str:
    cover = hashlib.sha256(tags.cover.data).hexdigest() if tags.cover else ""
    identity = {
        "making": MAKING_VERSION,
        "chapters": list(keys),
        "titles": [chapter.section.title for chapter in planned],
        "tags": [tags.title, tags.author, tags.language, cover],
        "cover_type": tags.cover.media_type if tags.cover else "",
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def describe_book(
    book: Book,
    planned: Sequence[PlannedChapter],
    made: Sequence[MadeChapter],
    engine: Engine,
    request: BookRequest,
    m4b_seconds: float,
    listener: Hearing | None = None,
) -> dict[str, object]:
    """book.json: what was made, from what, each chapter's measured ACX figures and, when
    checked, what the listener heard (word error rate, flagged sentences, DNSMOS)."""
    chapters = [
        {
            "number": chapter.section.number,
            "title": chapter.section.title,
            "file": chapter.file_name,
            "sentences": chapter.sentences,
            **found.report,
        }
        for chapter, found in zip(planned, made, strict=True)
    ]
    return {
        "title": book.title,
        "author": book.author,
        "language": book.language,
        "engine": engine.facts().get("name", ""),
        "voice": request.voice,
        "speed": request.speed,
        "m4b": {
            "file": M4B_NAME,
            "duration_seconds": round(m4b_seconds, 3),
            "chapters": len(chapters),
        },
        "meets_acx": all(bool(chapter.get("meets_acx")) for chapter in chapters),
        "check": _book_check(chapters, listener),
        "chapters": chapters,
    }


def _book_check(
    chapters: Sequence[dict[str, object]], listener: Hearing | None
) -> dict[str, object] | None:
    """The book's check in a line: passed when no chapter has a flagged sentence."""
    if listener is None:
        return None
    checks = [chapter["check"] for chapter in chapters if isinstance(chapter.get("check"), dict)]
    flagged = sum(len(check["flagged"]) for check in checks if isinstance(check, dict))
    return {
        "passed": flagged == 0,
        "sentences_flagged": flagged,
        "listener": {key: listener.facts()[key] for key in ("model_sha256", "max_wer", "attempts")},
    }


def _place(source: Path, target: Path) -> None:
    """The made chapter under the book's name for it: a hard link where the store shares the
    file system, else a copy; whole or not at all either way."""
    if target.exists() and target.samefile(source):
        return
    temporary = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    temporary.replace(target)
