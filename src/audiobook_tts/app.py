"""The HTTP API: OpenAI-style speech, voices, liveness and readiness."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator

from audiobook_tts import __version__
from audiobook_tts.audio import CONTENT_TYPES, encode
from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines import Engine, EngineError, load_engine


class SpeechRequest(BaseModel):
    model: str = "tts-1"
    input: str = Field(min_length=1, max_length=4096)
    voice: str = "alloy"
    response_format: Literal["wav", "pcm"] = "wav"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)

    @field_validator("input")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input is empty or only whitespace")
        return value


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": kind, "param": param}},
    )


def _torch_facts() -> dict[str, str]:
    """The torch build in the image, read from its metadata (importing torch takes seconds)."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {"variant": os.environ.get("TORCH_VARIANT", "unknown"), "version": version}


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_environ()
    engines: dict[str, Engine] = {}
    limiter = anyio.CapacityLimiter(settings.max_concurrency)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for name in settings.engines:
            engines[name] = await anyio.to_thread.run_sync(load_engine, name)
        yield

    app = FastAPI(title="audiobook-tts", version=__version__, lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = str(first.get("msg", "invalid request"))
        param = ".".join(location) or None
        return error_response(400, f"{param}: {message}" if param else message, param)

    def voice_index() -> dict[str, Engine]:
        index: dict[str, Engine] = {}
        for engine in engines.values():
            for voice in engine.voices():
                index.setdefault(voice.id, engine)
        return index

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
        index = voice_index()
        engine = index.get(request.voice)
        if engine is None:
            valid = ", ".join(sorted(index))
            return error_response(
                400, f"voice: unknown voice {request.voice!r}; valid voices: {valid}", "voice"
            )
        try:
            samples = await anyio.to_thread.run_sync(
                engine.synthesize, request.input, request.voice, request.speed, limiter=limiter
            )
        except EngineError as error:
            return error_response(500, f"synthesis failed: {error}")
        body = encode(samples, engine.sample_rate, request.response_format)
        return Response(content=body, media_type=CONTENT_TYPES[request.response_format])

    return app
