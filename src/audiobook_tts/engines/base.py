"""The one small interface every speech engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


class EngineError(Exception):
    """The engine could not synthesise this request (a server-side failure)."""


@dataclass(frozen=True)
class Voice:
    """A voice as the API lists it."""

    id: str
    engine: str
    language: str
    name: str
    gender: str = ""


class Engine(Protocol):
    """Voices, a sample rate, and text to mono float32 samples in [-1, 1]."""

    name: str
    version: str
    sample_rate: int
    device: str

    def voices(self) -> list[Voice]: ...

    def synthesize(self, text: str, voice: str, speed: float) -> Samples: ...
