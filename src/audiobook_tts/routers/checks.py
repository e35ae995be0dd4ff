"""Audio heard against its book, as jobs: `POST /v1/audiobook/checks` (202 and a job),
`GET .../checks/{id}` (progress, passed), `GET .../checks/{id}/report` (report.json), `DELETE`."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from audiobook_tts.books.archive import BookRefused
from audiobook_tts.keys import key_id
from audiobook_tts.listening.checkjobs import CheckJobs, CheckOptions, Incoming
from audiobook_tts.listening.listener import FALLBACK_MAX_WER
from audiobook_tts.listening.recordings import RecordingRefused
from audiobook_tts.openapi import check_responses
from audiobook_tts.responses import error_response

router = APIRouter()


def _checks(request: Request) -> CheckJobs | JSONResponse:
    checks: CheckJobs | None = request.app.state.check_jobs
    if checks is not None:
        return checks
    if request.app.state.synthesis.listener is None:
        return error_response(
            503,
            "no listener in this service: build the image with --engines ...,listener, or set "
            "AUDIOBOOK_TTS_LISTENER_MODEL",
        )
    return error_response(
        503, "checks need a data folder: set AUDIOBOOK_TTS_DATA to a writable volume"
    )


@router.post("/v1/audiobook/checks", status_code=202, responses=check_responses(400, 413, 503))
async def submit_check(
    request: Request,
    book: Annotated[
        UploadFile, File(description="the book the audio should say: .epub, .txt, .md")
    ],
    audio: Annotated[
        list[UploadFile],
        File(description="the audio: a file per chapter in order, or an M4B with chapters"),
    ],
    max_wer: Annotated[
        float, Form(ge=0.0, le=10.0, description="a sentence over this word error rate fails")
    ] = FALLBACK_MAX_WER,
    chapters: Annotated[
        str, Form(max_length=200, description='the chapters the audio holds, e.g. "3-5"')
    ] = "",
    footnotes: Annotated[
        str, Form(max_length=200, description='chapters read with their footnotes: "all", "3-5"')
    ] = "",
    lexicon: Annotated[
        UploadFile | None, File(description="lexicon.tsv the audio was made with")
    ] = None,
) -> Response:
    checks = _checks(request)
    if isinstance(checks, JSONResponse):
        return checks
    lexicon_text = None
    if lexicon is not None:
        try:
            lexicon_text = (await lexicon.read()).decode("utf-8")
        except UnicodeDecodeError:
            return error_response(400, "lexicon: not UTF-8 text", "lexicon")
    try:
        job = await anyio.to_thread.run_sync(
            checks.submit,
            Incoming(book.file, book.filename or "book"),
            [Incoming(item.file, item.filename or "audio") for item in audio],
            CheckOptions(max_wer, chapters, footnotes),
            lexicon_text,
            key_id(request.scope),
        )
    except BookRefused as refused:
        return error_response(
            413 if refused.reason == "size" else 400, str(refused), refused.reason
        )
    except RecordingRefused as refused:
        status = 413 if refused.reason == "too_long" else 400
        return error_response(status, str(refused), refused.reason)
    return JSONResponse(
        job, status_code=202, headers={"Location": f"/v1/audiobook/checks/{job['id']}"}
    )


@router.get("/v1/audiobook/checks", responses=check_responses(503))
async def list_checks(request: Request) -> Response:
    checks = _checks(request)
    if isinstance(checks, JSONResponse):
        return checks
    return JSONResponse(
        {"checks": await anyio.to_thread.run_sync(checks.listing, key_id(request.scope))}
    )


@router.api_route(
    "/v1/audiobook/checks/{check_id}",
    methods=["GET", "DELETE"],
    responses=check_responses(404, 503),
)
async def check(request: Request, check_id: str) -> Response:
    """GET: the check's status and progress (and `passed` once heard). DELETE: stop it and
    remove its uploads and report; the record stays."""
    checks = _checks(request)
    if isinstance(checks, JSONResponse):
        return checks
    act = checks.cancel if request.method == "DELETE" else checks.status
    status = await anyio.to_thread.run_sync(act, check_id, key_id(request.scope))
    if status is None:
        return error_response(404, f"no check {check_id!r}", "check_id")
    return JSONResponse(status)


@router.get(
    "/v1/audiobook/checks/{check_id}/report",
    responses={
        200: {"description": "report.json", "content": {"application/json": {}}},
        **check_responses(404, 503),
    },
)
async def check_report(request: Request, check_id: str) -> Response:
    checks = _checks(request)
    if isinstance(checks, JSONResponse):
        return checks
    path = await anyio.to_thread.run_sync(checks.report, check_id, key_id(request.scope))
    if path is None:
        return error_response(404, f"no report of check {check_id!r} (yet)", "check_id")
    return FileResponse(path, media_type="application/json")
