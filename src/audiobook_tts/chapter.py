"""A whole chapter to one audiobook file: sentences, pauses, room tone, ACX levels.

ACX (Audible) asks for RMS between -23 and -18 dB, peaks at most -3 dBFS, a noise floor at
most -60 dB, 0.5-1 s of room tone at the head and 1-5 s at the tail, and MP3 at 44.1 kHz,
constant bitrate of at least 192 kbps. The mastering below aims at the middle of each range.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from sentencex import segment

from audiobook_tts.audio import LevelReport, Samples, db, limit, measure, resample, rms
from audiobook_tts.engines.base import Audio, Engine, SeededEngine, synthesize_all
from audiobook_tts.listening.report import ChapterCheck

MASTER_RATE = 44100
HEAD_SECONDS = 0.75
TAIL_SECONDS = 2.0
# A chapter is a whole number of AAC frames long, so that an M4B joined from its chapters'
# AAC lasts, and decodes to, exactly what the chapters do (books/m4b.py).
CHAPTER_SAMPLES_MULTIPLE = 1024
SENTENCE_PAUSE = 0.4
PARAGRAPH_PAUSE = 1.0
TARGET_RMS_DB = -20.0
# Below ACX's -3 dBFS with room for MP3's overshoot of the decoded peaks.
PEAK_CEILING_DBFS = -4.0
ROOM_TONE_DB = -75.0
MAX_CHUNK_CHARS = 600


class ChapterError(ValueError):
    """The text cannot make a chapter (a client error, unlike a failing engine)."""


@dataclass(frozen=True)
class Chunk:
    text: str
    pause_after: float


def chunks(text: str, language: str = "en") -> Iterator[Chunk]:
    """Sentences (by sentencex, a maintained splitter), paragraph breaks kept as longer pauses."""
    paragraphs = [part for part in re.split(r"\n\s*\n", text) if part.strip()]
    for number, paragraph in enumerate(paragraphs):
        sentences = [s.strip() for s in segment(language, " ".join(paragraph.split())) if s.strip()]
        for index, sentence in enumerate(sentences):
            last = index == len(sentences) - 1
            pause = (
                (PARAGRAPH_PAUSE if number < len(paragraphs) - 1 else 0.0)
                if last
                else (SENTENCE_PAUSE)
            )
            # A runaway "sentence" (no punctuation) is cut at word boundaries.
            while len(sentence) > MAX_CHUNK_CHARS:
                cut = sentence.rfind(" ", 0, MAX_CHUNK_CHARS)
                cut = cut if cut > 0 else MAX_CHUNK_CHARS
                yield Chunk(sentence[:cut], SENTENCE_PAUSE / 2)
                sentence = sentence[cut:].strip()
            if sentence:
                yield Chunk(sentence, pause)


def trim(samples: Samples, threshold: float = 10 ** (-50 / 20)) -> Samples:
    """Leading and trailing silence of one synthesised chunk, so pauses are ours alone."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : loud[-1] + 1]


def room_tone(count: int, rng: np.random.Generator) -> Samples:
    """`count` samples of very quiet noise instead of digital silence (which ACX flags)."""
    level = 10 ** (ROOM_TONE_DB / 20)
    return (rng.standard_normal(count) * level).astype(np.float32)


def master(speech: Samples, rate: int) -> Samples:
    """Bring RMS to the target and peaks under the ceiling (a few passes: limiting lowers RMS)."""
    ceiling = 10 ** (PEAK_CEILING_DBFS / 20)
    result = speech.astype(np.float32)
    for _ in range(4):
        current = rms(result)
        if current > 0:
            result = result * np.float32(10 ** ((TARGET_RMS_DB - db(current)) / 20))
        result = limit(result, rate, ceiling)
        if abs(db(rms(result)) - TARGET_RMS_DB) < 0.3:
            break
    return result


Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RenderedChapter:
    """A mastered chapter, its measured levels, the sentences that reached the engine's
    length bound (possibly cut short: named, never hidden), and what the listener heard."""

    samples: Samples
    rate: int
    levels: LevelReport
    at_length_bound: tuple[str, ...] = ()
    check: ChapterCheck | None = None
    # The middle of each pause between sentences, in samples: where the chapter's MP3 may be
    # cut into parts encoded at once (a part's encoder delay then falls in room tone).
    pauses: tuple[int, ...] = ()

    def report(self) -> dict[str, object]:
        report: dict[str, object] = {
            **self.levels.as_dict(),
            "sentences_at_length_bound": list(self.at_length_bound),
        }
        if self.check is not None:
            report["check"] = self.check.as_dict()
        return report


def chapter_seed(text: str, voice: str, speed: float, seed: int) -> int:
    """A seed that follows everything that makes the chapter what it is."""
    key = f"{seed}|{voice}|{speed!r}|{text}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class SpokenSentence:
    """A sentence as the engine said it: trimmed, at the master rate, and its pause."""

    text: str
    samples: Samples
    pause_after: float
    hit_bound: bool = False


def spoken_sentence(text: str, audio: Audio, pause_after: float) -> SpokenSentence:
    return SpokenSentence(
        text, resample(trim(audio.samples), audio.rate, MASTER_RATE), pause_after, audio.hit_bound
    )


@dataclass(frozen=True)
class SpokenChapter:
    """A chapter's sentences as the engine said them (and, when checked, what the listener
    heard): what `master_chapter` makes the chapter of."""

    sentences: tuple[SpokenSentence, ...]
    seed: int
    check: ChapterCheck | None = None

    @property
    def parts(self) -> tuple[Samples, ...]:
        """Each sentence followed by its pause, at the master rate."""
        parts: list[Samples] = []
        for sentence in self.sentences:
            parts.append(sentence.samples)
            if sentence.pause_after:
                parts.append(np.zeros(int(sentence.pause_after * MASTER_RATE), dtype=np.float32))
        return tuple(parts)

    @property
    def at_length_bound(self) -> tuple[str, ...]:
        return tuple(sentence.text for sentence in self.sentences if sentence.hit_bound)


def speak_chapter(
    engine: Engine,
    text: str,
    voice: str,
    speed: float = 1.0,
    progress: Progress | None = None,
    seed: int = 0,
) -> SpokenChapter:
    """The engine's part of a chapter (in its batches): sentences, pauses, no mastering."""
    pieces = list(chunks(text))
    if not pieces:
        raise ChapterError("the chapter has no sentence to speak")

    def done(count: int) -> None:
        if progress is not None:
            progress(count, len(pieces))

    seeded = getattr(engine, "seeded", None)
    if seeded is not None:
        # An engine that draws noise (piper) draws it from the chapter's own seed: the same
        # chapter made again (a resumed book job) is the same audio.
        engine = seeded(chapter_seed(text, voice, speed, seed))
    spoken = synthesize_all(engine, [piece.text for piece in pieces], voice, speed, done)
    return SpokenChapter(
        tuple(
            spoken_sentence(piece.text, audio, piece.pause_after)
            for piece, audio in zip(pieces, spoken, strict=True)
        ),
        seed,
    )


def retake(
    engine: Engine, sentence: SpokenSentence, voice: str, speed: float, seed: int
) -> SpokenSentence | None:
    """The sentence said again with another seed, by an engine that samples; None for a
    deterministic engine (another take would be the same)."""
    if not isinstance(engine, SeededEngine):
        return None
    audio = engine.synthesize_seeded(sentence.text, voice, speed, seed)
    return spoken_sentence(sentence.text, audio, sentence.pause_after)


def master_chapter(spoken: SpokenChapter) -> RenderedChapter:
    """Join, master to ACX levels, room tone under the pauses and at head and tail; no engine
    here, so a book's next chapter can be spoken while this one is mastered."""
    rng = np.random.default_rng(spoken.seed)
    speech = master(np.concatenate(spoken.parts), MASTER_RATE)
    # Room tone under the pauses too: a pause of digital zero would be the noise floor.
    speech = speech + room_tone(speech.size, rng)
    head = room_tone(int(HEAD_SECONDS * MASTER_RATE), rng)
    tail_samples = int(TAIL_SECONDS * MASTER_RATE)
    tail_samples += -(head.size + speech.size + tail_samples) % CHAPTER_SAMPLES_MULTIPLE
    tail = room_tone(tail_samples, rng)
    full = np.concatenate([head, speech, tail]).astype(np.float32)
    pauses = []
    position = head.size
    for sentence in spoken.sentences:
        position += sentence.samples.size
        if sentence.pause_after:
            pause = int(sentence.pause_after * MASTER_RATE)
            pauses.append(position + pause // 2)
            position += pause
    return RenderedChapter(
        full,
        MASTER_RATE,
        measure(full, MASTER_RATE),
        spoken.at_length_bound,
        spoken.check,
        tuple(pauses),
    )


def render_chapter(
    engine: Engine,
    text: str,
    voice: str,
    speed: float = 1.0,
    progress: Progress | None = None,
    seed: int = 0,
) -> RenderedChapter:
    """Synthesise (in the engine's batches), join, master; returns 44.1 kHz samples and
    their measured levels."""
    return master_chapter(speak_chapter(engine, text, voice, speed, progress, seed))
