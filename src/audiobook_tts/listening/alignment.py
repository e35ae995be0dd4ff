"""Which sentences the audio does not say: heard words aligned to the text, sentence by sentence.

Both sides are normalised (words.py), then aligned once over the whole chapter on the words
they share (rapidfuzz's Indel alignment: a longest common subsequence). A Levenshtein
alignment, which jiwer's word error rate uses, is cheaper by one where it substitutes, and so
slides a dropped sentence's words onto the next sentence's and charges both; anchoring on
shared words charges the sentence that was dropped. Between two anchors, each word of the
text is an error of its sentence (misread or dropped), and words heard beyond them belong to
the neighbouring sentence they resemble: a sentence said twice is charged to itself. A
sentence's word error rate is its errors over its words; the chapter's is jiwer's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from audiobook_tts.listening.words import normal_words

# Words heard between sentences that hold this share of a neighbour's words are that
# sentence said again.
REPEAT_SHARE = 0.6
# A flagged sentence of which at most this share of words has anything heard in its place
# (a stray "the" can align anywhere) was not said at all.
MISSING_SHARE = 0.25
# A sentence is flagged for two errors or more: one misheard word of "Thump!" is a rate of
# 1.0, and says nothing of the audio (espeak-ng's "thump" is heard as "some").
MIN_ERRORS = 2


@dataclass(frozen=True)
class HeardWord:
    """A word as the recognizer wrote it, and when it was said (seconds into the audio)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class HeardSegment:
    """A stretch of speech the recognizer heard: its text and its words with their times."""

    text: str
    start: float
    end: float
    words: tuple[HeardWord, ...] = ()


@dataclass(frozen=True)
class SentenceScore:
    """One sentence against what was heard of it."""

    index: int  # 0-based, in the chapter's order
    text: str
    words: int  # after normalising
    errors: int  # substitutions, deletions, and words heard besides, charged to it
    heard: str  # the normalised words heard for it
    verdict: str  # ok, misread, missing (nothing heard) or repeated (said again)
    start: float | None  # seconds into the audio where its first heard word begins

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else 0.0

    @property
    def flagged(self) -> bool:
        return self.verdict != "ok"

    def as_dict(self) -> dict[str, object]:
        return {
            "sentence": self.index + 1,
            "text": self.text,
            "heard": self.heard,
            "wer": round(self.wer, 3),
            "verdict": self.verdict,
            "start_seconds": None if self.start is None else round(self.start, 2),
        }


@dataclass(frozen=True)
class ChapterScore:
    """Every sentence's score, and the chapter's word error rate (jiwer's, over the chapter's
    normalised words: the figure papers quote)."""

    sentences: tuple[SentenceScore, ...]
    wer: float

    @property
    def flagged(self) -> tuple[SentenceScore, ...]:
        return tuple(score for score in self.sentences if score.flagged)

    @property
    def words(self) -> int:
        return sum(score.words for score in self.sentences)


def chapter_wer(scores: Sequence[SentenceScore]) -> float:
    """jiwer's word error rate of sentences heard apart (a chapter with retakes): their
    words against what was heard of each, in order."""
    reference = [word for score in scores for word in normal_words(score.text)]
    return word_error_rate(reference, [word for score in scores for word in score.heard.split()])


def word_error_rate(reference: Sequence[str], heard: Sequence[str]) -> float:
    """jiwer's word error rate of two word lists (1.0 when nothing is heard of a text)."""
    if not reference:
        return 0.0
    if not heard:
        return 1.0
    import jiwer  # the listener's lock: imported on first use

    return float(jiwer.wer(" ".join(reference), " ".join(heard)))


def _timed_words(heard: Sequence[HeardSegment]) -> tuple[list[str], list[float]]:
    """The heard words, normalised a segment at a time, each with the time of the heard word
    it comes from (normalising may join or split words: "forty five" -> "45")."""
    words: list[str] = []
    times: list[float] = []
    for segment in heard:
        normal = normal_words(segment.text)
        spoken = segment.words
        for position, word in enumerate(normal):
            words.append(word)
            if spoken:
                times.append(spoken[position * len(spoken) // len(normal)].start)
            else:
                times.append(segment.start)
    return words, times


def score_sentences(
    sentences: Sequence[str], heard: Sequence[HeardSegment], max_wer: float
) -> ChapterScore:
    """Each sentence's score against one recording of them all, in order; a sentence whose
    word error rate is over `max_wer` is flagged (misread, missing or repeated)."""
    expected = [normal_words(sentence) for sentence in sentences]
    reference: list[str] = []
    owner: list[int] = []
    for index, words in enumerate(expected):
        reference.extend(words)
        owner.extend([index] * len(words))
    hypothesis, times = _timed_words(heard)
    count = len(sentences)
    errors = [0] * count
    matched = [0] * count  # words of the sentence with a heard word in their place
    heard_by: list[list[int]] = [[] for _ in range(count)]
    repeated = [False] * count
    for shared, ref_start, ref_end, hyp_start, hyp_end in _spans(reference, hypothesis):
        if shared:
            for offset in range(ref_end - ref_start):
                matched[owner[ref_start + offset]] += 1
                heard_by[owner[ref_start + offset]].append(hyp_start + offset)
            continue
        # A gap: each word of the text in it is misread or dropped; heard words pair with
        # them in order, and those beyond are words heard besides the text.
        paired = min(ref_end - ref_start, hyp_end - hyp_start)
        for offset in range(ref_end - ref_start):
            errors[owner[ref_start + offset]] += 1
            if offset < paired:
                heard_by[owner[ref_start + offset]].append(hyp_start + offset)
                matched[owner[ref_start + offset]] += 1  # something was said in its place
        extra = hypothesis[hyp_start + paired : hyp_end]
        if extra:
            charged = _insertion_owner(ref_end, extra, owner, expected)
            errors[charged] += len(extra)
            heard_by[charged].extend(range(hyp_start + paired, hyp_end))
            if _says_again(extra, expected[charged]):
                repeated[charged] = True
    scores = []
    for index, text in enumerate(sentences):
        length = len(expected[index])
        positions = sorted(heard_by[index])
        wer = errors[index] / length if length else 0.0
        if length == 0 or wer <= max_wer or errors[index] < MIN_ERRORS:
            verdict = "ok"
        elif repeated[index]:
            verdict = "repeated"
        elif matched[index] <= MISSING_SHARE * length:
            verdict = "missing"
        else:
            verdict = "misread"
        scores.append(
            SentenceScore(
                index=index,
                text=text,
                words=length,
                errors=errors[index],
                heard=" ".join(hypothesis[position] for position in positions),
                verdict=verdict,
                start=times[positions[0]] if positions else None,
            )
        )
    return ChapterScore(tuple(scores), word_error_rate(reference, hypothesis))


def _spans(reference: list[str], hypothesis: list[str]) -> list[tuple[bool, int, int, int, int]]:
    """The alignment as runs of shared words and the gaps between them: (shared, reference
    start, end, heard start, end). Nothing heard, or a text of no words, is one gap."""
    if not reference or not hypothesis:
        return [(False, 0, len(reference), 0, len(hypothesis))]
    from rapidfuzz.distance import Indel  # the listener's lock: imported on first use

    spans: list[tuple[bool, int, int, int, int]] = []
    for opcode in Indel.opcodes(reference, hypothesis):
        shared = opcode.tag == "equal"
        ref_start, ref_end = opcode.src_start, opcode.src_end
        hyp_start, hyp_end = opcode.dest_start, opcode.dest_end
        if not shared and spans and not spans[-1][0]:
            _, ref_start, _, hyp_start, _ = spans.pop()  # deletions beside insertions: one gap
        spans.append((shared, ref_start, ref_end, hyp_start, hyp_end))
    return spans


def _insertion_owner(
    position: int, extra: Sequence[str], owner: Sequence[int], expected: Sequence[Sequence[str]]
) -> int:
    """The sentence that words heard before reference word `position` belong to: the one
    around them, or, between two sentences, the neighbour they resemble (the earlier on a
    tie: speech running on past a sentence's end)."""
    before = owner[position - 1] if position > 0 else None
    after = owner[position] if position < len(owner) else None
    if before is None or after is None or before == after:
        chosen = before if before is not None else after
        assert chosen is not None  # an insertion has a reference word on one side at least
        return chosen
    heard = Counter(extra)
    if _overlap(heard, expected[after]) > _overlap(heard, expected[before]):
        return after
    return before


def _overlap(heard: Counter[str], words: Sequence[str]) -> int:
    return sum((heard & Counter(words)).values())


def _says_again(extra: Sequence[str], words: Sequence[str]) -> bool:
    return len(words) >= 2 and _overlap(Counter(extra), words) >= REPEAT_SHARE * len(words)
