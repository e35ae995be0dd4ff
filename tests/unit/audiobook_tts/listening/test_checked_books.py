"""Books heard as they are made: book.json carries each chapter's check and the book's verdict,
a checked chapter is kept apart from an unchecked one, and progress says when it listens."""

from __future__ import annotations

import json
from pathlib import Path

from audiobook_tts.books.making import (
    BookProgress,
    BookRequest,
    ChapterStore,
    chapter_key,
    make_book,
    plan_chapters,
)
from audiobook_tts.books.reading import read_book
from tests.unit.audiobook_tts.listening.fakes import CodedListener, SeededCodedEngine
from tests.unit.audiobook_tts.listening.test_bookcheck import BOOK


def test_a_book_heard_as_it_is_made(tmp_path: Path) -> None:
    source = tmp_path / "river.md"
    source.write_text(BOOK, encoding="utf-8")
    book = read_book(source)
    planned = plan_chapters(book)
    # The tea chapter's last sentence mumbles at every take: flagged after two retakes.
    engine = SeededCodedEngine({"She saw his hands shake as he poured the tea.": 9})
    listener = CodedListener(engine)
    store = ChapterStore(tmp_path / "store")
    seen: list[str] = []

    def watch(progress: BookProgress) -> None:
        seen.append(progress.activity)

    description = make_book(
        book,
        planned,
        engine,
        BookRequest("alloy"),
        store,
        tmp_path / "out",
        watch,
        listener=listener,
    )
    assert {"speaking", "listening", "retaking sentence 3", "scoring"} <= set(seen)
    checks = [chapter["check"] for chapter in description["chapters"]]  # type: ignore[attr-defined]
    assert [check["passed"] for check in checks] == [True, True, False]
    assert [item["sentence"] for item in checks[2]["flagged"]] == [3]
    assert checks[2]["retakes"] == 2
    assert description["check"] == {
        "passed": False,
        "sentences_flagged": 1,
        "listener": {"model_sha256": "coded-listener", "max_wer": "coded=0.3", "attempts": "3"},
    }
    written = json.loads((tmp_path / "out" / "book.json").read_text())
    assert written["check"]["passed"] is False

    # Made again: every chapter is found (nothing said), book.json the same.
    again = SeededCodedEngine()
    description_again = make_book(
        book,
        planned,
        again,
        BookRequest("alloy"),
        store,
        tmp_path / "again",
        listener=CodedListener(again),
    )
    assert again.heard_as == [] and description_again == description

    # Unchecked (--no-check): another key, so the checked chapters are not taken for it.
    text = planned[0].text
    assert chapter_key(text, engine, "alloy", 1.0) != chapter_key(
        text, engine, "alloy", 1.0, listener=listener
    )
    unchecked = make_book(
        book, planned, SeededCodedEngine(), BookRequest("alloy", check=False), store, tmp_path / "u"
    )
    assert unchecked["check"] is None and "check" not in unchecked["chapters"][0]  # type: ignore[index]
