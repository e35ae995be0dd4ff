"""Decoding and measuring audio the way a listener's tools would (not the service's own code)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyloudnorm
import soundfile

# The response formats the OpenAI SDK's speech call takes (its own Literal).
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


@dataclass(frozen=True)
class Decoded:
    samples: np.ndarray
    rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return float(self.samples.shape[0] / self.rate)


def decode(body: bytes, response_format: str, pcm_rate: int = 24000) -> Decoded:
    if response_format == "pcm":
        samples = np.frombuffer(body, dtype="<i2").astype(np.float64) / 32768.0
        return Decoded(samples, pcm_rate, 1)
    data, rate = soundfile.read(io.BytesIO(body), dtype="float64", always_2d=True)
    return Decoded(data[:, 0], int(rate), int(data.shape[1]))


def db(value: float) -> float:
    return 20 * math.log10(max(value, 1e-12))


def rms_db(samples: np.ndarray) -> float:
    return db(float(np.sqrt(np.mean(samples**2))))


def peak_dbfs(samples: np.ndarray) -> float:
    return db(float(np.max(np.abs(samples))))


def clipped_fraction(samples: np.ndarray) -> float:
    return float(np.mean(np.abs(samples) >= 0.999))


def noise_floor_db(samples: np.ndarray, rate: int) -> float:
    """RMS of the quietest 0.5 s window (ACX's noise floor)."""
    window = int(rate * 0.5)
    running = np.concatenate(([0.0], np.cumsum(samples**2)))
    sums = (running[window:] - running[:-window])[:: window // 4]
    return db(float(np.sqrt(max(sums.min(), 0.0) / window)))


def loudness_lufs(samples: np.ndarray, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples))


def quiet_edges(samples: np.ndarray, rate: int, threshold_db: float = -50.0) -> tuple[float, float]:
    """Seconds before the first and after the last sample louder than the threshold."""
    loud = np.flatnonzero(np.abs(samples) > 10 ** (threshold_db / 20))
    if loud.size == 0:
        return samples.size / rate, 0.0
    return loud[0] / rate, (samples.size - 1 - loud[-1]) / rate


_MP3_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0]
_MP3_RATES = [44100, 48000, 32000, 0]


def mp3_frame_bitrates(body: bytes) -> list[int]:
    """The bitrate (kbps) of every MPEG-1 layer III frame, walking the frame headers."""
    position = 0
    if body[:3] == b"ID3":
        size = (body[6] << 21) | (body[7] << 14) | (body[8] << 7) | body[9]
        position = 10 + size
    rates: list[int] = []
    while position + 4 <= len(body):
        header = int.from_bytes(body[position : position + 4], "big")
        if header >> 21 != 0x7FF or (header >> 19) & 3 != 3 or (header >> 17) & 3 != 1:
            position += 1
            continue
        bitrate = _MP3_BITRATES[(header >> 12) & 0xF]
        rate = _MP3_RATES[(header >> 10) & 3]
        padding = (header >> 9) & 1
        if not bitrate or not rate:
            position += 1
            continue
        rates.append(bitrate)
        position += 144 * bitrate * 1000 // rate + padding
    return rates
