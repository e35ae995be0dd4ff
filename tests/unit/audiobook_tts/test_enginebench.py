"""The engine benchmark's choices that need no GPU."""

from __future__ import annotations

import os

from audiobook_tts.books.making import Finishing
from audiobook_tts.enginebench import book_finishings


def test_finishing_both_makes_the_book_with_threads_then_with_processes() -> None:
    workers = max(1, (os.cpu_count() or 2) - 1)
    assert book_finishings("default") == [("book", None)]
    assert book_finishings("both") == [
        ("book", Finishing(workers)),
        ("book_2", Finishing(max(1, workers // 2), processes=True)),
    ]
