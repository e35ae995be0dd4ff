"""Encoding samples into the formats the API offers."""

from __future__ import annotations

import io
import wave

import numpy as np

from audiobook_tts.engines.base import Samples

CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/L16",
}


def to_int16(samples: Samples) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def encode(samples: Samples, sample_rate: int, response_format: str) -> bytes:
    if response_format == "wav":
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(sample_rate)
            handle.writeframes(to_int16(samples))
        return buffer.getvalue()
    if response_format == "pcm":
        return to_int16(samples)
    raise ValueError(f"unsupported format {response_format!r}")
