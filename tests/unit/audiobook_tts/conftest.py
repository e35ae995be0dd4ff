"""The service's unit tests' one fake engine: a tone a sentence, no speech model."""

from __future__ import annotations

import time

import numpy as np

from audiobook_tts.engines import Audio, Voice


class ToneEngine:
    """A 220 Hz tone a sentence whose length follows the text (and the speed): enough to test
    everything around an engine. It counts what it was asked to say (`said`), can take its
    time (`delay`, seconds a sentence) and offers the voices it is given."""

    name = "tone"
    version = "1"
    sample_rate = 16000
    device = "cpu"

    def __init__(
        self,
        seconds_per_character: float = 0.05,
        delay: float = 0.0,
        voices: tuple[str, ...] = ("alloy",),
    ) -> None:
        self.seconds_per_character = seconds_per_character
        self.delay = delay
        self.voice_ids = voices
        self.said: list[str] = []

    def voices(self) -> list[Voice]:
        return [Voice(id=v, engine="tone", language="en", name=v.title()) for v in self.voice_ids]

    def facts(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "device": self.device}

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        self.said.append(text)
        time.sleep(self.delay)
        seconds = self.seconds_per_character * len(text) / speed
        t = np.arange(int(self.sample_rate * seconds)) / self.sample_rate
        return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), self.sample_rate)
