"""Does this audio say this book? Recordings (ours or another tool's) heard against the book's
chapters, in order: each chapter's word error rate, its missing, repeated and misread
sentences, and DNSMOS. A chapter whose audio says another chapter is named as such (files
out of order)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from audiobook_tts.books.making import PlannedChapter
from audiobook_tts.chapter import chunks
from audiobook_tts.listening.alignment import (
    HeardSegment,
    SentenceScore,
    score_sentences,
    word_error_rate,
)
from audiobook_tts.listening.listener import FALLBACK_MAX_WER, Hearing
from audiobook_tts.listening.quality import Dnsmos
from audiobook_tts.listening.recognizer import RATE
from audiobook_tts.listening.recordings import Recording, RecordingRefused
from audiobook_tts.listening.words import normal_words

# Audio whose error rate against its chapter is this much worse than against another
# chapter says that other chapter.
ANOTHER_CHAPTER_MARGIN = 0.3
# A book none of whose chapters is heard better than this is not what the audio says.
UNRELATED_WER = 0.8


@dataclass(frozen=True)
class ChapterAudit:
    """One chapter of the book against the recording in its place."""

    number: int
    title: str
    source: str
    seconds: float
    max_wer: float
    wer: float
    words: int
    sentences: int
    flagged: tuple[SentenceScore, ...]
    dnsmos: Dnsmos
    # The book's chapter this recording says instead, when it says another one.
    sounds_like: int | None = None

    @property
    def passed(self) -> bool:
        return not self.flagged

    def named(self, verdict: str) -> list[int]:
        return [score.index + 1 for score in self.flagged if score.verdict == verdict]

    def as_dict(self) -> dict[str, object]:
        return {
            "chapter": self.number,
            "title": self.title,
            "audio": self.source,
            "duration_seconds": round(self.seconds, 2),
            "passed": self.passed,
            "wer": round(self.wer, 4),
            "max_wer": self.max_wer,
            "words": self.words,
            "sentences": self.sentences,
            "missing": self.named("missing"),
            "repeated": self.named("repeated"),
            "misread": self.named("misread"),
            "flagged": [score.as_dict() for score in self.flagged],
            "dnsmos": self.dnsmos.as_dict(),
            "sounds_like_chapter": self.sounds_like,
        }


@dataclass(frozen=True)
class BookCheck:
    chapters: tuple[ChapterAudit, ...]

    @property
    def passed(self) -> bool:
        return all(chapter.passed for chapter in self.chapters)

    @property
    def says_the_book(self) -> bool:
        """False when no chapter's audio comes near its text: another book, or not speech."""
        return any(chapter.wer < UNRELATED_WER for chapter in self.chapters)

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "says_the_book": self.says_the_book,
            "chapters": [chapter.as_dict() for chapter in self.chapters],
        }


def pair_up(
    planned: Sequence[PlannedChapter], recordings: Sequence[Recording]
) -> list[tuple[PlannedChapter, Recording]]:
    """Chapters and recordings in order, one for one; RecordingRefused when they differ in
    number (the message says how to choose chapters)."""
    if len(planned) != len(recordings):
        raise RecordingRefused(
            f"{len(recordings)} recording(s) for {len(planned)} chapter(s) of the book: give one "
            f"file per chapter in order, or an M4B with a chapter marker each, or choose the "
            f"chapters the audio holds (--chapters / chapters)",
            "mismatch",
        )
    return list(zip(planned, recordings, strict=True))


def check_recordings(
    planned: Sequence[PlannedChapter],
    recordings: Sequence[Recording],
    listener: Hearing,
    max_wer: float = FALLBACK_MAX_WER,
    on_chapter: Callable[[ChapterAudit], None] = lambda _: None,
) -> BookCheck:
    """Each recording heard against the chapter in its place."""
    pairs = pair_up(planned, recordings)
    heard_all: list[tuple[HeardSegment, ...]] = []
    audits: list[ChapterAudit] = []
    for chapter, recording in pairs:
        heard = listener.hear(recording.samples, RATE)
        heard_all.append(heard)
        sentences = [piece.text for piece in chunks(chapter.text)]
        scored = score_sentences(sentences, heard, max_wer)
        audit = ChapterAudit(
            number=chapter.section.number,
            title=chapter.section.title,
            source=recording.name,
            seconds=recording.seconds,
            max_wer=max_wer,
            wer=scored.wer,
            words=scored.words,
            sentences=len(scored.sentences),
            flagged=scored.flagged,
            dnsmos=listener.score(recording.samples, RATE),
        )
        audits.append(audit)
        on_chapter(audit)
    return BookCheck(tuple(_placed(audits, planned, heard_all)))


def _placed(
    audits: list[ChapterAudit],
    planned: Sequence[PlannedChapter],
    heard: Sequence[tuple[HeardSegment, ...]],
) -> list[ChapterAudit]:
    """A failed chapter whose audio says another chapter of the book much better is named
    as such (the files are out of order, or one is another chapter's)."""
    texts = [" ".join(normal_words(chapter.text)) for chapter in planned]
    placed = []
    for position, audit in enumerate(audits):
        words = " ".join(" ".join(normal_words(segment.text)) for segment in heard[position])
        if audit.passed or not words:
            placed.append(audit)
            continue
        rates = [word_error_rate(text.split(), words.split()) for text in texts]
        best = min(range(len(rates)), key=rates.__getitem__)
        if best != position and rates[best] + ANOTHER_CHAPTER_MARGIN < audit.wer:
            audit = ChapterAudit(**{**audit.__dict__, "sounds_like": planned[best].section.number})
        placed.append(audit)
    return placed
