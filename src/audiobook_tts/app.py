"""The HTTP API: OpenAI-style speech, voices, audiobook chapters, liveness and readiness.

Every request is validated before any audio is made; a bad one gets a 4xx with a JSON
error in OpenAI's shape, never a 200 with empty audio and never a 500.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audiobook_tts import __version__
from audiobook_tts.audio import CONTENT_TYPES, encode, output_rate
from audiobook_tts.chapter import ChapterError, render_chapter
from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines import Engine, EngineError, load_engine

SpeechFormat = Literal["wav", "mp3", "flac", "opus", "pcm"]
ChapterFormat = Literal["mp3", "wav", "flac"]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("input is empty or only whitespace")
    return value


class SpeechRequest(BaseModel):
    model: str = Field(default="tts-1", max_length=100)
    input: str = Field(min_length=1, max_length=4096)
    voice: str = Field(default="alloy", max_length=100)
    response_format: SpeechFormat = "wav"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)

    _input = field_validator("input")(_not_blank)


class ChapterRequest(BaseModel):
    input: str = Field(min_length=1, max_length=100_000)
    voice: str = Field(default="alloy", max_length=100)
    response_format: ChapterFormat = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)

    _input = field_validator("input")(_not_blank)


def error_response(
    status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": kind, "param": param}},
        headers=headers,
    )


class BodyLimit:
    """413 for a body over the limit, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, f"request body over {self.limit} bytes")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _torch_facts() -> dict[str, str]:
    """The torch build in the image, read from its metadata (importing torch takes seconds)."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {"variant": os.environ.get("TORCH_VARIANT", "unknown"), "version": version}


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


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_environ()
    engines: dict[str, Engine] = {}
    admission = Admission(settings.max_concurrency, settings.max_queue)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for name in settings.engines:
            engines[name] = await anyio.to_thread.run_sync(load_engine, name)
        yield

    app = FastAPI(title="audiobook-tts", version=__version__, lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = str(first.get("msg", "invalid request"))
        param = ".".join(location) or None
        if first.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON: {message}")
        return error_response(400, f"{param}: {message}" if param else message, param)

    def voice_index() -> dict[str, Engine]:
        index: dict[str, Engine] = {}
        for engine in engines.values():
            for voice in engine.voices():
                index.setdefault(voice.id, engine)
        return index

    async def synthesise(voice: str, work: Callable[[Engine], Awaitable[Response]]) -> Response:
        """Run `work` on the engine that has `voice`: 400, 503 or 429 first, 500 on its error."""
        index = voice_index()
        engine = index.get(voice)
        if engine is None and engines:
            valid = ", ".join(sorted(index))
            return error_response(
                400, f"voice: unknown voice {voice!r}; valid voices: {valid}", "voice"
            )
        if engine is None:  # no engine has loaded yet
            return error_response(503, "engines are still loading", headers={"Retry-After": "2"})
        if not admission.try_admit():
            return error_response(
                429, "too many requests in flight; retry shortly", headers={"Retry-After": "1"}
            )
        try:
            return await work(engine)
        except EngineError as error:
            return error_response(500, f"synthesis failed: {error}")
        finally:
            admission.release()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "torch": _torch_facts()}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if len(engines) < len(settings.engines):
            return JSONResponse(status_code=503, content={"status": "loading"})
        return JSONResponse(
            content={
                "status": "ready",
                "engines": [
                    {"name": e.name, "version": e.version, "device": e.device}
                    for e in engines.values()
                ],
            }
        )

    @app.get("/v1/voices")
    @app.get("/v1/audio/voices")
    async def voices() -> dict[str, Any]:
        listed = [
            {
                "id": v.id,
                "engine": v.engine,
                "language": v.language,
                "name": v.name,
                "gender": v.gender,
            }
            for engine in engines.values()
            for v in engine.voices()
        ]
        return {"voices": listed}

    @app.post("/v1/audio/speech")
    async def speech(request: SpeechRequest) -> Response:
        if len(request.input) > settings.max_input_chars:
            return error_response(
                400, f"input: at most {settings.max_input_chars} characters", "input"
            )

        async def work(engine: Engine) -> Response:
            samples = await anyio.to_thread.run_sync(
                engine.synthesize,
                request.input,
                request.voice,
                request.speed,
                limiter=admission.limiter,
            )
            body = await anyio.to_thread.run_sync(
                encode, samples, engine.sample_rate, request.response_format
            )
            rate = output_rate(request.response_format, engine.sample_rate)
            return Response(
                content=body,
                media_type=CONTENT_TYPES[request.response_format],
                headers={"X-Sample-Rate": str(rate)},
            )

        return await synthesise(request.voice, work)

    @app.post("/v1/audiobook/chapters")
    async def chapter(request: ChapterRequest) -> Response:
        async def work(engine: Engine) -> Response:
            try:
                samples, rate, levels = await anyio.to_thread.run_sync(
                    render_chapter,
                    engine,
                    request.input,
                    request.voice,
                    request.speed,
                    limiter=admission.limiter,
                )
                body = await anyio.to_thread.run_sync(
                    encode, samples, rate, request.response_format
                )
            except ChapterError as error:
                return error_response(400, f"input: {error}", "input")
            report = {**levels.as_dict(), "format": request.response_format}
            return Response(
                content=body,
                media_type=CONTENT_TYPES[request.response_format],
                headers={"X-Audiobook-Report": json.dumps(report, sort_keys=True)},
            )

        return await synthesise(request.voice, work)

    return app
