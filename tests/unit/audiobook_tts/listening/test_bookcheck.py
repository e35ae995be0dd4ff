"""Audio heard against its book: chapters in order pass; files out of order, or one cut
short, fail and name the chapter and the sentences; the API runs it as a job."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from audiobook_tts.app import create_app
from audiobook_tts.books.making import PlannedChapter, plan_chapters
from audiobook_tts.books.reading import read_book
from audiobook_tts.chapter import chunks
from audiobook_tts.config import ServiceSettings
from audiobook_tts.listening.bookcheck import check_recordings
from audiobook_tts.listening.recordings import Recording, RecordingRefused
from tests.unit.audiobook_tts.listening.fakes import RATE, CodedEngine, CodedListener

BOOK = """# The River

The rain had not stopped for three days. The river was rising fast by the mill.
She closed the shutters and lit the lamp.

# The Bridge

By morning the road to the mill was under water. The old bridge was gone for good.
Nobody in the village remembered a spring like it.

# The Tea

He said nothing at all that evening. She saw his hands shake as he poured the tea.
"""
GAP = np.zeros(RATE // 2, dtype=np.float32)


def planned(tmp_path: Path) -> tuple[PlannedChapter, ...]:
    source = tmp_path / "river.md"
    source.write_text(BOOK, encoding="utf-8")
    return plan_chapters(read_book(source))


def spoken(engine: CodedEngine, chapter: PlannedChapter, drop_last: bool = False) -> np.ndarray:
    """The chapter as the coded engine says it, sentences apart (the last left out)."""
    sentences = [piece.text for piece in chunks(chapter.text)]
    if drop_last:
        sentences = sentences[:-1]
    blocks = [engine.synthesize(text, "alloy", 1.0).samples for text in sentences]
    return np.concatenate([part for block in blocks for part in (block, GAP)])


def test_the_chapters_in_order_pass(tmp_path: Path) -> None:
    chapters = planned(tmp_path)
    engine = CodedEngine()
    recordings = [Recording(f"{n}.wav", spoken(engine, c)) for n, c in enumerate(chapters)]
    result = check_recordings(chapters, recordings, CodedListener(engine), 0.3)
    assert result.passed and result.says_the_book
    assert [audit.number for audit in result.chapters] == [1, 2, 3]
    assert all(audit.wer == 0.0 and audit.dnsmos.p808 == 3.5 for audit in result.chapters)


def test_files_out_of_order_fail_and_say_which_chapter_they_hold(tmp_path: Path) -> None:
    chapters = planned(tmp_path)
    engine = CodedEngine()
    first, second, third = (spoken(engine, chapter) for chapter in chapters)
    recordings = [Recording("a", second), Recording("b", first), Recording("c", third)]
    result = check_recordings(chapters, recordings, CodedListener(engine), 0.3)
    assert not result.passed
    audits = {audit.number: audit for audit in result.chapters}
    assert (audits[1].passed, audits[2].passed, audits[3].passed) == (False, False, True)
    assert (audits[1].sounds_like, audits[2].sounds_like) == (2, 1)


def test_a_chapter_cut_short_names_its_missing_sentence(tmp_path: Path) -> None:
    chapters = planned(tmp_path)
    engine = CodedEngine()
    recordings = [
        Recording("1", spoken(engine, chapters[0])),
        Recording("2", spoken(engine, chapters[1], drop_last=True)),
        Recording("3", spoken(engine, chapters[2])),
    ]
    result = check_recordings(chapters, recordings, CodedListener(engine), 0.3)
    audit = result.chapters[1]
    assert not audit.passed and audit.named("missing") == [4]  # title, then three sentences
    assert audit.as_dict()["missing"] == [4] and audit.sounds_like is None
    assert result.chapters[0].passed and result.chapters[2].passed


def test_a_recording_for_each_chapter_or_a_clear_refusal(tmp_path: Path) -> None:
    chapters = planned(tmp_path)
    engine = CodedEngine()
    with pytest.raises(RecordingRefused, match="2 recording\\(s\\) for 3 chapter\\(s\\)"):
        check_recordings(
            chapters,
            [Recording("1", spoken(engine, chapters[0]))] * 2,
            CodedListener(engine),
        )


def wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_the_api_runs_a_check_as_a_job_and_refuses_what_it_cannot_hear(tmp_path: Path) -> None:
    chapters = planned(tmp_path)
    engine = CodedEngine()
    audio = [wav(spoken(engine, chapter)) for chapter in chapters]
    settings = ServiceSettings(engines=("coded",), data=str(tmp_path / "data"))
    app = create_app(
        settings, loader=lambda _name, _settings: engine, listener=CodedListener(engine)
    )
    book = ("river.md", BOOK.encode(), "text/markdown")
    with TestClient(app) as client:
        silent = client.post(
            "/v1/audiobook/checks",
            files=[
                ("book", book),
                *[("audio", (f"{n}.wav", wav(GAP), "audio/wav")) for n in range(3)],
            ],
        )
        assert silent.status_code == 400 and silent.json()["error"]["param"] == "no_speech"
        short = client.post(
            "/v1/audiobook/checks",
            files=[("book", book), ("audio", ("1.wav", audio[0], "audio/wav"))],
        )
        assert (
            short.status_code == 400 and "1 recording(s) for 3" in short.json()["error"]["message"]
        )
        assert not any((tmp_path / "data" / "checks").iterdir())  # nothing half-written
        submitted = client.post(
            "/v1/audiobook/checks",
            files=[
                ("book", book),
                *[("audio", (f"{n}.wav", data, "audio/wav")) for n, data in enumerate(audio)],
            ],
        )
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["location"]
        deadline = time.monotonic() + 60
        while (status := client.get(location).json())["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["status"] == "done" and status["passed"] is True, status
        report = client.get(f"{location}/report").json()
        assert [chapter["passed"] for chapter in report["chapters"]] == [True, True, True]
        assert client.get("/v1/audiobook/checks/nosuch").status_code == 404


def test_a_405_on_the_checks_path_allows_both_of_its_methods(tmp_path: Path) -> None:
    engine = CodedEngine()
    settings = ServiceSettings(engines=("coded",), data=str(tmp_path / "data"))
    app = create_app(
        settings, loader=lambda _name, _settings: engine, listener=CodedListener(engine)
    )
    with TestClient(app) as client:
        refused = client.request("OPTIONS", "/v1/audiobook/checks")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"
        assert "/v1/audiobook/checks" in client.get("/openapi.json").json()["paths"]
    without = create_app(
        ServiceSettings(engines=("coded",), data=str(tmp_path / "d2")), loader=lambda _n, _s: engine
    )
    with TestClient(without) as client:
        assert "/v1/audiobook/checks" not in client.get("/openapi.json").json()["paths"]
        assert client.get("/v1/audiobook/checks/x").status_code == 503  # and says how to get one
