"""The one small interface every speech engine implements."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from audiobook_tts.audio import Samples


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


class BatchEngine(Engine, Protocol):
    """An engine that synthesises several sentences at once (a GPU model), in their order."""

    batch_size: int

    def synthesize_batch(self, texts: list[str], voice: str, speed: float) -> list[Audio]: ...


@runtime_checkable
class SeededEngine(Engine, Protocol):
    """An engine that samples: the same text and seed give the same audio, another seed another
    take (a sentence that failed its check is made again with the next seed)."""

    def synthesize_seeded(self, text: str, voice: str, speed: float, seed: int) -> Audio: ...


@runtime_checkable
class SeededBatchEngine(BatchEngine, Protocol):
    """A batching engine that samples, each sentence of a batch with a seed of its own."""

    def synthesize_batch_seeded(
        self, texts: list[str], voice: str, speed: float, seeds: list[int]
    ) -> list[Audio]: ...


def sentence_seed(key: str, attempt: int = 0) -> int:
    """The seed of a sentence's `attempt`-th try (0: the first), from the sentence's key (its
    text, voice and chapter key) and the attempt: retries are reproducible, never random."""
    digest = hashlib.sha256(f"{key}\0{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits: fits torch's and numpy's seeds


class StreamingEngine(Engine, Protocol):
    """An engine that hands out a sentence's audio in chunks while it makes it."""

    def stream(self, text: str, voice: str, speed: float) -> Iterator[Audio]: ...


def audio_chunks(
    engine: Engine, text: str, voice: str, speed: float
) -> Generator[Audio, None, None]:
    """`text` as the engine can give it: chunk by chunk where it streams, else whole."""
    stream = getattr(engine, "stream", None)
    if stream is not None:
        yield from stream(text, voice, speed)
    else:
        yield engine.synthesize(text, voice, speed)


def synthesize_all(
    engine: Engine,
    texts: list[str],
    voice: str,
    speed: float,
    done: Callable[[int], None] | None = None,
) -> list[Audio]:
    """Every text, in batches where the engine has them; the audio in the order given.

    Batches group sentences of similar length, so that short ones do not wait on padding
    behind long ones; `done(count)` follows the progress.
    """
    size = getattr(engine, "batch_size", 1)
    batch = getattr(engine, "synthesize_batch", None)
    results: list[Audio | None] = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    finished = 0
    for start in range(0, len(order), max(1, size)):
        group = order[start : start + max(1, size)]
        if batch is not None and len(group) > 1:
            audio = batch([texts[index] for index in group], voice, speed)
        else:
            audio = [engine.synthesize(texts[index], voice, speed) for index in group]
        for index, item in zip(group, audio, strict=True):
            results[index] = item
        finished += len(group)
        if done is not None:
            done(finished)
    return [item for item in results if item is not None]
