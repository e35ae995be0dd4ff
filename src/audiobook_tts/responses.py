"""Error bodies in OpenAI's shape: `{"error": {"message", "type", "param"}}`."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from audiobook_tts.synthesis import Refused


def error_response(
    status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": kind, "param": param}},
        headers=headers,
    )


def refusal_response(refused: Refused) -> JSONResponse:
    return error_response(refused.status, refused.message, refused.param, refused.headers or None)
