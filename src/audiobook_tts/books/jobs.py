"""Book jobs on a volume: the folders, their records, and what the API asks of them.

    $AUDIOBOOK_TTS_DATA/jobs/<id>/job.json     what was asked, by whom, and how it stands
    $AUDIOBOOK_TTS_DATA/jobs/<id>/plan.json    the book as read and planned at submit
    $AUDIOBOOK_TTS_DATA/jobs/<id>/source/      the uploaded book (and lexicon.tsv)
    $AUDIOBOOK_TTS_DATA/jobs/<id>/files/       chapter MP3s, book.m4b, book.json
    $AUDIOBOOK_TTS_DATA/chapters/              made chapters by key, shared by every job

A job's record is its job.json, written whole each time, under the job's lock (a thread lock
in one process, a Redis lock when workers share the volume). An upload is checked, read and
planned in a folder of its own (`<id>.part`), removed when refused or when the queue does
not take it: a refused book leaves nothing behind. `BookJobs` is the API's side (submit,
status, files, cancel, listing), each call for one owner: a job of another key is not there.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from audiobook_tts.books.archive import BookRefused
from audiobook_tts.books.making import ChapterStore, plan_chapters, write_atomically
from audiobook_tts.books.reading import BOOK_SUFFIXES, read_book
from audiobook_tts.books.records import (
    BOOK_KIND,
    CANCELLED,
    DELETED,
    DONE,
    QUEUED,
    RUNNING,
    BookPlan,
    ChapterEntry,
    Job,
    JobOptions,
    Progress,
    RecordError,
    SkippedEntry,
)
from audiobook_tts.lexicon import Lexicon, LexiconError

LEXICON_NAME = "lexicon.tsv"
# An upload's name decides how it is read; without a known suffix, its content type does.
SUFFIX_BY_TYPE = {
    "application/epub+zip": ".epub",
    "text/plain": ".txt",
    "text/markdown": ".md",
}
Locker = Callable[[str], AbstractContextManager[object]]


@dataclass(frozen=True)
class Upload:
    """A book (and maybe a lexicon) as it arrives: read from `stream`, named `name`."""

    stream: BinaryIO
    name: str
    content_type: str = ""
    lexicon: str | None = None


class QueueUnavailable(Exception):
    """The queue did not take the job (Redis down): the submit is answered 503, nothing kept."""


def book_suffix(name: str, content_type: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in BOOK_SUFFIXES:
        return suffix
    by_type = SUFFIX_BY_TYPE.get(content_type.split(";", 1)[0].strip().lower())
    if by_type is None:
        raise BookRefused(
            f"not an EPUB: {name or 'the upload'} is neither {', '.join(BOOK_SUFFIXES)} "
            f"nor of a book's content type",
            "not_epub",
        )
    return by_type


def thread_locker() -> Locker:
    """One lock for every job of this process: enough where one process holds the volume."""
    lock = threading.Lock()

    @contextmanager
    def locked(_: str) -> Iterator[None]:
        with lock:
            yield

    return locked


class JobStore:
    """The job folders of one data volume and the chapter store beside them."""

    def __init__(self, data: Path, max_book_bytes: int, locker: Locker | None = None) -> None:
        self.data = data
        self.max_book_bytes = max_book_bytes
        self.jobs = data / "jobs"
        self.chapters = ChapterStore(data / "chapters")
        self.locked = locker or thread_locker()

    # -- submit ----------------------------------------------------------------------------

    def submit(
        self,
        upload: Upload,
        options: JobOptions,
        owner: str = "",
        accept: Callable[[Job], None] = lambda _: None,
    ) -> Job:
        """Check, read and plan the book (BookRefused before any job), write the job, and
        hand it to `accept` (the queue) before it is in place; whatever fails, nothing stays."""
        suffix = book_suffix(upload.name, upload.content_type)
        job_id = uuid.uuid4().hex
        staging = self.jobs / f"{job_id}.part"
        try:
            (staging / "source").mkdir(parents=True)
            source = staging / "source" / f"book{suffix}"
            self._receive(upload.stream, source)
            lexicon = Lexicon()
            if upload.lexicon is not None:
                try:
                    lexicon = Lexicon.parse(upload.lexicon)
                except LexiconError as error:
                    raise BookRefused(f"lexicon: {error}", "lexicon") from None
                (staging / "source" / LEXICON_NAME).write_text(upload.lexicon, encoding="utf-8")
            book = read_book(source)
            planned = plan_chapters(book, options.chapters, options.footnotes, lexicon)
            chosen = {chapter.section.number for chapter in planned}
            job = Job(
                id=job_id,
                status=QUEUED,
                created=time.time(),
                source=upload.name,
                title=book.title,
                author=book.author,
                options=options,
                chapters=tuple(ChapterEntry.of(chapter) for chapter in planned),
                skipped=tuple(
                    SkippedEntry.of(section)
                    for section in book.sections
                    if section.number not in chosen
                ),
                kind=BOOK_KIND,
                owner=owner,
            )
            write_atomically(staging / "plan.json", BookPlan.of(book, planned).dumps())
            write_atomically(staging / "job.json", job.dumps())
            staging.replace(self.jobs / job_id)
            try:
                accept(job)
            except BaseException:
                shutil.rmtree(self.jobs / job_id, ignore_errors=True)
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return job

    def _receive(self, stream: BinaryIO, target: Path) -> None:
        """The upload to `target`, refused as soon as it passes the size limit."""
        size = 0
        with target.open("wb") as written:
            while block := stream.read(1024 * 1024):
                size += len(block)
                if size > self.max_book_bytes:
                    raise BookRefused(
                        f"the book is over {self.max_book_bytes} bytes, the most accepted "
                        f"(AUDIOBOOK_TTS_MAX_BOOK_BYTES)",
                        "size",
                    )
                written.write(block)
        if size == 0:
            raise BookRefused("the upload is empty", "not_epub")

    # -- records ---------------------------------------------------------------------------

    def read(self, job_id: str) -> Job | None:
        folder = self.folder(job_id)
        if folder is None:
            return None
        try:
            return Job.loads((folder / "job.json").read_bytes())
        except (OSError, RecordError):
            return None

    def write(self, job: Job) -> None:
        write_atomically(self.jobs / job.id / "job.json", job.dumps())

    def update(self, job_id: str, change: Callable[[Job], Job | None]) -> Job | None:
        """Read, change and write the record under the job's lock; `change` may return None
        to leave it as it is. The record after (None for no such job)."""
        with self.locked(job_id):
            job = self.read(job_id)
            if job is None:
                return None
            changed = change(job)
            if changed is not None and changed != job:
                self.write(changed)
                return changed
            return job

    def every(self) -> list[Job]:
        """Every job, oldest first; one that cannot be read (a disk error) is passed over."""
        if not self.jobs.is_dir():
            return []
        found = [
            self.read(folder.name)
            for folder in self.jobs.iterdir()
            if folder.is_dir() and not folder.name.endswith(".part")
        ]
        return sorted((job for job in found if job is not None), key=lambda job: job.created)

    def plan(self, job: Job) -> BookPlan:
        """The book as planned at submit; a job of before plan.json is read and planned now."""
        folder = self.jobs / job.id
        try:
            return BookPlan.loads((folder / "plan.json").read_bytes())
        except FileNotFoundError:
            pass
        source = next(path for path in (folder / "source").iterdir() if path.stem == "book")
        lexicon_file = folder / "source" / LEXICON_NAME
        lexicon = (
            Lexicon.parse(lexicon_file.read_text(encoding="utf-8"))
            if lexicon_file.exists()
            else Lexicon()
        )
        book = read_book(source)
        planned = plan_chapters(book, job.options.chapters, job.options.footnotes, lexicon)
        return BookPlan.of(book, planned)

    def output(self, job_id: str) -> Path:
        return self.jobs / job_id / "files"

    def files(self, job_id: str) -> list[str]:
        folder = self.folder(job_id)
        if folder is None or not (folder / "files").is_dir():
            return []
        return sorted(
            path.name
            for path in (folder / "files").iterdir()
            if path.is_file() and not path.name.endswith(".part")
        )

    def end_cancelled(self, job: Job, status: str = CANCELLED) -> Job:
        """The files and the source gone, the record kept: `cancelled`, or `deleted` for a
        job that had ended. Chapters made stay in the store."""
        folder = self.jobs / job.id
        shutil.rmtree(folder / "files", ignore_errors=True)
        shutil.rmtree(folder / "source", ignore_errors=True)
        (folder / "plan.json").unlink(missing_ok=True)
        return job.with_status(status)

    def folder(self, job_id: str) -> Path | None:
        # Ids are ours (hex); anything else never names a folder.
        if not (len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)):
            return None
        folder = self.jobs / job_id
        return folder if (folder / "job.json").exists() else None


class JobQueue(Protocol):
    """Where submitted jobs go and where their running state is kept: this process (the
    embedded worker) or Redis (workers anywhere)."""

    def accept(self, job: Job) -> None:
        """Take a written job (QueueUnavailable when it cannot)."""

    def request_cancel(self, job_id: str) -> None:
        """Tell the job's running work to stop at its next sentence."""

    def progress(self, job: Job) -> Progress | None:
        """A running job's progress, when its work has reported some."""


class BookJobs:
    """The API's side: submit, status, files, cancel, listing; each for one owner (the key's
    id, "" on a service without keys, which sees every job)."""

    def __init__(self, store: JobStore, queue: JobQueue) -> None:
        self.store = store
        self.queue = queue

    def submit(self, upload: Upload, options: JobOptions, owner: str = "") -> dict[str, object]:
        job = self.store.submit(upload, options, owner, self.queue.accept)
        return self.status(job.id, owner) or self.view(job)

    def job(self, job_id: str, owner: str = "") -> Job | None:
        job = self.store.read(job_id)
        if job is None or (owner and job.owner != owner):
            return None
        return job

    def status(self, job_id: str, owner: str = "") -> dict[str, object] | None:
        job = self.job(job_id, owner)
        return None if job is None else self.view(job)

    def view(self, job: Job) -> dict[str, object]:
        """The job as the API shows it: its record, progress and files."""
        total = len(job.chapters)
        if job.status == DONE:
            progress = Progress.finished(total, job.sentences, job.chapters_found_made or 0)
        else:
            running = self.queue.progress(job) if job.status == RUNNING else None
            progress = running or Progress.waiting(total, job.sentences)
        files = self.store.files(job.id)
        record = job.to_json()
        record.pop("owner", None)
        record["chapters"] = [
            {**chapter.to_json(), "made": chapter.file in files} for chapter in job.chapters
        ]
        return {**record, "progress": progress.to_json(), "files": files}

    def file(self, job_id: str, name: str, owner: str = "") -> Path | None:
        """A finished file of the job by its listed name (never a path from the request)."""
        if self.job(job_id, owner) is None or name not in self.store.files(job_id):
            return None
        return self.store.output(job_id) / name

    def files(self, job_id: str, owner: str = "") -> list[str]:
        return [] if self.job(job_id, owner) is None else self.store.files(job_id)

    def cancel(self, job_id: str, owner: str = "") -> dict[str, object] | None:
        """Stop the job (between sentences, when it is running) and remove its files; the
        record stays, `cancelled` (`deleted` for a job that had ended)."""
        if self.job(job_id, owner) is None:
            return None

        def cancel(job: Job) -> Job | None:
            if job.status == RUNNING:
                self.queue.request_cancel(job.id)  # its worker ends it at the next sentence
                return None
            return self.store.end_cancelled(job, CANCELLED if job.unfinished else DELETED)

        self.store.update(job_id, cancel)
        return self.status(job_id, owner)

    def listing(self, owner: str = "") -> list[dict[str, object]]:
        return [job.listing() for job in self.store.every() if not owner or job.owner == owner]
