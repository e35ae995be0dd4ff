"""Which sentences the audio does not say: heard words aligned to the text, sentence by sentence.

Both sides are normalised (words.py), then aligned once over the whole chapter with affine gap
costs (Gotoh's alignment: opening a gap costs more than widening one). A Levenshtein alignment,
which jiwer's word error rate uses, slides a dropped sentence's words onto the next sentence's
(a substitution costs no more than a deletion) and charges both; with affine gaps a dropped
sentence is one deletion and a sentence said twice one insertion, however alike its
neighbours are. Each substitution and deletion is an error of the sentence whose word it is;
words heard beyond the text belong to the neighbouring sentence they resemble: a sentence said
twice is charged to itself. A sentence's word error rate is its errors over its words; the
chapter's is jiwer's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audiobook_tts.listening.words import normal_words

# Words heard between sentences that hold this share of a neighbour's words are that
# sentence said again.
REPEAT_SHARE = 0.6
# A flagged sentence of which at most this share of words has anything heard in its place
# (a stray "the" can align anywhere) was not said at all.
MISSING_SHARE = 0.25
# A sentence is flagged for three errors or more: one misheard word of a short sentence is a
# rate of 1.0 and says nothing of the audio (espeak-ng's "Thump!" is heard as "some", its
# "But, alas!" as "but a glass": two errors); a sentence of three words or more that was
# dropped, said twice or garbled has three.
MIN_ERRORS = 3
# The alignment's costs, in words: a word heard for another costs less than a gap, so a misread
# sentence stays paired with what was said in its place; a gap costs most to open.
MISMATCH, GAP_OPEN, GAP_EXTEND = 1.0, 3.0, 0.5
# Above this many cells (reference words x heard words: a chapter of ~28,000 characters) the
# chapter is aligned on its shared words instead (rapidfuzz's Indel, in C), to bound memory.
MAX_CELLS = 25_000_000
SAME, SUB, DEL, INS = 0, 1, 2, 3


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
    # Words heard besides the text, by the sentence they are charged to: a sentence said
    # twice may come back in more than one run (the alignment can split its two copies).
    extras: list[list[str]] = [[] for _ in range(count)]
    waiting: list[int] = []  # heard words besides the text, not yet charged

    def charge(position: int) -> None:
        """Words heard before reference word `position` that the text does not have."""
        extra = [hypothesis[index] for index in waiting]
        charged = _insertion_owner(position, extra, owner, expected)
        errors[charged] += len(extra)
        heard_by[charged].extend(waiting)
        extras[charged].extend(extra)
        waiting.clear()

    for kind, ref_index, hyp_index in align(reference, hypothesis):
        if kind == INS:
            waiting.append(hyp_index)
            continue
        if waiting:
            charge(ref_index)
        sentence = owner[ref_index]
        if kind == DEL:
            errors[sentence] += 1
            continue
        matched[sentence] += 1  # a word heard in its place, right or wrong
        heard_by[sentence].append(hyp_index)
        if kind == SUB:
            errors[sentence] += 1
    if waiting:
        charge(len(reference))
    scores = []
    for index, text in enumerate(sentences):
        length = len(expected[index])
        positions = sorted(heard_by[index])
        wer = errors[index] / length if length else 0.0
        if length == 0 or wer <= max_wer or errors[index] < MIN_ERRORS:
            verdict = "ok"
        elif _says_again(extras[index], expected[index]):
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


Step = tuple[int, int, int]  # (SAME, SUB, DEL or INS; reference index; heard index)


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> list[Step]:
    """The alignment as steps in order: a word the same or another (a reference and a heard
    index), a word of the text not heard (reference index, -1), a word heard besides (-1,
    heard index)."""
    if not hypothesis:
        return [(DEL, index, -1) for index in range(len(reference))]
    if not reference:
        return [(INS, -1, index) for index in range(len(hypothesis))]
    if len(reference) * len(hypothesis) > MAX_CELLS:
        return _shared_word_steps(reference, hypothesis)
    return _gotoh(reference, hypothesis)


def _gotoh(reference: Sequence[str], hypothesis: Sequence[str]) -> list[Step]:
    """Gotoh's alignment (affine gaps), a row of numpy at a time. Three costs per cell: ending
    in a pair of words (M), in a word of the text left out (X), in a word heard besides (Y)."""
    vocabulary: dict[str, int] = {}
    ref = np.array([vocabulary.setdefault(word, len(vocabulary)) for word in reference])
    hyp = np.array([vocabulary.setdefault(word, len(vocabulary)) for word in hypothesis])
    rows, width = ref.size, hyp.size + 1
    columns = np.arange(width)
    inf = np.inf
    pairs, left_out, besides = (np.full(width, inf) for _ in range(3))
    pairs[0] = 0.0
    besides[1:] = GAP_OPEN + GAP_EXTEND * columns[1:]
    # Where each cell's best path came from: 0 M, 1 X, 2 Y.
    from_pairs = np.zeros((rows + 1, width), dtype=np.int8)
    from_left_out = np.zeros((rows + 1, width), dtype=np.int8)
    from_besides = np.full((rows + 1, width), 2, dtype=np.int8)
    from_besides[0, 1] = 0
    for row in range(1, rows + 1):
        previous = np.stack([pairs, left_out, besides])
        best = previous.argmin(axis=0)
        new_pairs = np.full(width, inf)
        new_pairs[1:] = previous[best, columns][:-1] + np.where(ref[row - 1] == hyp, 0.0, MISMATCH)
        from_pairs[row, 1:] = best[:-1]
        gap = np.stack([pairs + GAP_OPEN, left_out, besides + GAP_OPEN]) + GAP_EXTEND
        from_left_out[row] = gap.argmin(axis=0)
        new_left_out = gap.min(axis=0)
        opened = np.minimum(new_pairs, new_left_out)
        starts = opened + GAP_OPEN - GAP_EXTEND * columns
        running = np.minimum.accumulate(starts)
        new_besides = np.full(width, inf)
        new_besides[1:] = GAP_EXTEND * columns[1:] + running[:-1]
        opened_here = starts[:-1] <= running[:-1]
        which = (new_left_out[:-1] < new_pairs[:-1]).astype(np.int8)
        from_besides[row, 1:] = np.where(opened_here, which, 2)
        pairs, left_out, besides = new_pairs, new_left_out, new_besides
    steps: list[Step] = []
    state = int(np.argmin([pairs[-1], left_out[-1], besides[-1]]))
    row, column = rows, width - 1
    while row > 0 or column > 0:
        if state == 0:
            same = reference[row - 1] == hypothesis[column - 1]
            steps.append((SAME if same else SUB, row - 1, column - 1))
            state = int(from_pairs[row, column])
            row, column = row - 1, column - 1
        elif state == 1:
            steps.append((DEL, row - 1, -1))
            state = int(from_left_out[row, column])
            row -= 1
        else:
            steps.append((INS, -1, column - 1))
            state = int(from_besides[row, column])
            column -= 1
    steps.reverse()
    return steps


def _shared_word_steps(reference: Sequence[str], hypothesis: Sequence[str]) -> list[Step]:
    """The alignment on shared words (a longest common subsequence, in C) for long chapters:
    between two shared runs, words pair in order and the rest are left out or heard besides."""
    from rapidfuzz.distance import Indel  # the listener's lock: imported on first use

    steps: list[Step] = []
    gap_ref: list[int] = []
    gap_hyp: list[int] = []

    def close_gap() -> None:
        paired = min(len(gap_ref), len(gap_hyp))
        steps.extend((SUB, r, h) for r, h in zip(gap_ref[:paired], gap_hyp[:paired], strict=True))
        steps.extend((DEL, r, -1) for r in gap_ref[paired:])
        steps.extend((INS, -1, h) for h in gap_hyp[paired:])
        gap_ref.clear()
        gap_hyp.clear()

    for opcode in Indel.opcodes(list(reference), list(hypothesis)):
        if opcode.tag == "equal":
            close_gap()
            steps.extend(
                (SAME, r, h)
                for r, h in zip(
                    range(opcode.src_start, opcode.src_end),
                    range(opcode.dest_start, opcode.dest_end),
                    strict=True,
                )
            )
        else:
            gap_ref.extend(range(opcode.src_start, opcode.src_end))
            gap_hyp.extend(range(opcode.dest_start, opcode.dest_end))
    close_gap()
    return steps


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
