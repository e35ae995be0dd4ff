"""The OpenAPI document, made to say what the service does: a bad request is a 400 (not
FastAPI's 422) in OpenAI's error shape; 413, 429, 500 and 503 are documented; audio comes
back as the media type of its format; voices and models are listed once the engines load."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from audiobook_tts.audio import CONTENT_TYPES


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("A bad request: the field at fault in `param`"),
    413: _error("The body is over the size limit"),
    429: _error("Too many requests in flight; `Retry-After` says when to retry"),
    500: _error("The engine failed on this request"),
    503: _error("The engine is still loading; `Retry-After` says when to retry"),
}


def book_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The errors of the book and job routes."""
    described = {
        400: ERRORS[400],
        404: _error("No such job, or no such file of the job (yet)"),
        413: _error("The book is over AUDIOBOOK_TTS_MAX_BOOK_BYTES"),
        503: _error("No data folder (AUDIOBOOK_TTS_DATA), or the engine is still loading"),
    }
    return {status: described[status] for status in statuses}


def check_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The errors of the check routes."""
    described = {
        400: _error(
            "A book or audio that cannot be read, silent audio, or not one recording a chapter"
        ),
        404: _error("No such check, or no report (yet)"),
        413: _error(
            "Uploads over AUDIOBOOK_TTS_MAX_BOOK_BYTES, or audio over "
            "AUDIOBOOK_TTS_MAX_CHECK_SECONDS"
        ),
        503: _error("No listener in this service, or no data folder (AUDIOBOOK_TTS_DATA)"),
    }
    return {status: described[status] for status in statuses}


def file_responses() -> dict[int | str, dict[str, Any]]:
    """A job's files: chapter MP3s, the M4B, book.json."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    media = {kind: binary for kind in ("audio/mpeg", "audio/mp4", "application/json")}
    return {200: {"description": "The file", "content": media}, **book_responses(404, 503)}


def audio_responses(formats: tuple[str, ...]) -> dict[int | str, dict[str, Any]]:
    """200 with each format's media type (binary), and every error."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    media = {CONTENT_TYPES[name]: binary for name in formats}
    return {200: {"description": "The audio", "content": media}, **ERRORS}


def patch(schema: dict[str, Any], voices: list[str], models: list[str]) -> dict[str, Any]:
    """Drop the 422s and their components; list voices and models where they are known."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            ok = responses.get("200", {})
            if "content" in ok and any(key.startswith("audio/") for key in ok["content"]):
                ok["content"].pop("application/json", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for request in ("SpeechRequest", "ChapterRequest"):
        properties = components.get(request, {}).get("properties", {})
        if voices and "voice" in properties:
            properties["voice"]["enum"] = sorted(set(voices))
        if models and "model" in properties:
            properties["model"]["enum"] = models
    return schema
