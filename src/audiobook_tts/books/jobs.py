"""Book jobs on a volume: submitted, made one at a time, resumed after a restart, cancelled.

    $AUDIOBOOK_TTS_DATA/jobs/<id>/job.json     what was asked, and how it stands
    $AUDIOBOOK_TTS_DATA/jobs/<id>/source/      the uploaded book (and lexicon.tsv)
    $AUDIOBOOK_TTS_DATA/jobs/<id>/files/       chapter MP3s, book.m4b, book.json
    $AUDIOBOOK_TTS_DATA/chapters/              made chapters by key, shared by every job

A job's state is its job.json, written whole each time: a container stopped in the middle of
a job finds it `running` at the next start and takes it up again; the chapters it had made
are in the chapter store and are not made again. An upload is checked in a folder of its
own (`<id>.part`), removed when refused: a refused book leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from audiobook_tts.books.archive import BookRefused
from audiobook_tts.books.making import (
    BookProgress,
    BookRequest,
    Cancelled,
    ChapterStore,
    PlannedChapter,
    make_book,
    plan_chapters,
    write_atomically,
)
from audiobook_tts.books.reading import BOOK_SUFFIXES, Book, read_book
from audiobook_tts.engines.base import Engine
from audiobook_tts.lexicon import Lexicon, LexiconError
from audiobook_tts.listening.listener import Hearing

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CANCELLED, DELETED = "cancelled", "deleted"
UNFINISHED = (QUEUED, RUNNING)
LEXICON_NAME = "lexicon.tsv"
# An upload's name decides how it is read; without a known suffix, its content type does.
SUFFIX_BY_TYPE = {
    "application/epub+zip": ".epub",
    "text/plain": ".txt",
    "text/markdown": ".md",
}


@dataclass(frozen=True)
class JobOptions:
    """What a job is asked to make (validated before the job exists)."""

    engine: str
    voice: str = "alloy"
    speed: float = 1.0
    chapters: str = ""
    footnotes: str = ""
    # Hear each chapter as it is made (where the service has a listener).
    check: bool = True


@dataclass(frozen=True)
class Upload:
    """A book (and maybe a lexicon) as it arrives: read from `stream`, named `name`."""

    stream: BinaryIO
    name: str
    content_type: str = ""
    lexicon: str | None = None


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


class BookJobs:
    """The jobs of one data folder. `submit`, `status`, `file`, `cancel` are called from the
    API; `run_next` from the one worker (in a thread, with the engine)."""

    def __init__(self, data: Path, max_book_bytes: int) -> None:
        self.data = data
        self.max_book_bytes = max_book_bytes
        self.jobs = data / "jobs"
        self.store = ChapterStore(data / "chapters")
        self.progress: dict[str, BookProgress] = {}
        self.cancelled: set[str] = set()
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    # -- the API's side --------------------------------------------------------------------

    def submit(self, upload: Upload, options: JobOptions) -> dict[str, object]:
        """Check the book and the options, then queue the job; BookRefused before any job."""
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
            record = {
                "id": job_id,
                "status": QUEUED,
                "created": time.time(),
                "source": upload.name,
                "title": book.title,
                "author": book.author,
                "options": asdict(options),
                "chapters": [_chapter_entry(chapter) for chapter in planned],
                "skipped": [
                    section.listing()
                    for section in book.sections
                    if section.number not in {chapter.section.number for chapter in planned}
                ],
                "error": None,
            }
            _write_record(staging, record)
            staging.replace(self.jobs / job_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.status(job_id) or record

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

    def status(self, job_id: str) -> dict[str, object] | None:
        folder = self._folder(job_id)
        if folder is None:
            return None
        record = _read_record(folder)
        progress = self.progress.get(job_id)
        chapters: list[dict[str, Any]] = record["chapters"]  # type: ignore[assignment]
        total = len(chapters)
        sentences = sum(chapter["sentences"] for chapter in chapters)
        if record["status"] == DONE:
            figures: dict[str, object] = {
                "chapters_done": total,
                "chapters_total": total,
                "chapters_found_made": record.get("chapters_found_made", 0),
                "sentences_done": sentences,
                "sentences_total": sentences,
                "chapter": "",
                "seconds_left": 0.0,
            }
        elif progress is not None and record["status"] == RUNNING:
            figures = progress.as_dict()
        else:
            figures = {
                "chapters_done": 0,
                "chapters_total": total,
                "chapters_found_made": 0,
                "sentences_done": 0,
                "sentences_total": sentences,
                "chapter": "",
                "seconds_left": None,
            }
        files = self.files(job_id)
        for chapter in chapters:
            chapter["made"] = chapter["file"] in files
        return {**record, "progress": figures, "files": files}

    def files(self, job_id: str) -> list[str]:
        folder = self._folder(job_id)
        if folder is None or not (folder / "files").is_dir():
            return []
        return sorted(
            path.name
            for path in (folder / "files").iterdir()
            if path.is_file() and not path.name.endswith(".part")
        )

    def file(self, job_id: str, name: str) -> Path | None:
        """A finished file of the job by its listed name (never a path from the request)."""
        if name not in self.files(job_id):
            return None
        folder = self._folder(job_id)
        return None if folder is None else folder / "files" / name

    def cancel(self, job_id: str) -> dict[str, object] | None:
        """Stop the job (between sentences, when it is running) and remove its files; the
        record stays, `cancelled` (`deleted` for a job that had ended). Chapters made stay
        in the store."""
        with self.lock:
            folder = self._folder(job_id)
            if folder is None:
                return None
            record = _read_record(folder)
            if record["status"] in UNFINISHED:
                self.cancelled.add(job_id)
            if record["status"] != RUNNING:
                ended = record["status"] not in UNFINISHED
                self._finish_cancel(folder, record, DELETED if ended else CANCELLED)
        return self.status(job_id)

    def listing(self) -> list[dict[str, object]]:
        return [
            {key: record[key] for key in ("id", "status", "title", "created")}
            for record in sorted(self._records(), key=lambda record: float(str(record["created"])))
        ]

    def _records(self) -> list[dict[str, object]]:
        """Every job's record; one that cannot be read (a disk error) is passed over."""
        records = []
        for folder in self._folders():
            try:
                records.append(_read_record(folder))
            except (OSError, ValueError):
                continue
        return records

    # -- the worker's side -----------------------------------------------------------------

    def next_job(self) -> tuple[str, str] | None:
        """The oldest unfinished job and its engine: one left `running` by a stopped service
        comes first."""
        unfinished = [record for record in self._records() if record["status"] in UNFINISHED]
        unfinished.sort(key=lambda r: (r["status"] != RUNNING, float(str(r["created"]))))
        if not unfinished:
            return None
        options = unfinished[0]["options"]
        engine = str(options.get("engine", "")) if isinstance(options, dict) else ""
        return str(unfinished[0]["id"]), engine

    def run(
        self, job_id: str, engine_for: Callable[[str], Engine], listener: Hearing | None = None
    ) -> str:
        """Make the job's book; returns its status after (`running` when the service stops)."""
        folder = self.jobs / job_id
        with self.lock:
            record = _read_record(folder)
            if record["status"] not in UNFINISHED:
                return str(record["status"])
            record["status"] = RUNNING
            _write_record(folder, record)
        options = JobOptions(**record["options"])  # type: ignore[arg-type]
        last: list[BookProgress] = []

        def on_progress(progress: BookProgress) -> None:
            self.progress[job_id] = progress
            last[:] = [progress]

        try:
            book, planned = self._plan(folder, options)
            engine = engine_for(options.engine)
            description = make_book(
                book,
                planned,
                engine,
                BookRequest(options.voice, options.speed, check=options.check),
                self.store,
                folder / "files",
                on_progress=on_progress,
                should_stop=lambda: self.stopping.is_set() or job_id in self.cancelled,
                listener=listener,
            )
        except Cancelled:
            with self.lock:
                if job_id in self.cancelled:
                    self._finish_cancel(folder, _read_record(folder))
                    return CANCELLED
            return RUNNING  # the service is stopping: taken up again at its next start
        except Exception as error:  # a failed book is reported, not raised
            self.fail(job_id, f"{type(error).__name__}: {error}")
            return FAILED
        finally:
            self.progress.pop(job_id, None)
        with self.lock:
            record = _read_record(folder)
            record["status"] = DONE
            record["meets_acx"] = description["meets_acx"]
            check = description.get("check")
            record["check_passed"] = check.get("passed") if isinstance(check, dict) else None
            # Of this run: a resumed job finds the chapters made before it stopped.
            record["chapters_found_made"] = last[0].chapters_found_made if last else 0
            _write_record(folder, record)
        return DONE

    def fail(self, job_id: str, message: str) -> None:
        with self.lock:
            folder = self.jobs / job_id
            record = _read_record(folder)
            record["status"] = FAILED
            record["error"] = message
            _write_record(folder, record)

    def _plan(self, folder: Path, options: JobOptions) -> tuple[Book, tuple[PlannedChapter, ...]]:
        source = next(path for path in (folder / "source").iterdir() if path.stem == "book")
        lexicon_file = folder / "source" / LEXICON_NAME
        lexicon = (
            Lexicon.parse(lexicon_file.read_text(encoding="utf-8"))
            if lexicon_file.exists()
            else Lexicon()
        )
        book = read_book(source)
        return book, plan_chapters(book, options.chapters, options.footnotes, lexicon)

    def _finish_cancel(
        self, folder: Path, record: dict[str, object], status: str = "cancelled"
    ) -> None:
        shutil.rmtree(folder / "files", ignore_errors=True)
        shutil.rmtree(folder / "source", ignore_errors=True)
        record["status"] = status
        _write_record(folder, record)
        self.cancelled.discard(str(record["id"]))

    def _folders(self) -> list[Path]:
        if not self.jobs.is_dir():
            return []
        return [
            folder
            for folder in self.jobs.iterdir()
            if folder.is_dir()
            and not folder.name.endswith(".part")
            and (folder / "job.json").exists()
        ]

    def _folder(self, job_id: str) -> Path | None:
        # Ids are ours (hex); anything else never names a folder.
        if not (len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)):
            return None
        folder = self.jobs / job_id
        return folder if (folder / "job.json").exists() else None


def _chapter_entry(chapter: PlannedChapter) -> dict[str, object]:
    return {
        "number": chapter.section.number,
        "title": chapter.section.title,
        "file": chapter.file_name,
        "sentences": chapter.sentences,
    }


def _read_record(folder: Path) -> dict[str, object]:
    record: dict[str, object] = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    return record


def _write_record(folder: Path, record: dict[str, object]) -> None:
    write_atomically(folder / "job.json", (json.dumps(record, indent=2) + "\n").encode())
