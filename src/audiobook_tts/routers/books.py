"""Whole books as jobs: `POST /v1/audiobook/books` (202 and a job), `GET .../jobs/{id}`
(progress), `GET .../jobs/{id}/files/{name}` (chapter MP3s, book.m4b, book.json), `DELETE`."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from audiobook_tts.books.archive import BookRefused
from audiobook_tts.books.jobs import BookJobs, QueueUnavailable, Upload
from audiobook_tts.books.records import JobOptions
from audiobook_tts.config import SettingsError, choose_book_engine
from audiobook_tts.keys import key_id
from audiobook_tts.openapi import book_responses, file_responses
from audiobook_tts.responses import error_response, refusal_response
from audiobook_tts.synthesis import Refused, Synthesis

router = APIRouter()
FILE_TYPES = {".mp3": "audio/mpeg", ".m4b": "audio/mp4", ".json": "application/json"}
# Refusals of the book itself that are about its size answer 413, the rest 400.
SIZE_REASONS = ("size",)


def _jobs(request: Request) -> BookJobs | None:
    jobs: BookJobs | None = request.app.state.book_jobs
    return jobs


def owner(request: Request) -> str:
    """The caller's key id where the service has keys ("" where it is open): a job is seen by
    the key that made it alone."""
    return key_id(request.scope)


def _no_jobs() -> JSONResponse:
    return error_response(
        503, "book jobs need a data folder: set AUDIOBOOK_TTS_DATA to a writable volume"
    )


@router.post("/v1/audiobook/books", status_code=202, responses=book_responses(400, 413, 503))
async def submit_book(
    request: Request,
    file: Annotated[UploadFile, File(description="the book: .epub, .txt or .md (UTF-8)")],
    voice: Annotated[str, Form(max_length=100)] = "alloy",
    engine: Annotated[
        str, Form(max_length=100, description="espeak, piper or csm; default: the best loaded")
    ] = "",
    speed: Annotated[float, Form(ge=0.25, le=4.0)] = 1.0,
    chapters: Annotated[
        str, Form(max_length=200, description='chapter numbers to make, e.g. "3-5" or "1,4"')
    ] = "",
    footnotes: Annotated[
        str,
        Form(
            max_length=200,
            description='chapters whose footnotes are read at their end: "all", or "3-5"; '
            "default: none",
        ),
    ] = "",
    lexicon: Annotated[
        UploadFile | None, File(description="lexicon.tsv: word<TAB>respelling a line")
    ] = None,
    check: Annotated[
        bool,
        Form(
            description="hear each chapter as it is made (where the service has a listener): "
            "sentences that do not say their text are retaken or flagged in book.json"
        ),
    ] = True,
) -> Response:
    jobs = _jobs(request)
    if jobs is None:
        return _no_jobs()
    synthesis: Synthesis = request.app.state.synthesis
    try:
        name = choose_book_engine(engine, synthesis.settings.engines)
    except SettingsError as error:
        return error_response(400, str(error), "engine")
    try:
        synthesis.check_voice(synthesis.engine(name), voice)
    except Refused as refused:
        return refusal_response(refused)
    lexicon_text = None
    if lexicon is not None:
        try:
            lexicon_text = (await lexicon.read()).decode("utf-8")
        except UnicodeDecodeError:
            return error_response(400, "lexicon: not UTF-8 text", "lexicon")
    upload = Upload(file.file, file.filename or "", file.content_type or "", lexicon_text)
    options = JobOptions(name, voice, speed, chapters, footnotes, check)
    try:
        job = await anyio.to_thread.run_sync(jobs.submit, upload, options, owner(request))
    except BookRefused as refused:
        status = 413 if refused.reason in SIZE_REASONS else 400
        return error_response(status, str(refused), refused.reason)
    except QueueUnavailable as error:
        return error_response(503, str(error), headers={"Retry-After": "5"})
    return JSONResponse(
        job, status_code=202, headers={"Location": f"/v1/audiobook/jobs/{job['id']}"}
    )


@router.get("/v1/audiobook/jobs", responses=book_responses(503))
async def list_jobs(request: Request) -> Response:
    jobs = _jobs(request)
    if jobs is None:
        return _no_jobs()
    return JSONResponse({"jobs": await anyio.to_thread.run_sync(jobs.listing, owner(request))})


# GET and DELETE in one route: a 405 for another method then lists both in `Allow`.
@router.api_route(
    "/v1/audiobook/jobs/{job_id}", methods=["GET", "DELETE"], responses=book_responses(404, 503)
)
async def job(request: Request, job_id: str) -> Response:
    """GET: the job's status and progress. DELETE: cancel it (between sentences) and remove
    its files; the record stays, `cancelled`."""
    jobs = _jobs(request)
    if jobs is None:
        return _no_jobs()
    act = jobs.cancel if request.method == "DELETE" else jobs.status
    try:
        status = await anyio.to_thread.run_sync(act, job_id, owner(request))
    except QueueUnavailable as error:
        return error_response(503, str(error), headers={"Retry-After": "5"})
    if status is None:
        return error_response(404, f"no job {job_id!r}", "job_id")
    return JSONResponse(status)


@router.get("/v1/audiobook/jobs/{job_id}/files/{name}", responses=file_responses())
async def job_file(request: Request, job_id: str, name: str) -> Response:
    jobs = _jobs(request)
    if jobs is None:
        return _no_jobs()
    path = await anyio.to_thread.run_sync(jobs.file, job_id, name, owner(request))
    if path is None:
        if await anyio.to_thread.run_sync(jobs.job, job_id, owner(request)) is None:
            return error_response(404, f"no job {job_id!r}", "job_id")
        listed = await anyio.to_thread.run_sync(jobs.files, job_id, owner(request))
        return error_response(
            404, f"no file {name!r} in job {job_id!r}; files: {', '.join(listed) or 'none yet'}"
        )
    return FileResponse(path, media_type=FILE_TYPES.get(path.suffix, "application/octet-stream"))
