"""The one small interface every speech engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


class EngineError(Exception):
    """The engine could not synthesise this request (a server-side failure)."""


class EngineRefusal(EngineError):
    """The request cannot be served by this engine as asked (a client error: 400)."""


@dataclass(frozen=True)
class Voice:
    """A voice as the API lists it."""

    id: str
    engine: str
    language: str
    name: str
    gender: str = ""


@dataclass(frozen=True)
class Audio:
    """Samples and their rate, returned together: no engine state is read back afterwards."""

    samples: Samples
    rate: int
    # True when the engine stopped at its length bound, not at its own end: possibly cut short.
    hit_bound: bool = False


class Engine(Protocol):
    """Voices, and text to mono float32 samples in [-1, 1] with their rate."""

    name: str
    version: str
    device: str

    def voices(self) -> list[Voice]: ...

    def synthesize(self, text: str, voice: str, speed: float) -> Audio: ...

    def facts(self) -> dict[str, str]:
        """What /readyz says of the engine: name, version, device, and what else it has."""
        ...
