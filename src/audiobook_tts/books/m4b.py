"""An M4B: the chapters' audio in one AAC track, a chapter marker each, title, author, cover.

Written with PyAV (FFmpeg's own MP4 muxer and AAC encoder, inside the wheel). Each chapter's
AAC is encoded when the chapter is finished (`encode_aac`, beside its MP3), and the M4B is
joined from those files' packets, never encoded again: a book's last step is a copy. Its chapters
are the ones `ffprobe -show_chapters` and audiobook players read (a QuickTime chapter track
and Nero's `chpl`), and the cover is an attached picture, as Apple Books expects.
"""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from audiobook_tts.audio import mono_frames, part_bounds
from audiobook_tts.books.reading import Cover

# Mono speech: 64 kbps AAC-LC is what the large audiobook stores deliver.
AAC_BITRATE = 64_000
FRAME_SAMPLES = 8192
COVER_CODECS = {"image/png": "png", "image/jpeg": "mjpeg"}


@dataclass(frozen=True)
class M4bChapter:
    title: str
    audio: Path  # the chapter's AAC in an MP4 file (`encode_aac`), at the book's rate


@dataclass(frozen=True)
class M4bTags:
    title: str
    author: str
    language: str
    cover: Cover | None = None


# A chapter's AAC is encoded in parts of at least this long, `AAC_THREADS` at once (FFmpeg's
# encoder runs with the GIL let go): one part on one core was 8 s of a 14-minute chapter.
AAC_PART_SECONDS = 60.0
AAC_THREADS = 2
AAC_FRAME = 1024


def encode_aac(samples: npt.NDArray[np.float32], rate: int, cuts: Sequence[int] = ()) -> bytes:
    """One chapter's audio as AAC-LC in an MP4 file of its own (no tags): what the M4B is
    joined from, packet for packet, so that a chapter is encoded once, when it is finished,
    and never again when its book is joined.

    Encoded in parts cut at some of `cuts` (sample positions in quiet pauses, moved back to
    a whole AAC frame) so that each part is at least `AAC_PART_SECONDS` long; the parts'
    packets join as the M4B joins chapters: the later parts' priming left out, so the file
    decodes to exactly its samples, with a seam of one frame (23 ms) in each cut's pause."""
    bounds = part_bounds(samples.size, cuts, int(AAC_PART_SECONDS * rate), AAC_FRAME)
    with ThreadPoolExecutor(min(AAC_THREADS, len(bounds) - 1), thread_name_prefix="aac") as pool:
        parts = list(
            pool.map(
                lambda edge: _aac_packets(samples[edge[0] : edge[1]], rate),
                itertools.pairwise(bounds),
            )
        )
    buffer = io.BytesIO()
    container = av.open(buffer, "w", format="mp4")
    # Its own encoder is opened, never fed: it gives the file the parts' configuration.
    audio = container.add_stream("aac", rate=rate, layout="mono")
    audio.bit_rate = AAC_BITRATE
    time_base = Fraction(1, rate)
    for start, packets in zip(bounds, parts, strict=False):
        for packet in packets:
            priming = packet.pts is not None and packet.pts < 0
            if priming and start:
                continue
            packet.stream = audio
            packet.time_base = time_base
            packet.pts = packet.dts = (packet.pts or 0) + start
            container.mux(packet)
    container.close()
    return buffer.getvalue()


def _aac_packets(samples: npt.NDArray[np.float32], rate: int) -> list[av.Packet[Any]]:
    """`samples` through an AAC encoder of its own: its packets, timed from 0 (the priming
    packet before it)."""
    encoder = av.CodecContext.create("aac", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = rate
    encoder.layout = "mono"
    encoder.format = "fltp"
    encoder.bit_rate = AAC_BITRATE
    encoder.time_base = Fraction(1, rate)
    packets: list[av.Packet[Any]] = []
    for frame in mono_frames(samples, rate, FRAME_SAMPLES):
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    return packets


def aac_samples(path: Path) -> int:
    """The samples a chapter's AAC file decodes to: its packets' durations, less its
    encoder's priming (the packet before time 0, which the file's edit list skips)."""
    with av.open(str(path)) as source:
        stream = source.streams.audio[0]
        time_base = stream.time_base or Fraction(1, stream.rate)
        ticks = sum(
            packet.duration or 0
            for packet in source.demux(stream)
            if packet.size and (packet.pts is None or packet.pts >= 0)
        )
    return int(ticks * time_base * stream.rate)


def write_m4b(chapters: Sequence[M4bChapter], tags: M4bTags, target: Path) -> float:
    """Write the M4B to `target` (whole or not at all) from the chapters' AAC files, their
    packets copied one after another (no encoding); returns its duration in seconds.

    The first chapter keeps its encoder's priming (1,024 samples before time 0, which the
    M4B's edit list skips, as the chapter's own file does); the others' priming packets are
    left out, so each chapter spans exactly its audio and its marker falls where the chapter
    MP3s put it. The decoder then carries the previous chapter's last frame into the next
    one's first instead of that chapter's priming: a seam of one frame (23 ms), inside room
    tone. A chapter a whole number of frames long (`chapter.master_chapter` makes them so)
    decodes to exactly its length; another would add its last frame's padding."""
    rates = set()
    lengths = []
    for chapter in chapters:
        with av.open(str(chapter.audio)) as source:
            stream = source.streams.audio[0]
            if stream.codec_context.name != "aac":
                raise ValueError(f"{chapter.audio.name} is not AAC")
            rates.add(stream.rate)
        lengths.append(aac_samples(chapter.audio))
    if len(rates) != 1:
        raise ValueError(f"the chapters differ in sample rate: {sorted(rates)}")
    rate = rates.pop()
    time_base = Fraction(1, rate)
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
        with av.open(str(chapters[0].audio)) as first:
            audio = container.add_stream_from_template(first.streams.audio[0])
        audio.time_base = time_base
        picture = _cover_stream(container, tags.cover)
        starts = np.concatenate(([0], np.cumsum(lengths)))
        container.set_chapters(
            [
                {
                    "id": number,
                    "start": int(starts[number - 1]),
                    "end": int(starts[number]),
                    "time_base": time_base,
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
        for number, chapter in enumerate(chapters):
            with av.open(str(chapter.audio)) as source:
                stream = source.streams.audio[0]
                ticks = stream.time_base or time_base
                for copied in source.demux(stream):
                    if not copied.size:
                        continue  # the demuxer's end-of-stream marker
                    duration = int((copied.duration or 0) * ticks * rate)
                    priming = copied.pts is not None and copied.pts < 0
                    if priming and number:
                        continue
                    copied.stream = audio
                    copied.time_base = time_base
                    copied.pts = copied.dts = -duration if priming else position
                    copied.duration = duration
                    container.mux(copied)
                    if not priming:
                        position += duration
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
