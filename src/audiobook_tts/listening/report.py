"""What the listener found in a chapter: a typed record, serialised in one place."""

from __future__ import annotations

from dataclasses import dataclass

from audiobook_tts.listening.alignment import SentenceScore
from audiobook_tts.listening.quality import Dnsmos


@dataclass(frozen=True)
class ChapterCheck:
    """A chapter heard: its word error rate, the sentences over the bar after every retake
    (with what was heard), the sentences made again, and DNSMOS."""

    engine: str
    max_wer: float
    wer: float
    words: int
    sentences: int
    flagged: tuple[SentenceScore, ...]
    remade: tuple[int, ...] = ()  # 0-based sentences whose kept take is not the first
    retakes: int = 0  # takes made beyond the first, kept or not
    dnsmos: Dnsmos | None = None

    @property
    def passed(self) -> bool:
        return not self.flagged

    def as_dict(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "max_wer": self.max_wer,
            "wer": round(self.wer, 4),
            "words": self.words,
            "sentences": self.sentences,
            "passed": self.passed,
            "flagged": [score.as_dict() for score in self.flagged],
            "remade": [index + 1 for index in self.remade],
            "retakes": self.retakes,
            "dnsmos": None if self.dnsmos is None else self.dnsmos.as_dict(),
        }
