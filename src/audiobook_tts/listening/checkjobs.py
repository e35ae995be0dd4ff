"""Checks as jobs on the data volume: a book and its audio in, check.json out.

    $AUDIOBOOK_TTS_DATA/checks/<id>/check.json   what was asked, and how it stands
    $AUDIOBOOK_TTS_DATA/checks/<id>/source/      the book (and lexicon.tsv)
    $AUDIOBOOK_TTS_DATA/checks/<id>/audio/       the audio files, numbered in their order
    $AUDIOBOOK_TTS_DATA/checks/<id>/files/       report.json once heard

Everything that can be refused is refused before the job exists (the book unreadable, audio
FFmpeg cannot read, silent, over the length limit, or not one recording per chapter), in a
folder of its own (`<id>.part`) removed on refusal. The worker (`work`) hears one check at a
time in its own thread; a check left `running` by a stopped service is heard again.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from audiobook_tts.books.archive import BookRefused
from audiobook_tts.books.making import PlannedChapter, plan_chapters, write_atomically
from audiobook_tts.books.reading import read_book
from audiobook_tts.lexicon import Lexicon, LexiconError
from audiobook_tts.listening.bookcheck import ChapterAudit, check_recordings, pair_up
from audiobook_tts.listening.listener import Hearing
from audiobook_tts.listening.recordings import RecordingRefused, read_recordings

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
REPORT = "report.json"
IDLE_SECONDS = 0.5


@dataclass(frozen=True)
class CheckOptions:
    max_wer: float
    chapters: str = ""
    footnotes: str = ""


@dataclass(frozen=True)
class Incoming:
    """An uploaded file as it arrives."""

    stream: BinaryIO
    name: str


class CheckJobs:
    """The checks of one data folder: `submit`, `status`, `report`, `cancel` for the API; `work`
    for the one worker."""

    def __init__(self, data: Path, max_bytes: int, max_seconds: float) -> None:
        self.folder = data / "checks"
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.stopping = threading.Event()
        self.cancelled: set[str] = set()
        self.lock = threading.Lock()

    def submit(
        self,
        book: Incoming,
        audio: Sequence[Incoming],
        options: CheckOptions,
        lexicon: str | None = None,
        owner: str = "",
    ) -> dict[str, object]:
        """Check the inputs, then queue the job; BookRefused or RecordingRefused before any job."""
        if not audio:
            raise RecordingRefused("audio: give the audio to check, a file per chapter", "missing")
        check_id = uuid.uuid4().hex
        staging = self.folder / f"{check_id}.part"
        try:
            (staging / "source").mkdir(parents=True)
            (staging / "audio").mkdir()
            source = staging / "source" / f"book{Path(book.name).suffix.lower() or '.txt'}"
            budget = self._receive(book.stream, source, self.max_bytes)
            paths = []
            for number, item in enumerate(audio, start=1):
                path = staging / "audio" / f"{number:03d}{Path(item.name).suffix.lower()}"
                budget = self._receive(item.stream, path, budget)
                paths.append(path)
            planned = self._plan(staging, options, lexicon)
            recordings = read_recordings(paths, self.max_seconds)
            pair_up(planned, recordings)
            record = {
                "id": check_id,
                "status": QUEUED,
                "created": time.time(),
                "book": book.name,
                "audio": [item.name for item in audio],
                "options": asdict(options),
                "chapters": [
                    {"number": chapter.section.number, "title": chapter.section.title}
                    for chapter in planned
                ],
                "progress": {"chapters_done": 0, "chapters_total": len(planned)},
                "passed": None,
                "error": None,
                # The API key's id that made it ("" on an open service): seen by that key alone.
                "owner": owner,
            }
            _write(staging, record)
            staging.replace(self.folder / check_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return _shown(record)

    def _receive(self, stream: BinaryIO, target: Path, budget: int) -> int:
        """The upload to `target`; refused once the uploads together pass the size limit."""
        with target.open("wb") as written:
            while block := stream.read(1024 * 1024):
                budget -= len(block)
                if budget < 0:
                    raise BookRefused(
                        f"the book and audio are over {self.max_bytes} bytes together, the most "
                        f"accepted (AUDIOBOOK_TTS_MAX_BOOK_BYTES)",
                        "size",
                    )
                written.write(block)
        return budget

    def _plan(
        self, folder: Path, options: CheckOptions, lexicon: str | None = None
    ) -> tuple[PlannedChapter, ...]:
        source = next((folder / "source").glob("book.*"))
        words = Lexicon()
        stored = folder / "source" / "lexicon.tsv"
        if lexicon is not None:
            try:
                words = Lexicon.parse(lexicon)
            except LexiconError as error:
                raise BookRefused(f"lexicon: {error}", "lexicon") from None
            stored.write_text(lexicon, encoding="utf-8")
        elif stored.exists():
            words = Lexicon.parse(stored.read_text(encoding="utf-8"))
        return plan_chapters(read_book(source), options.chapters, options.footnotes, words)

    def status(self, check_id: str, owner: str = "") -> dict[str, object] | None:
        folder = self._folder(check_id, owner)
        return None if folder is None else _shown(_read(folder))

    def report(self, check_id: str, owner: str = "") -> Path | None:
        folder = self._folder(check_id, owner)
        path = None if folder is None else folder / "files" / REPORT
        return path if path is not None and path.is_file() else None

    def cancel(self, check_id: str, owner: str = "") -> dict[str, object] | None:
        """Stop it (between chapters) and remove its uploads and report; the record stays."""
        with self.lock:
            folder = self._folder(check_id, owner)
            if folder is None:
                return None
            record = _read(folder)
            if record["status"] in (QUEUED, RUNNING):
                self.cancelled.add(check_id)
            record["status"] = CANCELLED if record["status"] != DONE else "deleted"
            _write(folder, record)
            for part in ("audio", "source", "files"):
                shutil.rmtree(folder / part, ignore_errors=True)
            return _shown(record)

    def listing(self, owner: str = "") -> list[dict[str, object]]:
        """Every check (of `owner` alone, on a service with keys), oldest first."""
        if not self.folder.is_dir():
            return []
        records = [_read(path) for path in self.folder.iterdir() if (path / "check.json").exists()]
        mine = [_shown(record) for record in records if not owner or record.get("owner") == owner]
        return sorted(mine, key=lambda record: float(str(record.get("created", 0))))

    def _folder(self, check_id: str, owner: str = "") -> Path | None:
        """The check's folder; None for no such check, or one of another key (404 alike)."""
        if not check_id.isalnum():
            return None
        folder = self.folder / check_id
        if not (folder / "check.json").is_file():
            return None
        return folder if not owner or _read(folder).get("owner") == owner else None

    # -- the worker's side -----------------------------------------------------------------

    def next_check(self) -> str | None:
        """The check to hear next: one left running by a stopped service, else the oldest."""
        waiting = [record for record in self.listing() if record["status"] in (QUEUED, RUNNING)]
        waiting.sort(key=lambda record: record["status"] != RUNNING)
        return str(waiting[0]["id"]) if waiting else None

    def work(self, listener: Hearing) -> None:
        """Hear every check in turn until the service stops (the one loop that runs checks)."""
        while not self.stopping.is_set():
            check_id = self.next_check()
            if check_id is None:
                self.stopping.wait(IDLE_SECONDS)
                continue
            self.run(check_id, listener)

    def run(self, check_id: str, listener: Hearing) -> str:
        folder = self.folder / check_id
        with self.lock:
            record = _read(folder)
            record["status"] = RUNNING
            _write(folder, record)
        options = CheckOptions(**record["options"])  # type: ignore[arg-type]

        def heard(audit: ChapterAudit) -> None:
            if self.stopping.is_set() or check_id in self.cancelled:
                raise _Stopped
            with self.lock:
                current = _read(folder)
                progress = current["progress"]
                if isinstance(progress, dict):
                    progress["chapters_done"] = int(progress["chapters_done"]) + 1
                    progress["chapter"] = audit.title
                _write(folder, current)

        try:
            planned = self._plan(folder, options)
            paths = sorted((folder / "audio").iterdir())
            recordings = read_recordings(paths, self.max_seconds)
            result = check_recordings(planned, recordings, listener, options.max_wer, heard)
        except _Stopped:
            return CANCELLED if check_id in self.cancelled else RUNNING
        except Exception as error:  # a failed check is reported, never raised
            with self.lock:
                record = _read(folder)
                record["status"], record["error"] = FAILED, f"{type(error).__name__}: {error}"
                _write(folder, record)
            return FAILED
        (folder / "files").mkdir(exist_ok=True)
        report = json.dumps(result.as_dict(), indent=2, ensure_ascii=False) + "\n"
        write_atomically(folder / "files" / REPORT, report.encode())
        with self.lock:
            record = _read(folder)
            if record["status"] == RUNNING:
                record["status"], record["passed"] = DONE, result.passed
                record["says_the_book"] = result.says_the_book
                record["files"] = [REPORT]
                _write(folder, record)
        return str(record["status"])


class _Stopped(Exception):
    pass


def _shown(record: dict[str, object]) -> dict[str, object]:
    """The record as the API shows it: the owner's key id stays on the volume."""
    return {key: value for key, value in record.items() if key != "owner"}


def _read(folder: Path) -> dict[str, object]:
    record: dict[str, object] = json.loads((folder / "check.json").read_text())
    return record


def _write(folder: Path, record: dict[str, object]) -> None:
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    write_atomically(folder / "check.json", text.encode())
