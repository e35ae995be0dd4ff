"""Whole books without a container: reading, refusals, chapters kept by key, the M4B, jobs.

The engine is a stand-in tone (the real engines read books in tests/tts); the EPUB library,
PyAV and the mastering are the real ones.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from audiobook_tts.app import create_app
from audiobook_tts.books.archive import ArchiveLimits, BookRefused
from audiobook_tts.books.making import (
    BookRequest,
    Cancelled,
    ChapterStore,
    Finishing,
    make_book,
    plan_chapters,
)
from audiobook_tts.books.reading import NO_TEXT, TABLE_OF_CONTENTS, read_book
from audiobook_tts.cli import main
from audiobook_tts.config import ServiceSettings, book_engine
from audiobook_tts.lexicon import Lexicon
from tests import bookfiles
from tests.unit.audiobook_tts.conftest import ToneEngine

# Seconds of tone a character: short chapters, since books are mastered and encoded whole.
BOOK_TONE = 0.03


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def epub_path(tmp_path: Path) -> Path:
    return write(tmp_path / "tales.epub", bookfiles.epub())


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nav", [True, False], ids=["epub3-nav", "epub2-ncx"])
def test_an_epub_is_read_from_its_navigation_and_metadata(tmp_path: Path, nav: bool) -> None:
    book = read_book(write(tmp_path / "b.epub", bookfiles.epub(nav=nav)))
    assert (book.title, book.author, book.language) == (bookfiles.TITLE, bookfiles.AUTHOR, "en")
    assert [s.title for s in book.sections] == ["Contents", *(t for t, _ in bookfiles.CHAPTERS)]
    assert book.sections[0].skipped_because == TABLE_OF_CONTENTS
    assert [s.number for s in book.select()] == [2, 3, 4]
    assert book.cover is not None
    assert (book.cover.media_type, book.cover.data) == ("image/png", bookfiles.png())
    first = book.sections[1]
    assert first.text == bookfiles.CHAPTERS[0][1]  # Unicode intact, paragraphs kept
    assert first.spoken().startswith("The Café\n\nZoë walked")  # the title once, then prose


def test_a_footnote_marker_is_dropped_and_its_note_read_only_when_asked(epub_path: Path) -> None:
    section = read_book(epub_path).sections[2]
    assert section.text.endswith("in her notebook.")
    assert bookfiles.FOOTNOTE not in section.spoken()
    assert section.spoken(footnotes=True).endswith(f"Notes.\n\n{bookfiles.FOOTNOTE}")


def test_markdown_chapters_are_its_level_one_headings(tmp_path: Path) -> None:
    source = "Before.\n\n# One\n\nHello *there*.\n\n## Part\n\nMore.\n\n# Two\n\n# Three\n\nEnd.\n"
    book = read_book(write(tmp_path / "my_book.md", source.encode()))
    assert book.title == "my book"
    assert [(s.title, s.text, s.skipped_because) for s in book.sections] == [
        ("my book", "Before.", None),
        ("One", "Hello there.\n\nPart\n\nMore.", None),
        ("Two", "", NO_TEXT),
        ("Three", "End.", None),
    ]


def test_plain_text_is_one_chapter(tmp_path: Path) -> None:
    book = read_book(write(tmp_path / "story.txt", b"Once.\n\nTwice."))
    assert [(s.title, s.text) for s in book.sections] == [("story", "Once.\n\nTwice.")]


def test_footnotes_are_read_for_the_chapters_chosen(epub_path: Path) -> None:
    book = read_book(epub_path)
    spoken = {c.section.number: c.text for c in plan_chapters(book, footnotes="3")}
    assert spoken[3].endswith(bookfiles.FOOTNOTE)
    assert all(bookfiles.FOOTNOTE not in c.text for c in plan_chapters(book, footnotes="2,4"))
    assert plan_chapters(book, footnotes="all")[1].text.endswith(bookfiles.FOOTNOTE)
    with pytest.raises(BookRefused, match="footnotes: '9' is outside") as refused:
        plan_chapters(book, footnotes="9")
    assert refused.value.reason == "footnotes"


def test_chapters_are_chosen_by_number(epub_path: Path) -> None:
    book = read_book(epub_path)
    assert [s.number for s in book.select("3-4")] == [3, 4]
    assert [s.number for s in book.select("4, 2")] == [2, 4]
    assert [s.number for s in book.select("1")] == [1]  # a skipped section, chosen


@pytest.mark.parametrize(
    ("spec", "words"),
    [("0", "outside"), ("5", "outside"), ("4-2", "backwards"), ("two", "not a number")],
)
def test_a_bad_choice_of_chapters_is_refused(epub_path: Path, spec: str, words: str) -> None:
    with pytest.raises(BookRefused, match=words) as refused:
        read_book(epub_path).select(spec)
    assert refused.value.reason == "chapters"


def test_a_chosen_chapter_without_text_is_refused(tmp_path: Path) -> None:
    book = read_book(write(tmp_path / "b.md", b"# One\n\nText.\n\n# Empty\n"))
    assert [s.number for s in book.select()] == [1]
    with pytest.raises(BookRefused, match=r"chapter 2 \('Empty'\) has no text"):
        book.select("2")
    with pytest.raises(BookRefused, match="no chapter with text"):
        read_book(write(tmp_path / "c.md", b"# Only a heading\n")).select()


def not_an_epub_zip() -> bytes:
    return bookfiles.zip_of({"a.txt": b"a"}, mimetype=b"application/zip")


@pytest.mark.parametrize(
    ("data", "reason", "words"),
    [
        (lambda: b"plain words, no ZIP", "not_epub", "not a ZIP"),
        (not_an_epub_zip, "not_epub", "no `mimetype`"),
        (bookfiles.drm_epub, "drm", "DRM-protected"),
        (bookfiles.escaping_epub, "path_escape", "outside the book's folder"),
        (bookfiles.zip_bomb, "zip_bomb", "ZIP bomb"),
        (lambda: bookfiles.many_entries(10_001), "zip_bomb", "at most 10000"),
    ],
    ids=["not-zip", "zip-not-epub", "drm", "path-escape", "ratio", "entries"],
)
def test_bad_books_are_refused_before_reading(
    tmp_path: Path, data: object, reason: str, words: str
) -> None:
    path = write(tmp_path / "bad.epub", data())  # type: ignore[operator]
    with pytest.raises(BookRefused, match=words) as refused:
        read_book(path)
    assert refused.value.reason == reason


def test_the_unpacked_size_has_a_limit(epub_path: Path) -> None:
    with pytest.raises(BookRefused, match="unpacks to"):
        read_book(epub_path, ArchiveLimits(max_unpacked_bytes=1000))


def test_other_files_and_other_encodings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BookRefused, match=r"a book is \.epub, \.txt, \.md"):
        read_book(write(tmp_path / "b.pdf", b"%PDF-1.7"))
    with pytest.raises(BookRefused, match="not UTF-8"):
        read_book(write(tmp_path / "b.txt", "café".encode("latin-1")))


# -- making ----------------------------------------------------------------------------------


def test_a_book_becomes_acx_chapters_an_m4b_and_book_json(epub_path: Path, tmp_path: Path) -> None:
    book = read_book(epub_path)
    engine = ToneEngine(BOOK_TONE)
    out = tmp_path / "out"
    description = make_book(
        book, plan_chapters(book), engine, BookRequest("alloy"), ChapterStore(tmp_path / "s"), out
    )
    names = ["chapter-02.mp3", "chapter-03.mp3", "chapter-04.mp3"]
    assert sorted(path.name for path in out.iterdir()) == ["book.json", "book.m4b", *names]
    assert json.loads((out / "book.json").read_text()) == description
    assert description["meets_acx"] is True
    for chapter, name in zip(description["chapters"], names, strict=True):  # type: ignore[call-overload]
        assert chapter["file"] == name
        assert -23 <= chapter["rms_db"] <= -18 and chapter["peak_dbfs"] <= -3
        assert chapter["noise_floor_db"] <= -60
    with av.open(str(out / "book.m4b")) as m4b:
        chapters = m4b.chapters()
        assert [c["metadata"]["title"] for c in chapters] == [t for t, _ in bookfiles.CHAPTERS]
        assert m4b.metadata["title"] == bookfiles.TITLE
        assert m4b.metadata["artist"] == bookfiles.AUTHOR
        assert m4b.streams.audio[0].codec_context.name == "aac"
        assert any(
            stream.disposition & av.stream.Disposition.attached_pic for stream in m4b.streams.video
        )
        # The M4B is its chapters' AAC joined, not encoded again: each chapter spans exactly
        # its audio (a whole number of AAC frames), so the markers fall where the MP3s end.
        described = cast(list[dict[str, float]], description["chapters"])
        spans = [c["duration_seconds"] for c in described]
        starts = [float(c["start"] * (c["time_base"] or 0)) for c in chapters]
        ends = [float(c["end"] * (c["time_base"] or 0)) for c in chapters]
        assert ends == pytest.approx(np.cumsum(spans).tolist(), abs=0.002)
        assert starts == pytest.approx([0.0, *ends[:-1]], abs=0.002)
        # A valid file: every packet decodes, to the samples book.json gives it, no more.
        decoded = sum(frame.samples for frame in m4b.decode(audio=0))
        m4b_seconds = cast(dict[str, float], description["m4b"])["duration_seconds"]
        assert decoded / 44100 == pytest.approx(m4b_seconds, abs=0.0005)
        assert m4b_seconds == pytest.approx(sum(spans), abs=0.002)


def test_a_chapter_made_once_is_never_made_again(epub_path: Path, tmp_path: Path) -> None:
    book = read_book(epub_path)
    store = ChapterStore(tmp_path / "store")
    first, second = ToneEngine(BOOK_TONE), ToneEngine(BOOK_TONE)
    make_book(book, plan_chapters(book), first, BookRequest("alloy"), store, tmp_path / "a")
    make_book(book, plan_chapters(book), second, BookRequest("alloy"), store, tmp_path / "b")
    assert len(first.said) == 10 and second.said == []
    assert len(list((tmp_path / "store").glob("*.m4b"))) == 1  # the M4B is kept, not remade
    for name in ("chapter-02.mp3", "book.m4b", "book.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # Another voice, speed or lexicon is another chapter.
    third = ToneEngine(BOOK_TONE)
    lexicon = Lexicon.parse("café\tcaff ay\n")
    make_book(
        book,
        plan_chapters(book, "2", lexicon=lexicon),
        third,
        BookRequest("alloy"),
        store,
        tmp_path / "c",
    )
    assert any("caff ay" in said for said in third.said)


def test_a_stopped_book_goes_on_where_it_stopped(epub_path: Path, tmp_path: Path) -> None:
    book = read_book(epub_path)
    store = ChapterStore(tmp_path / "store")
    stopped = ToneEngine(BOOK_TONE)
    with pytest.raises(Cancelled):
        make_book(
            book,
            plan_chapters(book),
            stopped,
            BookRequest("alloy"),
            store,
            tmp_path / "out",
            should_stop=lambda: len(stopped.said) >= 5,  # in the second chapter
        )
    assert len(stopped.said) == 5
    resumed = ToneEngine(BOOK_TONE)
    make_book(book, plan_chapters(book), resumed, BookRequest("alloy"), store, tmp_path / "out")
    assert len(resumed.said) == 6  # chapters 3 and 4 only
    whole = ToneEngine(BOOK_TONE)
    make_book(
        book,
        plan_chapters(book),
        whole,
        BookRequest("alloy"),
        ChapterStore(tmp_path / "s2"),
        tmp_path / "whole",
    )
    for name in ("chapter-02.mp3", "chapter-03.mp3", "chapter-04.mp3", "book.m4b", "book.json"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_books_default_to_the_best_engine_loaded() -> None:
    assert book_engine(("espeak", "piper", "csm")) == "csm"
    assert book_engine(("espeak", "piper")) == "piper"
    assert book_engine(("espeak",)) == "espeak"


# -- the command line ------------------------------------------------------------------------


def test_the_command_line_makes_a_book_and_lists_chapters(
    epub_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "audiobook_tts.cli.load_engine", lambda name, settings: ToneEngine(BOOK_TONE)
    )
    assert main(["book", str(epub_path), "--list"]) == 0
    assert "(skipped: table of contents)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert (
        main(["book", str(epub_path), "-o", str(out), "--chapters", "3-4", "--engine", "espeak"])
        == 0
    )
    assert sorted(p.name for p in out.glob("*.mp3")) == ["chapter-03.mp3", "chapter-04.mp3"]
    assert main(["book", str(epub_path), "-o", str(out), "--chapters", "9"]) == 2
    assert "outside the book's chapters 1-4" in capsys.readouterr().err


# -- jobs through the API --------------------------------------------------------------------


def service(data: Path, engine: ToneEngine, **settings: object) -> TestClient:
    app = create_app(
        ServiceSettings(engines=("tone",), data=str(data), **settings),  # type: ignore[arg-type]
        loader=lambda name, _: engine,
    )
    return TestClient(app)


def submit(
    client: TestClient, data: bytes, name: str = "tales.epub", **form: str
) -> dict[str, object]:
    response = client.post(
        "/v1/audiobook/books", files={"file": (name, data, "application/epub+zip")}, data=form
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/audiobook/jobs/{response.json()['id']}"
    job: dict[str, object] = response.json()
    return job


def wait(
    client: TestClient, job_id: object, until: str = "done", seconds: float = 60
) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status: dict[str, object] = client.get(f"/v1/audiobook/jobs/{job_id}").json()
        if status["status"] == until or status["status"] in ("failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not {until} in {seconds} s: {status}")


def test_a_book_job_reports_progress_and_serves_its_files(tmp_path: Path) -> None:
    with service(tmp_path / "data", ToneEngine(BOOK_TONE)) as client:
        job = submit(client, bookfiles.epub())
        assert job["status"] == "queued"
        assert [c["title"] for c in job["chapters"]] == [t for t, _ in bookfiles.CHAPTERS]  # type: ignore[attr-defined]
        assert job["skipped"][0]["skipped_because"] == "table of contents"  # type: ignore[index]
        done = wait(client, job["id"])
        assert done["status"] == "done" and done["meets_acx"] is True
        assert done["progress"] == {
            "chapters_done": 3,
            "chapters_total": 3,
            "chapters_found_made": 0,
            "sentences_done": 10,
            "sentences_total": 10,
            "chapter": "",
            "seconds_left": 0.0,
        }
        assert done["files"] == [
            "book.json",
            "book.m4b",
            "chapter-02.mp3",
            "chapter-03.mp3",
            "chapter-04.mp3",
        ]
        m4b = client.get(f"/v1/audiobook/jobs/{job['id']}/files/book.m4b")
        assert m4b.status_code == 200 and m4b.headers["content-type"] == "audio/mp4"
        book = client.get(f"/v1/audiobook/jobs/{job['id']}/files/book.json").json()
        assert [c["file"] for c in book["chapters"]] == [
            "chapter-02.mp3",
            "chapter-03.mp3",
            "chapter-04.mp3",
        ]
        assert client.get(f"/v1/audiobook/jobs/{job['id']}/files/job.json").status_code == 404
        assert client.get(f"/v1/audiobook/jobs/{job['id']}/files/..%2Fjob.json").status_code == 404
        assert client.get("/v1/audiobook/jobs/0123").status_code == 404
        assert [j["id"] for j in client.get("/v1/audiobook/jobs").json()["jobs"]] == [job["id"]]
        # A second job of the same book makes nothing again.
        again = wait(client, submit(client, bookfiles.epub())["id"])
        assert again["progress"]["chapters_found_made"] == 3  # type: ignore[index]
        # DELETE of a finished job removes its files; the record says so.
        deleted = client.delete(f"/v1/audiobook/jobs/{job['id']}").json()
        assert (deleted["status"], deleted["files"]) == ("deleted", [])
        assert client.get(f"/v1/audiobook/jobs/{job['id']}/files/book.m4b").status_code == 404
        assert client.delete("/v1/audiobook/jobs/" + "f" * 32).status_code == 404


def test_progress_is_reported_while_a_book_is_made(tmp_path: Path) -> None:
    with service(tmp_path / "data", ToneEngine(BOOK_TONE, delay=0.2)) as client:
        job = submit(client, bookfiles.epub())
        running = wait(client, job["id"], until="running")
        deadline = time.monotonic() + 30
        while running["progress"]["sentences_done"] < 2 and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.05)
            running = client.get(f"/v1/audiobook/jobs/{job['id']}").json()
        progress = running["progress"]
        assert progress["sentences_total"] == 10 and 2 <= progress["sentences_done"] < 10  # type: ignore[index]
        assert progress["seconds_left"] is not None and progress["seconds_left"] > 0  # type: ignore[index]
        assert progress["chapter"] in [t for t, _ in bookfiles.CHAPTERS]  # type: ignore[index]
        cancelled = client.delete(f"/v1/audiobook/jobs/{job['id']}").json()
        assert cancelled["status"] in ("running", "cancelled")
        assert wait(client, job["id"], until="cancelled")["files"] == []


def test_a_job_stopped_with_the_service_is_finished_by_the_next(tmp_path: Path) -> None:
    engine = ToneEngine(BOOK_TONE, delay=0.05)
    with service(tmp_path / "data", engine) as client:
        job_id = submit(client, bookfiles.epub())["id"]
        deadline = time.monotonic() + 30
        while len(engine.said) < 5 and time.monotonic() < deadline:  # into the second chapter
            time.sleep(0.01)
    # The service stopped: the job is left running, its first chapter made.
    record = json.loads((tmp_path / "data" / "jobs" / str(job_id) / "job.json").read_text())
    assert record["status"] == "running"
    said_before = len(engine.said)
    assert 5 <= said_before < 10
    restarted = ToneEngine(BOOK_TONE)
    with service(tmp_path / "data", restarted) as client:
        done = wait(client, job_id)
        assert done["progress"]["chapters_found_made"] == 1  # type: ignore[index]
        assert not any("Zoë walked" in said for said in restarted.said)  # chapter 1 not remade
        files = {
            name: client.get(f"/v1/audiobook/jobs/{job_id}/files/{name}").content
            for name in cast(list[str], done["files"])
        }
    with service(tmp_path / "whole", ToneEngine(BOOK_TONE)) as client:
        whole = wait(client, submit(client, bookfiles.epub())["id"])
        assert files == {
            name: client.get(f"/v1/audiobook/jobs/{whole['id']}/files/{name}").content
            for name in whole["files"]  # type: ignore[attr-defined]
        }


@pytest.mark.parametrize(
    ("data", "name", "status", "param"),
    [
        (bookfiles.drm_epub(), "drm.epub", 400, "drm"),
        (bookfiles.escaping_epub(), "escape.epub", 400, "path_escape"),
        (bookfiles.zip_bomb(), "bomb.epub", 400, "zip_bomb"),
        (b"just words", "notes.epub", 400, "not_epub"),
        (b"%PDF-1.7", "book.pdf", 400, "not_epub"),
        (bookfiles.epub(), "big.epub", 413, "size"),
    ],
    ids=["drm", "path-escape", "zip-bomb", "not-epub", "pdf", "over-size"],
)
def test_a_bad_book_is_refused_and_leaves_nothing(
    tmp_path: Path, data: bytes, name: str, status: int, param: str | None
) -> None:
    limit = 2000 if status == 413 else 100 * 1024 * 1024
    with service(tmp_path / "data", ToneEngine(BOOK_TONE), max_book_bytes=limit) as client:
        response = client.post(
            "/v1/audiobook/books", files={"file": (name, data, "application/octet-stream")}
        )
        assert response.status_code == status, response.text
        assert response.json()["error"]["param"] == param
    jobs = tmp_path / "data" / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []
    assert (
        not (tmp_path / "escaped.txt").exists() and not (tmp_path / "data" / "escaped.txt").exists()
    )


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with service(tmp_path / "data", ToneEngine(BOOK_TONE)) as client:

        def post(**form: str) -> dict[str, object]:
            response = client.post(
                "/v1/audiobook/books", files={"file": ("t.epub", bookfiles.epub())}, data=form
            )
            assert response.status_code == 400, response.text
            error: dict[str, object] = response.json()["error"]
            return error

        assert post(engine="csm")["param"] == "engine"
        assert post(voice="nobody")["param"] == "voice"
        assert post(speed="9")["param"] == "speed"
        assert post(chapters="7")["param"] == "chapters"
        assert "has no text" not in str(post(chapters="x"))
        response = client.post(
            "/v1/audiobook/books",
            files={
                "file": ("t.epub", bookfiles.epub()),
                "lexicon": ("lexicon.tsv", b"no tab here"),
            },
        )
        assert response.status_code == 400 and response.json()["error"]["param"] == "lexicon"
        assert list((tmp_path / "data" / "jobs").iterdir()) == []


def test_without_a_data_folder_book_jobs_say_how_to_have_them(tmp_path: Path) -> None:
    app = create_app(
        ServiceSettings(engines=("tone",)), loader=lambda name, _: ToneEngine(BOOK_TONE)
    )
    with TestClient(app) as client:
        response = client.post("/v1/audiobook/books", files={"file": ("t.epub", bookfiles.epub())})
        assert response.status_code == 503
        assert "AUDIOBOOK_TTS_DATA" in response.json()["error"]["message"]


def test_a_lexicon_travels_with_the_book(tmp_path: Path) -> None:
    engine = ToneEngine(BOOK_TONE)
    with service(tmp_path / "data", engine) as client:
        response = client.post(
            "/v1/audiobook/books",
            files={
                "file": ("t.epub", bookfiles.epub()),
                "lexicon": ("lexicon.tsv", "Zoë\tZoey\n".encode()),
            },
            data={"chapters": "2"},
        )
        assert response.status_code == 202
        wait(client, response.json()["id"])
    assert any("Zoey walked" in said for said in engine.said)
    assert not any("Zoë" in said for said in engine.said)


def test_the_engine_benchmark_makes_a_book_twice_and_synthesises_it_once(tmp_path: Path) -> None:
    from audiobook_tts.enginebench import measure_book

    engine = ToneEngine(BOOK_TONE)
    result = measure_book(engine, "alloy", 2, tmp_path, Finishing(2))
    assert (result["chapters"], result["meets_acx"]) == (2, True)
    assert len(engine.said) == result["sentences"]  # the second making found both made
    assert result["audio_seconds"] > 0
    assert result["timeline"]["finishing"] == str(Finishing(2))


def test_the_command_line_shows_bars_on_a_terminal_and_lines_in_a_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys

    from audiobook_tts.books.making import BookProgress
    from audiobook_tts.books.progressbars import BookProgressBars

    class Terminal(io.StringIO):
        def __init__(self, tty: bool) -> None:
            super().__init__()
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    for tty in (True, False):
        screen = Terminal(tty)
        monkeypatch.setattr(sys, "stderr", screen)
        progress = BookProgress(chapters_total=2, sentences_total=10)
        with BookProgressBars(2) as bars:
            progress.chapter, progress.chapter_sentences_total = "One", 5
            progress.sentences_done = progress.synthesised = progress.chapter_sentences_done = 4
            bars.update(progress)
            progress.chapters_done, progress.sentences_done = 1, 5
            bars.update(progress)
        shown = screen.getvalue()
        if tty:
            assert "book 0/2 chapters" in shown and "4/10 sentences" in shown
            assert "book 1/2 chapters" in shown and "left]" in shown and "One" in shown
        else:
            line = r"  chapter 1/2 done \(One\); sentences 5/10; \d+:\d\d left\n"
            assert re.fullmatch(line, shown), shown
