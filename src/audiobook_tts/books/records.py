"""A job's records: what was asked (`JobOptions`), each chapter (`ChapterEntry`), where it
stands (`Progress`), the job itself (`Job`) and the book as planned once at submit
(`BookPlan`). Frozen values; each is turned to and from JSON here and nowhere else.

`Job.from_json` reads every job.json written so far: one of before job kinds and owners
(no `kind`, no `owner`) is a book job of nobody in particular, visible without a key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from audiobook_tts.books.making import BookProgress, PlannedChapter
from audiobook_tts.books.reading import Book, Cover, Section

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
CANCELLED, DELETED = "cancelled", "deleted"
UNFINISHED = (QUEUED, RUNNING)
BOOK_KIND = "book"


class RecordError(ValueError):
    """A job.json or plan.json that cannot be read as one."""


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{name}: expected text, got {value!r}")
    return value


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{name}: expected a whole number, got {value!r}")
    return value


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{name}: expected a number, got {value!r}")
    return float(value)


def _mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RecordError(f"{name}: expected an object, got {value!r}")
    return value


def _list(value: object, name: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise RecordError(f"{name}: expected a list, got {value!r}")
    return value


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

    def to_json(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "voice": self.voice,
            "speed": self.speed,
            "chapters": self.chapters,
            "footnotes": self.footnotes,
            "check": self.check,
        }

    @classmethod
    def from_json(cls, data: object) -> JobOptions:
        options = _mapping(data, "options")
        return cls(
            engine=_text(options.get("engine", ""), "options.engine"),
            voice=_text(options.get("voice", "alloy"), "options.voice"),
            speed=_number(options.get("speed", 1.0), "options.speed"),
            chapters=_text(options.get("chapters", ""), "options.chapters"),
            footnotes=_text(options.get("footnotes", ""), "options.footnotes"),
            check=bool(options.get("check", True)),
        )


@dataclass(frozen=True)
class ChapterEntry:
    """One chapter of a job as the API lists it."""

    number: int
    title: str
    file: str
    sentences: int

    @classmethod
    def of(cls, chapter: PlannedChapter) -> ChapterEntry:
        return cls(
            chapter.section.number, chapter.section.title, chapter.file_name, chapter.sentences
        )

    def to_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "title": self.title,
            "file": self.file,
            "sentences": self.sentences,
        }

    @classmethod
    def from_json(cls, data: object) -> ChapterEntry:
        entry = _mapping(data, "chapter")
        return cls(
            number=_int(entry.get("number"), "chapter.number"),
            title=_text(entry.get("title"), "chapter.title"),
            file=_text(entry.get("file"), "chapter.file"),
            sentences=_int(entry.get("sentences"), "chapter.sentences"),
        )


@dataclass(frozen=True)
class SkippedEntry:
    """A section of the book left out, and why (the table of contents, no text, not chosen)."""

    number: int
    title: str
    characters: int
    footnotes: bool
    skipped_because: str | None

    @classmethod
    def of(cls, section: Section) -> SkippedEntry:
        return cls(
            section.number,
            section.title,
            len(section.text),
            bool(section.notes),
            section.skipped_because,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "number": self.number,
            "title": self.title,
            "characters": self.characters,
            "footnotes": self.footnotes,
            "skipped_because": self.skipped_because,
        }

    @classmethod
    def from_json(cls, data: object) -> SkippedEntry:
        entry = _mapping(data, "skipped")
        because = entry.get("skipped_because")
        return cls(
            number=_int(entry.get("number"), "skipped.number"),
            title=_text(entry.get("title"), "skipped.title"),
            characters=_int(entry.get("characters", 0), "skipped.characters"),
            footnotes=bool(entry.get("footnotes", False)),
            skipped_because=None if because is None else _text(because, "skipped_because"),
        )


@dataclass(frozen=True)
class Progress:
    """Where a job stands, as the API shows it."""

    chapters_done: int
    chapters_total: int
    chapters_found_made: int
    sentences_done: int
    sentences_total: int
    chapter: str = ""
    seconds_left: float | None = None

    @classmethod
    def of(cls, progress: BookProgress) -> Progress:
        left = progress.seconds_left()
        return cls(
            chapters_done=progress.chapters_done,
            chapters_total=progress.chapters_total,
            chapters_found_made=progress.chapters_found_made,
            sentences_done=progress.sentences_done,
            sentences_total=progress.sentences_total,
            chapter=progress.chapter,
            seconds_left=None if left is None else round(left, 1),
        )

    @classmethod
    def waiting(cls, chapters: int, sentences: int) -> Progress:
        return cls(0, chapters, 0, 0, sentences)

    @classmethod
    def finished(cls, chapters: int, sentences: int, found_made: int) -> Progress:
        return cls(chapters, chapters, found_made, sentences, sentences, "", 0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "chapters_done": self.chapters_done,
            "chapters_total": self.chapters_total,
            "chapters_found_made": self.chapters_found_made,
            "sentences_done": self.sentences_done,
            "sentences_total": self.sentences_total,
            "chapter": self.chapter,
            "seconds_left": self.seconds_left,
        }

    @classmethod
    def from_json(cls, data: object) -> Progress:
        figures = _mapping(data, "progress")
        left = figures.get("seconds_left")
        return cls(
            chapters_done=_int(figures.get("chapters_done"), "chapters_done"),
            chapters_total=_int(figures.get("chapters_total"), "chapters_total"),
            chapters_found_made=_int(figures.get("chapters_found_made"), "chapters_found_made"),
            sentences_done=_int(figures.get("sentences_done"), "sentences_done"),
            sentences_total=_int(figures.get("sentences_total"), "sentences_total"),
            chapter=_text(figures.get("chapter", ""), "chapter"),
            seconds_left=None if left is None else _number(left, "seconds_left"),
        )


@dataclass(frozen=True)
class Job:
    """A job as kept in its job.json: what was asked, by whom, of what kind, and its state."""

    id: str
    status: str
    created: float
    source: str
    title: str
    author: str
    options: JobOptions
    chapters: tuple[ChapterEntry, ...]
    skipped: tuple[SkippedEntry, ...] = ()
    error: str | None = None
    kind: str = BOOK_KIND
    # The API key's id (its SHA-256) that made the job; "" where the service has no keys.
    owner: str = ""
    meets_acx: bool | None = None
    # Whether the listener heard every sentence say its text (None: not checked).
    check_passed: bool | None = None
    chapters_found_made: int | None = None

    @property
    def unfinished(self) -> bool:
        return self.status in UNFINISHED

    @property
    def sentences(self) -> int:
        return sum(chapter.sentences for chapter in self.chapters)

    def with_status(self, status: str, **changes: Any) -> Job:
        return replace(self, status=status, **changes)

    def to_json(self) -> dict[str, object]:
        record: dict[str, object] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "created": self.created,
            "source": self.source,
            "title": self.title,
            "author": self.author,
            "options": self.options.to_json(),
            "chapters": [chapter.to_json() for chapter in self.chapters],
            "skipped": [section.to_json() for section in self.skipped],
            "error": self.error,
            "owner": self.owner,
        }
        if self.meets_acx is not None:
            record["meets_acx"] = self.meets_acx
            record["check_passed"] = self.check_passed
        if self.chapters_found_made is not None:
            record["chapters_found_made"] = self.chapters_found_made
        return record

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: object) -> Job:
        record = _mapping(data, "job")
        error = record.get("error")
        meets = record.get("meets_acx")
        passed = record.get("check_passed")
        found = record.get("chapters_found_made")
        return cls(
            id=_text(record.get("id"), "id"),
            status=_text(record.get("status"), "status"),
            created=_number(record.get("created"), "created"),
            source=_text(record.get("source", ""), "source"),
            title=_text(record.get("title", ""), "title"),
            author=_text(record.get("author", ""), "author"),
            options=JobOptions.from_json(record.get("options", {})),
            chapters=tuple(
                ChapterEntry.from_json(c) for c in _list(record.get("chapters", []), "chapters")
            ),
            skipped=tuple(
                SkippedEntry.from_json(s) for s in _list(record.get("skipped", []), "skipped")
            ),
            error=None if error is None else _text(error, "error"),
            kind=_text(record.get("kind", BOOK_KIND), "kind"),
            owner=_text(record.get("owner", ""), "owner"),
            meets_acx=None if meets is None else bool(meets),
            check_passed=None if passed is None else bool(passed),
            chapters_found_made=None if found is None else _int(found, "chapters_found_made"),
        )

    @classmethod
    def loads(cls, data: bytes | str) -> Job:
        try:
            return cls.from_json(json.loads(data))
        except json.JSONDecodeError as error:
            raise RecordError(f"job.json: {error}") from None

    def listing(self) -> dict[str, object]:
        return {"id": self.id, "status": self.status, "title": self.title, "created": self.created}


@dataclass(frozen=True)
class BookPlan:
    """The book as read and planned at submit: its tags and each chapter's spoken text, so
    that a worker (any worker, on any machine sharing the volume) never reads it again."""

    title: str
    author: str
    language: str
    chapters: tuple[PlannedChapter, ...]
    cover: Cover | None = field(default=None, repr=False)

    @classmethod
    def of(cls, book: Book, planned: Sequence[PlannedChapter]) -> BookPlan:
        return cls(book.title, book.author, book.language, tuple(planned), book.cover)

    def book(self) -> Book:
        """The book's tags (what the M4B and book.json say of it); its sections are the plan's."""
        sections = tuple(chapter.section for chapter in self.chapters)
        return Book(self.title, self.author, self.language, sections, self.cover)

    def to_json(self) -> dict[str, object]:
        return {
            "title": self.title,
            "author": self.author,
            "language": self.language,
            "cover": None
            if self.cover is None
            else {
                "media_type": self.cover.media_type,
                "data": base64.b64encode(self.cover.data).decode(),
            },
            "chapters": [
                {
                    "number": chapter.section.number,
                    "title": chapter.section.title,
                    "text": chapter.text,
                    "sentences": chapter.sentences,
                }
                for chapter in self.chapters
            ],
        }

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: object) -> BookPlan:
        plan = _mapping(data, "plan")
        cover_data = plan.get("cover")
        cover = None
        if cover_data is not None:
            fields = _mapping(cover_data, "cover")
            cover = Cover(
                base64.b64decode(_text(fields.get("data"), "cover.data")),
                _text(fields.get("media_type"), "cover.media_type"),
            )
        chapters = []
        for item in _list(plan.get("chapters"), "chapters"):
            entry = _mapping(item, "chapter")
            section = Section(
                _int(entry.get("number"), "number"), _text(entry.get("title"), "title"), ""
            )
            chapters.append(
                PlannedChapter(
                    section,
                    _text(entry.get("text"), "text"),
                    _int(entry.get("sentences"), "sentences"),
                )
            )
        return cls(
            _text(plan.get("title"), "title"),
            _text(plan.get("author"), "author"),
            _text(plan.get("language"), "language"),
            tuple(chapters),
            cover,
        )

    @classmethod
    def loads(cls, data: bytes | str) -> BookPlan:
        try:
            return cls.from_json(json.loads(data))
        except json.JSONDecodeError as error:
            raise RecordError(f"plan.json: {error}") from None
