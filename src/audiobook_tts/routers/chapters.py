"""A chapter to one mastered file (`POST /v1/audiobook/chapters`), ACX levels measured."""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictBool

from audiobook_tts.audio import CONTENT_TYPES, encode
from audiobook_tts.chapter import ChapterError
from audiobook_tts.engines import Engine
from audiobook_tts.lexicon import (
    MAX_FIELD,
    MAX_REQUEST_ENTRIES,
    SAYING_PATTERN,
    WORD_PATTERN,
    Lexicon,
    LexiconError,
)
from audiobook_tts.listening.checking import render_checked_chapter
from audiobook_tts.openapi import audio_responses
from audiobook_tts.responses import error_response, refusal_response
from audiobook_tts.synthesis import Refused, Synthesis

router = APIRouter()
ChapterFormat = Literal["mp3", "wav", "flac"]


class LexiconEntry(BaseModel):
    """A word said another way: a respelling, or [[espeak-ng phonemes]] (espeak, piper)."""

    word: str = Field(max_length=MAX_FIELD, pattern=WORD_PATTERN)
    say: str = Field(max_length=MAX_FIELD, pattern=SAYING_PATTERN)


class ChapterRequest(BaseModel):
    model: str = Field(default="tts-1", max_length=100)
    input: str = Field(min_length=1, max_length=100_000, pattern=r"\S")
    voice: str = Field(default="alloy", max_length=100)
    response_format: ChapterFormat = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    # Words said another way: [{"word": "Cholmondeley", "say": "Chumley"}], or espeak-ng
    # phonemes for the espeak and piper engines: "say": "[[tS'Vmli]]". A list, not a map: a
    # schema can say what each word may be.
    lexicon: list[LexiconEntry] = Field(default_factory=list, max_length=MAX_REQUEST_ENTRIES)
    # Hear the chapter as it is made (where the service has a listener): sentences that do not
    # say their text are retaken (an engine that samples) or flagged in the report.
    check: StrictBool = True


@router.post(
    "/v1/audiobook/chapters",
    response_class=Response,
    responses=audio_responses(("mp3", "wav", "flac")),
)
async def chapter(request: Request, body: ChapterRequest) -> Response:
    synthesis: Synthesis = request.app.state.synthesis
    try:
        text = Lexicon.of({entry.word: entry.say for entry in body.lexicon}).apply(body.input)
    except LexiconError as error:
        return error_response(400, str(error), "lexicon")

    async def work(engine: Engine) -> Response:
        try:
            listener = synthesis.listener if body.check else None
            rendered = await synthesis.in_thread(
                render_checked_chapter, engine, text, body.voice, body.speed, listener
            )
        except ChapterError as error:
            return error_response(400, f"input: {error}", "input")
        data = await synthesis.in_thread(
            encode, rendered.samples, rendered.rate, body.response_format
        )
        report = {**rendered.report(), "format": body.response_format, "engine": engine.name}
        return Response(
            content=data,
            media_type=CONTENT_TYPES[body.response_format],
            headers={"X-Audiobook-Report": json.dumps(report, sort_keys=True)},
        )

    try:
        return await synthesis.run(body.model, body.voice, work)
    except Refused as refused:
        return refusal_response(refused)
