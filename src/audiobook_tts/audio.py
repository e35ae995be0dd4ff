"""Encoding samples into the formats the API offers, and the measurements audiobooks need."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import soundfile
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

# Mono float32 samples in [-1, 1]: what every engine returns and every function here takes.
Samples = npt.NDArray[np.float32]


FORMATS = ("wav", "mp3", "flac", "opus", "pcm")
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg; codecs=opus",
    "pcm": "audio/pcm",
}
# Opus only runs at 8, 12, 16, 24 or 48 kHz; OpenAI's pcm is 24 kHz.
OPUS_RATE = 48000
PCM_RATE = 24000


def resample(samples: Samples, rate: int, target: int) -> Samples:
    if rate == target:
        return samples
    divisor = math.gcd(rate, target)
    result = resample_poly(samples, target // divisor, rate // divisor)
    return np.asarray(result, dtype=np.float32)


def output_rate(response_format: str, rate: int) -> int:
    if response_format == "opus":
        return OPUS_RATE
    if response_format == "pcm":
        return PCM_RATE
    return rate


def limit(samples: Samples, rate: int, ceiling: float, peaks: np.ndarray | None = None) -> Samples:
    """A look-ahead peak limiter: gain dips smoothly around the peaks above the ceiling
    (`peaks`: each sample's true peak, where known; else its magnitude). The gain is worked
    out around those peaks alone (it is 1 elsewhere): over the whole of a 14-minute chapter
    it was seconds of each mastering pass."""
    magnitude = np.abs(samples) if peaks is None else peaks
    window = max(1, int(0.005 * rate))
    limited = np.array(samples, dtype=np.float32)
    over = np.flatnonzero(magnitude > ceiling)
    if over.size:
        # Past `reach` from a peak the two filters below see nothing but a gain of 1.
        reach = 2 * window + 2
        breaks = np.flatnonzero(np.diff(over) > 2 * reach)
        firsts = np.concatenate(([over[0]], over[breaks + 1]))
        lasts = np.concatenate((over[breaks], [over[-1]]))
        for first, last in zip(firsts, lasts, strict=True):
            start, end = max(0, int(first) - reach), min(samples.size, int(last) + reach + 1)
            part = np.asarray(magnitude[start:end], dtype=np.float64)
            gain = np.minimum(1.0, ceiling / np.maximum(part, 1e-9))
            gain = minimum_filter1d(gain, size=2 * window + 1)
            gain = uniform_filter1d(gain, size=window)
            limited[start:end] = samples[start:end] * gain
    # The smoothing can leave a sample a hair above the ceiling: clamp those exactly.
    clamped: np.ndarray = np.clip(limited, -ceiling, ceiling)
    return clamped.astype(np.float32)


# EBU R 128 and the streaming platforms: true peaks at most -1 dBTP before lossy encoding,
# which overshoots sample peaks (the tiny csm at full scale decoded to 1.14 in MP3, 1.37 in
# Opus: clipping in every player).
TRUE_PEAK_CEILING_DBTP = -1.0
LOSSY_FORMATS = ("mp3", "opus")
OVERSAMPLING = 4


def true_peaks(samples: Samples) -> np.ndarray:
    """Each sample's peak between it and the next, from a 4x oversampled signal (ITU-R
    BS.1770's way of estimating the peak a reconstructing converter will produce)."""
    upsampled = np.abs(resample_poly(samples.astype(np.float64), OVERSAMPLING, 1))
    grouped = upsampled[: samples.size * OVERSAMPLING].reshape(samples.size, OVERSAMPLING)
    peaks: np.ndarray = np.maximum(grouped.max(axis=1), np.abs(samples))
    return peaks


def limit_true_peak(
    samples: Samples, rate: int, ceiling_dbtp: float = TRUE_PEAK_CEILING_DBTP
) -> Samples:
    """`samples` with their true peaks under the ceiling; untouched when they are already."""
    if samples.size == 0:
        return samples
    ceiling = 10 ** (ceiling_dbtp / 20)
    # Between samples a band-limited signal rises at most about 3 dB over its sample peak:
    # audio 3 dB under the ceiling (a mastered chapter, at -4 dBFS) needs no oversampling.
    if float(np.abs(samples).max()) <= ceiling * 10 ** (-3 / 20):
        return samples
    peaks = true_peaks(samples)
    if float(peaks.max()) <= ceiling:
        return samples
    return limit(samples, rate, ceiling, peaks)


STREAM_FORMATS = ("pcm", "wav", "mp3")
MP3_OPTIONS: dict[str, Any] = {
    # Constant bitrate at the encoder's highest setting (320 kbps at 44.1 kHz).
    "format": "MP3",
    "subtype": "MPEG_LAYER_III",
    "bitrate_mode": "CONSTANT",
    "compression_level": 0.0,
}


class _StreamSink(io.RawIOBase):
    """A write-only file for libsndfile that hands on what was written since the last take;
    a rewrite of bytes already handed on (a header filled in at close) is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.fresh = bytearray()
        self.written = 0
        self.position = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.written}[whence]
        self.position = max(0, base + offset)
        return self.position

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if self.position >= self.written:
            self.fresh += chunk
            self.written += len(chunk)
        self.position += len(chunk)
        return len(chunk)

    def take(self) -> bytes:
        taken, self.fresh = bytes(self.fresh), bytearray()
        return taken


class Mp3Stream:
    """MP3 made as samples arrive: LAME (through libsndfile) hands out whole frames as it
    encodes, so a stream's bytes join into one file; `finish` flushes the last frames."""

    def __init__(self, rate: int) -> None:
        self.sink = _StreamSink()
        self.file = soundfile.SoundFile(self.sink, "w", rate, 1, **MP3_OPTIONS)

    def write(self, samples: Samples) -> bytes:
        # A chunk at a time: its true peaks limited within it (the look-ahead ends with it).
        self.file.write(np.clip(limit_true_peak(samples, self.file.samplerate), -1.0, 1.0))
        return self.sink.take()

    def finish(self) -> bytes:
        self.file.close()
        return self.sink.take()


def pcm16(samples: Samples) -> bytes:
    """Little-endian 16-bit PCM of samples in [-1, 1]."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def streaming_wav_header(rate: int) -> bytes:
    """A WAV header for 16-bit mono PCM of unknown length (sizes at their maximum), as
    OpenAI's streamed WAV: players and soundfile read the data up to the stream's end."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + unknown.to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + rate.to_bytes(4, "little")
        + (rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + unknown.to_bytes(4, "little")
    )


def encode(samples: Samples, sample_rate: int, response_format: str) -> bytes:
    """Mono float samples in [-1, 1] to one file of the format, at its output rate."""
    if response_format not in FORMATS:
        raise ValueError(f"unsupported format {response_format!r}")
    rate = output_rate(response_format, sample_rate)
    data = np.clip(resample(samples, sample_rate, rate), -1.0, 1.0)
    if response_format == "pcm":
        return (data * 32767.0).astype("<i2").tobytes()
    if response_format not in LOSSY_FORMATS:
        return _write(data, rate, response_format)
    limited = limit_true_peak(data, rate)
    encoded = _write(limited, rate, response_format)
    # Loud, dense audio can still decode over full scale (Opus most): lower it by what it
    # overshot and encode again. Audio under the ceiling (mastered chapters) is never touched.
    for _ in range(3):
        if limited is data or (peak := decoded_peak(encoded)) <= DECODED_PEAK_LIMIT:
            break
        limited = (limited * np.float32(DECODED_PEAK_LIMIT / peak)).astype(np.float32)
        encoded = _write(limited, rate, response_format)
    return encoded


# A long recording's MP3 is encoded in parts of at least this long, at once.
MP3_PART_SECONDS = 60.0
# Parts encoded at once for one recording: a book finishes several chapters at a time, each
# with its AAC (one core) beside its MP3; more threads only take cores from those.
MP3_THREADS = 2
# A chapter's MP3: 320 kbps CBR from LAME at -q 7 (FFmpeg's compression_level), through
# PyAV. At 320 kbps its cheaper psychoacoustics are not heard, and a core encodes 1.5-1.8x
# the audio libsndfile's LAME (-q 2, `encode`'s) does: the MP3 was most of a book's CPU time.
MP3_BITRATE = 320_000
MP3_COMPRESSION_LEVEL = 7
# Samples handed to the encoder a call: 16 MP3 frames.
MP3_BLOCK = 16 * 1152


def mono_frames(samples: Samples, rate: int, block: int) -> Iterator[av.AudioFrame]:
    """`samples` as PyAV's mono float frames of `block` samples, each timed by its first."""
    for start in range(0, samples.size, block):
        part = np.ascontiguousarray(samples[start : start + block], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def encode_mp3_frames(samples: Samples, rate: int) -> bytes:
    """`samples` as bare CBR MP3 frames (LAME, `MP3_BITRATE`, -q `MP3_COMPRESSION_LEVEL`):
    no ID3 tag and no Xing/Info frame, so that parts join into one stream. LAME lets go of
    the GIL, so parts encode at once in threads."""
    buffer = io.BytesIO()
    # Neither tag: an Info frame in a later part would tell a player the file ends there.
    with av.open(
        buffer, "w", format="mp3", options={"write_xing": "0", "id3v2_version": "0"}
    ) as out:
        stream = out.add_stream(
            "libmp3lame",
            rate=rate,
            layout="mono",
            options={"compression_level": str(MP3_COMPRESSION_LEVEL)},
        )
        stream.bit_rate = MP3_BITRATE
        for frame in mono_frames(samples, rate, MP3_BLOCK):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def part_bounds(size: int, cuts: Sequence[int], shortest: int, multiple: int = 1) -> list[int]:
    """Where a recording of `size` samples is cut into parts: at some of `cuts` (each moved
    back to a multiple of `multiple`), each part at least `shortest` long; [0, size] for one."""
    chosen: list[int] = []
    for cut in sorted(cut - cut % multiple for cut in cuts):
        if cut - (chosen[-1] if chosen else 0) >= shortest and size - cut >= shortest:
            chosen.append(cut)
    return [0, *chosen, size]


def encode_mp3_parts(samples: Samples, rate: int, cuts: Sequence[int]) -> bytes:
    """A long recording (a mastered chapter) as one CBR MP3 (`encode_mp3_frames`), encoded in
    parts, `MP3_THREADS` at once, cut at some of `cuts` (sample positions in quiet pauses) so
    that each part is at least `MP3_PART_SECONDS` long. Bare CBR frames join into one valid
    stream; each part adds its encoder's delay and padding (under 60 ms) of silence at its
    cut, which the pause there hides. Audio over the true-peak ceiling is limited first (a
    mastered chapter is under it, and is not touched)."""
    samples = limit_true_peak(np.clip(samples, -1.0, 1.0), rate)
    bounds = part_bounds(samples.size, cuts, int(MP3_PART_SECONDS * rate))
    if len(bounds) == 2:
        return encode_mp3_frames(samples, rate)
    with ThreadPoolExecutor(min(MP3_THREADS, len(bounds) - 1), thread_name_prefix="mp3") as pool:
        return b"".join(
            pool.map(
                lambda edge: encode_mp3_frames(samples[edge[0] : edge[1]], rate),
                itertools.pairwise(bounds),
            )
        )


# A decoded lossy file's peak must stay under full scale, with a hair to spare for players
# that decode with other rounding.
DECODED_PEAK_LIMIT = 0.98


def decoded_peak(data: bytes) -> float:
    """The largest sample of a lossy file as FFmpeg (PyAV) decodes it."""
    peak = 0.0
    with av.open(io.BytesIO(data), "r") as container:
        for frame in container.decode(audio=0):
            peak = max(peak, float(np.abs(frame.to_ndarray()).max(initial=0.0)))
    return peak


def _write(data: Samples, rate: int, response_format: str) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {}
    if response_format == "wav":
        options = {"format": "WAV", "subtype": "PCM_16"}
    elif response_format == "flac":
        options = {"format": "FLAC", "subtype": "PCM_16"}
    elif response_format == "opus":
        options = {"format": "OGG", "subtype": "OPUS"}
    elif response_format == "mp3":
        options = MP3_OPTIONS
    soundfile.write(buffer, data, rate, **options)
    return buffer.getvalue()


@dataclass(frozen=True)
class LevelReport:
    """The figures ACX checks, measured on the samples that are delivered."""

    duration_seconds: float
    sample_rate: int
    rms_db: float
    peak_dbfs: float
    noise_floor_db: float

    def meets_acx(self) -> bool:
        return (
            -23.0 <= self.rms_db <= -18.0
            and self.peak_dbfs <= -3.0
            and (self.noise_floor_db <= -60.0)
        )

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "duration_seconds": round(self.duration_seconds, 3),
            "sample_rate": self.sample_rate,
            "rms_db": round(self.rms_db, 2),
            "peak_dbfs": round(self.peak_dbfs, 2),
            "noise_floor_db": round(self.noise_floor_db, 2),
            "meets_acx": self.meets_acx(),
        }


def db(value: float) -> float:
    return 20.0 * math.log10(max(value, 1e-10))


def rms(samples: Samples) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def noise_floor(samples: Samples, rate: int, window_seconds: float = 0.5) -> float:
    """RMS of the quietest half second, as ACX's checker reads the noise floor."""
    window = max(1, int(rate * window_seconds))
    if samples.size < window:
        return rms(samples)
    # Window sums from a running total: linear in the length, however long the chapter.
    running = np.concatenate(([0.0], np.cumsum(np.square(samples, dtype=np.float64))))
    sums = (running[window:] - running[:-window])[:: max(1, window // 4)]
    return float(np.sqrt(max(0.0, float(sums.min())) / window))


def measure(samples: Samples, rate: int) -> LevelReport:
    return LevelReport(
        duration_seconds=samples.size / rate,
        sample_rate=rate,
        rms_db=db(rms(samples)),
        peak_dbfs=db(float(np.max(np.abs(samples))) if samples.size else 0.0),
        noise_floor_db=db(noise_floor(samples, rate)),
    )
