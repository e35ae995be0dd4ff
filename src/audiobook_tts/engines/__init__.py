"""Speech engines, loaded by name."""

from __future__ import annotations

from audiobook_tts.engines.base import Engine, EngineError, Samples, Voice
from audiobook_tts.engines.espeak import EspeakEngine

__all__ = ["Engine", "EngineError", "Samples", "Voice", "load_engine"]


def load_engine(name: str) -> Engine:
    """Load one engine by name; unknown names are a configuration error."""
    if name == "espeak":
        return EspeakEngine()
    raise ValueError(f"unknown engine {name!r}; known engines: espeak")
