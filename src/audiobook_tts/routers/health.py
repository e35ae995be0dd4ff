"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the engines loaded)."""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from audiobook_tts import __version__
from audiobook_tts.synthesis import Synthesis

router = APIRouter()


def torch_facts() -> dict[str, str]:
    """The torch build in the image, read from its metadata (importing torch takes seconds)."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    return {"variant": os.environ.get("TORCH_VARIANT", "unknown"), "version": version}


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "torch": torch_facts()}


@router.get("/readyz", responses={503: {"description": "Engines are still loading"}})
async def readyz(request: Request) -> JSONResponse:
    synthesis: Synthesis = request.app.state.synthesis
    loaded = [engine.facts() for engine in synthesis.engines.values()]
    if not synthesis.ready:
        waiting = [name for name in synthesis.settings.engines if name not in synthesis.engines]
        return JSONResponse(
            status_code=503, content={"status": "loading", "loading": waiting, "engines": loaded}
        )
    listener = synthesis.listener.facts() if synthesis.listener is not None else None
    return JSONResponse(content={"status": "ready", "engines": loaded, "listener": listener})
