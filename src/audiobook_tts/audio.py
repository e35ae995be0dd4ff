"""Encoding samples into the formats the API offers, and the measurements audiobooks need."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile
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
        self.file.write(np.clip(samples, -1.0, 1.0))
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
