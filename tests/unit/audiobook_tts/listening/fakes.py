"""A stand-in engine and listener for checking's logic: the engine's audio says which text it
carries by its length, the listener reads the lengths back (no speech models)."""

from __future__ import annotations

import numpy as np

from audiobook_tts.audio import Samples
from audiobook_tts.engines.base import Audio, Voice
from audiobook_tts.listening.alignment import HeardSegment
from audiobook_tts.listening.listener import CheckPolicy
from audiobook_tts.listening.quality import Dnsmos

RATE = 16000
STEP = 1000  # samples of audio per code: code n is (n + 1) * STEP samples long


class CodedEngine:
    """Says each text as a block of audio whose length codes what the listener will hear;
    the first `bad_takes[text]` takes of a text are heard as mumbling."""

    name = "coded"
    version = "1"
    device = "cpu"

    def __init__(self, bad_takes: dict[str, int] | None = None) -> None:
        self.bad_takes = dict(bad_takes or {})
        self.heard_as: list[str] = []
        self.seeds: list[tuple[str, int]] = []

    def voices(self) -> list[Voice]:
        return [Voice("alloy", self.name, "en", "alloy")]

    def facts(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "device": self.device}

    def synthesize(self, text: str, voice: str, speed: float) -> Audio:
        left = self.bad_takes.get(text, 0)
        self.bad_takes[text] = max(0, left - 1)
        said = "mumble grumble" if left else text
        self.heard_as.append(said)
        code = len(self.heard_as) - 1
        return Audio(np.full((code + 1) * STEP, 0.5, dtype=np.float32), RATE)


class SeededCodedEngine(CodedEngine):
    def synthesize_seeded(self, text: str, voice: str, speed: float, seed: int) -> Audio:
        self.seeds.append((text, seed))
        return self.synthesize(text, voice, speed)


class CodedListener:
    """Hears each block of a CodedEngine's audio as the text its length codes."""

    identity = "coded-listener"

    def __init__(self, engine: CodedEngine, policy: CheckPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or CheckPolicy({"coded": 0.3}, attempts=3)
        self.heard_lengths: list[float] = []

    def hear(self, samples: Samples, rate: int) -> tuple[HeardSegment, ...]:
        loud = np.abs(samples) > 0.25
        edges = np.flatnonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))
        segments = []
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            code = round((end - start) * RATE / rate / STEP) - 1
            segments.append(HeardSegment(self.engine.heard_as[code], start / rate, end / rate))
        return tuple(segments)

    def score(self, samples: Samples, rate: int) -> Dnsmos:
        return Dnsmos(3.5, 3.0, 3.2, 3.9)

    def facts(self) -> dict[str, str]:
        return {"model_sha256": self.identity, "max_wer": "coded=0.3", "attempts": "3"}
