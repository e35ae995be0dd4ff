"""An M4B: the chapters' audio in one AAC track, a chapter marker each, title, author, cover.

Written with PyAV (FFmpeg's own MP4 muxer and AAC encoder, inside the wheel): its chapters
are the ones `ffprobe -show_chapters` and audiobook players read (a QuickTime chapter track
and Nero's `chpl`), and the cover is an attached picture, as Apple Books expects.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

from audiobook_tts.books.reading import Cover

# Mono speech: 64 kbps AAC-LC is what the large audiobook stores deliver.
AAC_BITRATE = 64_000
FRAME_SAMPLES = 8192
COVER_CODECS = {"image/png": "png", "image/jpeg": "mjpeg"}


@dataclass(frozen=True)
class M4bChapter:
    title: str
    audio: Path  # a lossless file of the chapter (FLAC), at the book's rate


@dataclass(frozen=True)
class M4bTags:
    title: str
    author: str
    language: str
    cover: Cover | None = None


def write_m4b(chapters: Sequence[M4bChapter], tags: M4bTags, target: Path) -> float:
    """Write the M4B to `target` (whole or not at all); returns its duration in seconds."""
    lengths = [soundfile.info(str(chapter.audio)).frames for chapter in chapters]
    rates = {soundfile.info(str(chapter.audio)).samplerate for chapter in chapters}
    if len(rates) != 1:
        raise ValueError(f"the chapters differ in sample rate: {sorted(rates)}")
    rate = rates.pop()
    # A name of its own: two workers joining one book never write one file.
    temporary = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    container = av.open(str(temporary), "w", format="mp4", container_options={"brand": "M4B "})
    try:
        container.metadata.update(
            {
                "title": tags.title,
                "album": tags.title,
                "artist": tags.author,
                "album_artist": tags.author,
                "genre": "Audiobook",
                "language": tags.language,
            }
        )
        audio = container.add_stream("aac", rate=rate, layout="mono")
        audio.bit_rate = AAC_BITRATE
        picture = _cover_stream(container, tags.cover)
        starts = np.concatenate(([0], np.cumsum(lengths)))
        container.set_chapters(
            [
                {
                    "id": number,
                    "start": int(starts[number - 1]),
                    "end": int(starts[number]),
                    "time_base": Fraction(1, rate),
                    "metadata": {"title": chapter.title},
                }
                for number, chapter in enumerate(chapters, start=1)
            ]
        )
        if picture is not None and tags.cover is not None:
            packet = av.Packet(tags.cover.data)
            packet.stream = picture
            packet.pts = packet.dts = 0
            packet.time_base = Fraction(1, 90000)
            container.mux(packet)
        position = 0
        for chapter in chapters:
            with soundfile.SoundFile(str(chapter.audio)) as source:
                for block in source.blocks(blocksize=FRAME_SAMPLES, dtype="float32"):
                    frame = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(block.reshape(1, -1)), format="flt", layout="mono"
                    )
                    frame.sample_rate = rate
                    frame.pts = position
                    position += block.shape[0]
                    container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    except BaseException:
        container.close()
        temporary.unlink(missing_ok=True)
        raise
    container.close()
    temporary.replace(target)
    return float(position / rate)


def _cover_stream(
    container: av.container.OutputContainer, cover: Cover | None
) -> av.video.stream.VideoStream | None:
    """A still-picture stream for the cover (PNG or JPEG as they are; others are left out)."""
    if cover is None or cover.media_type not in COVER_CODECS:
        return None
    try:
        with av.open(io.BytesIO(cover.data), "r") as image:
            frame = next(image.decode(video=0))
    except (av.FFmpegError, StopIteration):
        return None  # a cover FFmpeg cannot read is left out, not a failed book
    stream = container.add_stream(COVER_CODECS[cover.media_type])
    assert isinstance(stream, av.video.stream.VideoStream)
    stream.width = frame.width
    stream.height = frame.height
    stream.pix_fmt = "rgb24" if cover.media_type == "image/png" else "yuvj420p"
    stream.disposition = av.stream.Disposition.attached_pic
    return stream
