"""Which engine serves a request, whether it may run now, and what its failure means.

The routers only translate HTTP; this class holds the loaded engines, picks one by the
request's `model`, checks the voice against it, admits at most so many syntheses at once
(429 beyond), and turns an engine's failure into a refusal with a status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio

from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines import Engine, EngineError, EngineRefusal
from audiobook_tts.listening.listener import Hearing

T = TypeVar("T")
# The request's `model`: an engine's name, an alias, or OpenAI's names for the first engine.
MODEL_ALIASES = {"csm-1b": "csm"}
FIRST_ENGINE_MODELS = ("tts-1", "tts-1-hd")


@dataclass
class Refused(Exception):
    """A request that gets an error instead of audio: status, message, the field at fault."""

    status: int
    message: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Admission:
    """At most `running` syntheses at once and `waiting` queued; beyond that, 429 at once."""

    def __init__(self, running: int, waiting: int) -> None:
        self.limiter = anyio.CapacityLimiter(running)
        self.capacity = running + waiting
        self.admitted = 0

    def try_admit(self) -> bool:
        if self.admitted >= self.capacity:
            return False
        self.admitted += 1
        return True

    def release(self) -> None:
        self.admitted -= 1


class Synthesis:
    def __init__(self, settings: ServiceSettings, listener: Hearing | None = None) -> None:
        self.settings = settings
        # Hears chapters and books as they are made (None: not installed, or off).
        self.listener = listener
        self.engines: dict[str, Engine] = {}
        self.admission = Admission(settings.max_concurrency, settings.max_queue)

    @property
    def ready(self) -> bool:
        return all(name in self.engines for name in self.settings.engines)

    def models(self) -> list[str]:
        aliases = [alias for alias, name in MODEL_ALIASES.items() if name in self.settings.engines]
        return [*FIRST_ENGINE_MODELS, *self.settings.engines, *aliases]

    def engine_name(self, model: str) -> str:
        if model in FIRST_ENGINE_MODELS:
            return self.settings.engines[0]
        name = MODEL_ALIASES.get(model, model)
        if name not in self.settings.engines:
            raise Refused(
                400, f"model: unknown model {model!r}; models: {', '.join(self.models())}", "model"
            )
        return name

    def engine(self, model: str) -> Engine:
        name = self.engine_name(model)
        engine = self.engines.get(name)
        if engine is None:
            raise Refused(503, f"the {name} engine is still loading", headers={"Retry-After": "2"})
        return engine

    def check_voice(self, engine: Engine, voice: str) -> None:
        voices = {item.id for item in engine.voices()}
        if voice not in voices:
            raise Refused(
                400,
                f"voice: unknown voice {voice!r} for the {engine.name} engine; "
                f"valid voices: {', '.join(sorted(voices))}",
                "voice",
            )

    async def run(self, model: str, voice: str, work: Callable[[Engine], Awaitable[T]]) -> T:
        """`work` on the engine for `model`, once admitted; a refusal (4xx/5xx) otherwise."""
        engine = self.engine(model)
        self.check_voice(engine, voice)
        if not self.admission.try_admit():
            raise Refused(
                429, "too many requests in flight; retry shortly", headers={"Retry-After": "1"}
            )
        try:
            return await work(engine)
        except EngineRefusal as error:
            message = str(error)
            raise Refused(400, message, message.split(":", 1)[0] or None) from error
        except EngineError as error:
            raise Refused(500, f"synthesis failed: {error}") from error
        finally:
            self.admission.release()

    def admit_stream(self, model: str, voice: str) -> Engine:
        """Check and admit a streamed request now (a refusal comes before any audio); the
        stream must call `admission.release()` when it ends, however it ends."""
        engine = self.engine(model)
        self.check_voice(engine, voice)
        if not self.admission.try_admit():
            raise Refused(
                429, "too many requests in flight; retry shortly", headers={"Retry-After": "1"}
            )
        return engine

    async def in_thread(self, function: Callable[..., T], *args: object) -> T:
        """A blocking call, counted against the running limit."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.admission.limiter)
