"""The command line's progress: a bar for the book and one for the chapter, with the time
left (tqdm on a terminal; a line per chapter in a log)."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm

from audiobook_tts.books.making import BookProgress

BOOK_BAR = "{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} sentences [{elapsed}{postfix}]"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, second = divmod(int(seconds + 0.5), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class BookProgressBars:
    def __init__(self, chapters: int) -> None:
        self.terminal = sys.stderr.isatty()
        self.chapters = chapters
        self.book: tqdm[None] | None = None
        self.chapter: tqdm[None] | None = None
        self.reported = 0
        self.activity = ""

    def __enter__(self) -> BookProgressBars:
        if self.terminal:
            # tqdm's own estimate counts chapters found made as fast work: ours is shown.
            self.book = tqdm(total=0, position=0, desc="book", leave=True, bar_format=BOOK_BAR)
            self.chapter = tqdm(total=0, position=1, unit="sentence", desc="chapter", leave=False)
        return self

    def update(self, progress: BookProgress) -> None:
        left = f"{duration(progress.seconds_left())} left"
        flagged = f", {progress.sentences_flagged} flagged" if progress.sentences_flagged else ""
        left += flagged
        if self.book is not None and self.chapter is not None:
            self.book.total = progress.sentences_total
            self.book.n = progress.sentences_done
            self.book.set_description(
                f"book {progress.chapters_done}/{progress.chapters_total} chapters", refresh=False
            )
            self.book.set_postfix_str(left, refresh=False)
            self.book.refresh()
            self.chapter.total = progress.chapter_sentences_total
            self.chapter.n = progress.chapter_sentences_done
            # What is being done to it: speaking, listening, retaking sentence N, scoring.
            doing = f" ({progress.activity})" if progress.activity else ""
            self.chapter.set_description(f"{progress.chapter[:40]}{doing}", refresh=False)
            self.chapter.refresh()
        else:
            if progress.activity != self.activity:
                self.activity = progress.activity
                if progress.activity not in ("", "speaking"):  # listening, retaking, scoring
                    print(f"  {progress.chapter}: {progress.activity}", file=sys.stderr, flush=True)
            if progress.chapters_done > self.reported:
                self.reported = progress.chapters_done
                print(
                    f"  chapter {progress.chapters_done}/{progress.chapters_total} done "
                    f"({progress.chapter}); sentences {progress.sentences_done}/"
                    f"{progress.sentences_total}; {left}",
                    file=sys.stderr,
                    flush=True,
                )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for bar in (self.chapter, self.book):
            if bar is not None:
                bar.close()
