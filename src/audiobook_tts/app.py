"""The HTTP API: OpenAI-style speech, voices, audiobook chapters, liveness and readiness.

Every request is validated before any audio is made; a bad one gets a 4xx with a JSON
error in OpenAI's shape, never a 200 with empty audio and never a 500. Engines that load
in a second (espeak) are loaded before the first request; a neural model loads after the
server is up (/readyz says 503 until then), and if it cannot load, the service stops.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audiobook_tts import __version__
from audiobook_tts.books.jobs import BookJobs, JobStore
from audiobook_tts.books.queue import RedisQueue
from audiobook_tts.books.worker import EmbeddedWorker, LocalQueue
from audiobook_tts.config import ServiceSettings
from audiobook_tts.engines import Engine, EngineError, load_engine
from audiobook_tts.keys import ApiKeys, KeyRing
from audiobook_tts.listening.checkjobs import CheckJobs
from audiobook_tts.listening.listener import Hearing
from audiobook_tts.openapi import patch
from audiobook_tts.responses import error_response
from audiobook_tts.routers import books, chapters, checks, health, speech
from audiobook_tts.synthesis import Synthesis

# Loaded after the server starts: minutes on a CPU for a real model.
BACKGROUND_ENGINES = ("csm",)
# A book upload's form carries a lexicon and the fields beside the book.
FORM_ALLOWANCE = 2 * 1024 * 1024
Loader = Callable[[str, ServiceSettings], Engine]
# A refused body is read to its end (and dropped) up to this much, for so long, then closed.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0
OPEN_WARNING = (
    "warning: AUDIOBOOK_TTS_API_KEYS is not set: every route and every book job is open to "
    "anyone who reaches this port"
)


class BodyLimit:
    """413 for a body over the limit, by its Content-Length or as it streams in; a path may
    have a limit of its own (a book upload)."""

    def __init__(self, app: ASGIApp, limit: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.limits = limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        # Read what the client still sends (up to a bound), as nginx's lingering close does:
        # a client that writes its whole body before it reads (Python's urllib) then reads
        # the 413 instead of a connection reset. A client waiting on `100-continue` has sent
        # nothing: it is answered at once.
        headers = dict(scope.get("headers") or [])
        if headers.get(b"expect", b"").lower() != b"100-continue":
            await drain(receive)
        response = error_response(413, f"request body over {limit} bytes")
        await response(scope, receive, send)


async def drain(receive: Receive) -> None:
    """The rest of a request's body read and dropped, at most DRAIN_BYTES or DRAIN_SECONDS."""
    drained = 0
    with anyio.move_on_after(DRAIN_SECONDS):
        while drained < DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


class _TooLarge(Exception):
    pass


def stop_the_service(message: str) -> None:
    """An engine that cannot load: one line, and the process ends with a non-zero code."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(3)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route answers for this request's path (asked of each route the way
    the router asks it)."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]


def create_app(
    settings: ServiceSettings | None = None,
    loader: Loader = load_engine,
    on_load_failure: Callable[[str], None] = stop_the_service,
    listener: Hearing | None = None,
) -> FastAPI:
    """The service over `settings`' engines; `listener` (loaded by the caller, as `serve`
    does before the server starts) hears chapters and books as they are made."""
    settings = settings or ServiceSettings.from_environ()
    synthesis = Synthesis(settings, listener)
    keys = KeyRing.from_setting(settings.api_keys)
    jobs: BookJobs | None = None
    worker: EmbeddedWorker | None = None
    redis_queue: RedisQueue | None = None
    if settings.data and settings.queue:
        redis_queue = RedisQueue(settings.queue, settings.queue_heartbeat)
        store = JobStore(Path(settings.data), settings.max_book_bytes, redis_queue.locker)
        redis_queue.store = store
        jobs = BookJobs(store, redis_queue)
    elif settings.data:
        store = JobStore(Path(settings.data), settings.max_book_bytes)
        local = LocalQueue()
        jobs = BookJobs(store, local)
        worker = EmbeddedWorker(store, local)
    check_jobs = (
        CheckJobs(Path(settings.data), settings.max_book_bytes, settings.max_check_seconds)
        if settings.data and listener is not None
        else None
    )

    async def load(name: str) -> None:
        try:
            synthesis.engines[name] = await anyio.to_thread.run_sync(loader, name, settings)
        except EngineError as error:
            on_load_failure(f"the {name} engine cannot load: {error}")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if keys is None:
            print(OPEN_WARNING, file=sys.stderr, flush=True)
        if redis_queue is not None:
            problem = await anyio.to_thread.run_sync(redis_queue.problem)
            if problem is not None:
                print(
                    f"warning: {problem}; book submits answer 503 until it does",
                    file=sys.stderr,
                    flush=True,
                )
        async with anyio.create_task_group() as background:
            for name in settings.engines:
                if name in BACKGROUND_ENGINES:
                    background.start_soon(load, name)
                else:
                    await load(name)
            if worker is not None:
                background.start_soon(worker.serve, synthesis)
            if check_jobs is not None and listener is not None:
                # The one loop that hears checks, in a thread of its own (not counted against
                # the synthesis limit: it hears, it does not speak).
                background.start_soon(
                    partial(anyio.to_thread.run_sync, abandon_on_cancel=True),
                    check_jobs.work,
                    listener,
                )
            yield
            if worker is not None:
                worker.stopping.set()  # a running book stops at its next sentence, resumable
            if check_jobs is not None:
                check_jobs.stopping.set()  # a running check stops after its chapter
            background.cancel_scope.cancel()

    app = FastAPI(title="audiobook-tts", version=__version__, lifespan=lifespan)
    app.state.synthesis = synthesis
    app.state.book_jobs = jobs
    app.state.check_jobs = check_jobs
    if keys is not None:
        app.add_middleware(ApiKeys, keys=keys)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        limits={
            "/v1/audiobook/books": settings.max_book_bytes + FORM_ALLOWANCE,
            "/v1/audiobook/checks": settings.max_book_bytes + FORM_ALLOWANCE,
        },
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own (a body it cannot parse, 404, 405) in the one error shape too.
        headers = dict(error.headers) if error.headers else {}
        if error.status_code == 405:
            # Starlette names the methods of the first route that matched the path alone; a
            # path served by two routes (a POST and a GET) allows both.
            headers["Allow"] = ", ".join(allowed_methods(app, request.scope))
        return error_response(error.status_code, str(error.detail), headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = str(first.get("msg", "invalid request"))
        param = ".".join(location) or None
        if first.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON: {message}")
        return error_response(400, f"{param}: {message}" if param else message, param)

    app.include_router(health.router)
    app.include_router(speech.router)
    app.include_router(chapters.router)
    app.include_router(books.router)
    # Without a listener the check routes answer 503 with how to get one, and the OpenAPI
    # document does not offer them.
    app.include_router(checks.router, include_in_schema=listener is not None)

    def openapi_document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        voices = [voice.id for engine in synthesis.engines.values() for voice in engine.voices()]
        patched = patch(schema, voices, synthesis.models() if synthesis.ready else [])
        if synthesis.ready:  # complete only once every engine is there to list its voices
            app.openapi_schema = patched
        return patched

    app.openapi = openapi_document  # type: ignore[method-assign]
    return app
