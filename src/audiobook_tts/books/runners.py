"""What each kind of job does, for whichever worker runs it: the whole job in one process
(the embedded worker), or in pieces that many workers share and a join once the last is done
(the Redis queue). A new kind of job is a new runner in `RUNNERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from audiobook_tts.books.jobs import JobStore
from audiobook_tts.books.making import (
    BookProgress,
    BookRequest,
    chapter_key,
    join_book,
    make_book,
    make_chapter,
)
from audiobook_tts.books.records import BOOK_KIND, DONE, Job
from audiobook_tts.engines.base import Engine
from audiobook_tts.listening.listener import Hearing


@dataclass(frozen=True)
class Work:
    """What a runner is given: the volume, the engine, and how to report and when to stop."""

    store: JobStore
    engine: Engine
    on_progress: Callable[[BookProgress], None] = lambda _: None
    should_stop: Callable[[], bool] = lambda: False
    # A piece's sentences as they are spoken: (done, of the piece).
    on_sentences: Callable[[int, int], None] = lambda _done, _total: None
    # Hears each chapter as it is made (None: no listener here).
    listener: Hearing | None = None


class JobRunner(Protocol):
    def run(self, job: Job, work: Work) -> Job:
        """The whole job here; its record once done (Cancelled when told to stop)."""

    def pieces(self, job: Job, store: JobStore) -> int:
        """How many pieces the job is shared out in."""

    def piece(self, job: Job, index: int, work: Work) -> bool:
        """One piece made (True: found made already)."""

    def join(self, job: Job, work: Work) -> Job:
        """Every piece made: the job's files, and its record once done."""


class BookRunner:
    """A book: chapters made and kept by key, then the M4B and book.json."""

    def run(self, job: Job, work: Work) -> Job:
        plan = work.store.plan(job)
        last: list[BookProgress] = []

        def on_progress(progress: BookProgress) -> None:
            last[:] = [progress]
            work.on_progress(progress)

        description = make_book(
            plan.book(),
            plan.chapters,
            work.engine,
            _request(job),
            work.store.chapters,
            work.store.output(job.id),
            on_progress=on_progress,
            should_stop=work.should_stop,
            listener=work.listener,
        )
        # Of this run: a resumed job finds the chapters made before it stopped.
        found = last[0].chapters_found_made if last else 0
        return _done(job, description, chapters_found_made=found)

    def pieces(self, job: Job, store: JobStore) -> int:
        return len(job.chapters)

    def piece(self, job: Job, index: int, work: Work) -> bool:
        chapter = work.store.plan(job).chapters[index]
        _, found = make_chapter(
            chapter,
            work.engine,
            _request(job),
            work.store.chapters,
            work.store.output(job.id),
            on_sentences=work.on_sentences,
            listener=work.listener,
        )
        return found

    def join(self, job: Job, work: Work) -> Job:
        plan = work.store.plan(job)
        request = _request(job)
        listening = work.listener if request.check else None
        keys = [
            chapter_key(
                chapter.text, work.engine, request.voice, request.speed, request.seed, listening
            )
            for chapter in plan.chapters
        ]
        made = []
        for chapter, key in zip(plan.chapters, keys, strict=True):
            found = work.store.chapters.get(key)
            if found is None:
                raise RuntimeError(f"chapter {chapter.section.number} is not in the store")
            made.append(found)
        description = join_book(
            plan.book(),
            plan.chapters,
            keys,
            made,
            work.engine,
            request,
            work.store.chapters,
            work.store.output(job.id),
            listening,
        )
        return _done(job, description)


def _request(job: Job) -> BookRequest:
    return BookRequest(job.options.voice, job.options.speed, check=job.options.check)


def _done(job: Job, description: dict[str, object], **changes: object) -> Job:
    """The job's record once its book.json is written."""
    check = description.get("check")
    return job.with_status(
        DONE,
        meets_acx=bool(description["meets_acx"]),
        check_passed=check.get("passed") if isinstance(check, dict) else None,
        **changes,
    )


RUNNERS: dict[str, JobRunner] = {BOOK_KIND: BookRunner()}


def runner_for(job: Job) -> JobRunner:
    runner = RUNNERS.get(job.kind)
    if runner is None:
        raise ValueError(f"no runner for jobs of kind {job.kind!r}; kinds: {', '.join(RUNNERS)}")
    return runner
