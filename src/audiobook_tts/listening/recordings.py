"""Audio files as the listener takes them: decoded to 16 kHz mono, an M4B split at its chapters.

Any file FFmpeg reads will do (our chapter MP3s, an M4B, another tool's WAV, FLAC, Opus or
M4A); PyAV's wheel carries FFmpeg's libraries. Durations are read from the container before
anything is decoded, so audio over the limit is refused at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from audiobook_tts.audio import Samples
from audiobook_tts.listening.recognizer import RATE

# Below this RMS (dBFS) a recording holds no speech to hear: digital silence or room tone.
SILENCE_DB = -60.0


class RecordingRefused(ValueError):
    """Audio that cannot be checked (unreadable, too long, silent); `reason` is a short code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Recording:
    """One chapter's audio: where it came from, and its samples at 16 kHz."""

    name: str  # the file, and the M4B chapter's title after a colon
    samples: Samples

    @property
    def seconds(self) -> float:
        return self.samples.size / RATE


@dataclass(frozen=True)
class _Span:
    title: str
    start: float
    end: float | None


def _spans(container: av.container.InputContainer) -> list[_Span]:
    """An M4B's chapters as time spans; one span of the whole file where it has none."""
    spans: list[_Span] = []
    for chapter in container.chapters():
        base = Fraction(chapter["time_base"] or 1)
        title = str(chapter.get("metadata", {}).get("title", f"chapter {len(spans) + 1}"))
        spans.append(_Span(title, float(chapter["start"] * base), float(chapter["end"] * base)))
    return spans or [_Span("", 0.0, None)]


def duration(path: Path) -> float:
    """The file's duration in seconds, from its container (RecordingRefused if unreadable)."""
    try:
        with av.open(str(path), "r") as container:
            if not container.streams.audio:
                raise RecordingRefused(f"{path.name}: no audio stream", "not_audio")
            if container.duration is not None:
                return float(container.duration / av.time_base)
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError) as error:
        raise RecordingRefused(
            f"{path.name}: not audio FFmpeg can read ({error})", "not_audio"
        ) from None
    raise RecordingRefused(f"{path.name}: its duration cannot be read", "not_audio")


def read_recordings(paths: Sequence[Path], max_seconds: float) -> list[Recording]:
    """Every file's chapters in order (an M4B's at its markers), at 16 kHz mono; refused when
    together they run over `max_seconds`, or when one is silent."""
    total = sum(duration(path) for path in paths)
    if total > max_seconds:
        raise RecordingRefused(
            f"the audio runs {total:.0f} s; at most {max_seconds:.0f} s is checked at once "
            f"(AUDIOBOOK_TTS_MAX_CHECK_SECONDS)",
            "too_long",
        )
    recordings: list[Recording] = []
    for path in paths:
        samples = _decode(path)
        with av.open(str(path), "r") as container:
            spans = _spans(container)
        for span in spans:
            first = int(span.start * RATE)
            last = samples.size if span.end is None else int(span.end * RATE)
            name = f"{path.name}: {span.title}" if span.title else path.name
            piece = samples[first:last]
            level = (
                float(np.sqrt(np.mean(np.square(piece, dtype=np.float64)))) if piece.size else 0.0
            )
            if level <= 10 ** (SILENCE_DB / 20):
                raise RecordingRefused(f"{name}: no speech (silence)", "no_speech")
            recordings.append(Recording(name, piece))
    return recordings


def _decode(path: Path) -> Samples:
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
    try:
        with av.open(str(path), "r") as container:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, OSError) as error:
        raise RecordingRefused(f"{path.name}: cannot be decoded ({error})", "not_audio") from None
    if not chunks:
        raise RecordingRefused(f"{path.name}: no audio in it", "no_speech")
    return np.concatenate(chunks).astype(np.float32)
