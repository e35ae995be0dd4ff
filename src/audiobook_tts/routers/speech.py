"""OpenAI-style speech (`POST /v1/audio/speech`) and the voices of every engine."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictBool

from audiobook_tts.audio import (
    CONTENT_TYPES,
    PCM_RATE,
    STREAM_FORMATS,
    encode,
    output_rate,
)
from audiobook_tts.engines import Engine
from audiobook_tts.openapi import audio_responses
from audiobook_tts.responses import error_response, refusal_response
from audiobook_tts.streaming import speech_stream
from audiobook_tts.synthesis import Refused, Synthesis

router = APIRouter()
SpeechFormat = Literal["wav", "mp3", "flac", "opus", "pcm"]
SPEECH_FORMATS = ("wav", "mp3", "flac", "opus", "pcm")


class SpeechRequest(BaseModel):
    model: str = Field(default="tts-1", max_length=100)
    # At least one character that is not white space (the schema says so too).
    input: str = Field(min_length=1, max_length=4096, pattern=r"\S")
    voice: str = Field(default="alloy", max_length=100)
    response_format: SpeechFormat = "wav"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    # Send audio as it is made (pcm, wav or mp3; csm: every few frames), as Kokoro-FastAPI does.
    # Strict: 0 or "yes" is a 400, as the schema's boolean says (schemathesis found 0 let in).
    stream: StrictBool = False


@router.get("/v1/voices")
@router.get("/v1/audio/voices")
async def voices(request: Request) -> dict[str, Any]:
    synthesis: Synthesis = request.app.state.synthesis
    listed = [
        {
            "id": voice.id,
            "engine": voice.engine,
            "language": voice.language,
            "name": voice.name,
            "gender": voice.gender,
        }
        for engine in synthesis.engines.values()
        for voice in engine.voices()
    ]
    return {"voices": listed, "models": synthesis.models()}


@router.post("/v1/audio/speech", response_class=Response, responses=audio_responses(SPEECH_FORMATS))
async def speech(request: Request, body: SpeechRequest) -> Response:
    synthesis: Synthesis = request.app.state.synthesis
    limit = synthesis.settings.max_input_chars
    if len(body.input) > limit:
        return error_response(400, f"input: at most {limit} characters", "input")

    # flac and opus are written whole (their headers hold totals): with "stream" they come
    # as one file when it is done, as without it, rather than being refused.
    if body.stream and body.response_format in STREAM_FORMATS:
        try:
            engine = synthesis.admit_stream(body.model, body.voice)
        except Refused as refused:
            return refusal_response(refused)
        headers = {"X-Engine": engine.name}
        if body.response_format == "pcm":
            headers["X-Sample-Rate"] = str(PCM_RATE)
        return StreamingResponse(
            speech_stream(
                synthesis, engine, body.input, body.voice, body.speed, body.response_format
            ),
            media_type=CONTENT_TYPES[body.response_format],
            headers=headers,
        )

    async def work(engine: Engine) -> Response:
        audio = await synthesis.in_thread(engine.synthesize, body.input, body.voice, body.speed)
        data = await synthesis.in_thread(encode, audio.samples, audio.rate, body.response_format)
        headers = {
            "X-Sample-Rate": str(output_rate(body.response_format, audio.rate)),
            "X-Engine": engine.name,
        }
        if audio.hit_bound:
            headers["X-Length-Bound-Reached"] = "true"
        return Response(
            content=data, media_type=CONTENT_TYPES[body.response_format], headers=headers
        )

    try:
        return await synthesis.run(body.model, body.voice, work)
    except Refused as refused:
        return refusal_response(refused)
