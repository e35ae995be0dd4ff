"""The OpenAPI document tells the truth: schemathesis generates requests from it (all checks:
no 5xx, statuses, content types and bodies as documented, bad data refused, good data
accepted) against the running image. Real container, real requests."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.containers import Service
from tests.tts.fuzzing import run_schemathesis

pytestmark = pytest.mark.docker


def test_the_document_has_no_422_and_names_the_audio_types(service: Service) -> None:
    with urllib.request.urlopen(f"{service.url}/openapi.json", timeout=10) as response:
        document = json.loads(response.read())
    speech = document["paths"]["/v1/audio/speech"]["post"]["responses"]
    assert "422" not in speech and {"400", "413", "429", "500", "503"} <= set(speech)
    assert set(speech["200"]["content"]) == {
        "audio/wav",
        "audio/mpeg",
        "audio/flac",
        "audio/ogg; codecs=opus",
        "audio/pcm",
    }
    voice = document["components"]["schemas"]["SpeechRequest"]["properties"]["voice"]
    assert "alloy" in voice["enum"] and "en-us" in voice["enum"]


def test_schemathesis_finds_nothing_with_every_check(service: Service) -> None:
    result = run_schemathesis(service.url, "schemathesis.txt", 40)
    assert result.returncode == 0, result.stdout[-4000:]
    # Warnings may stand (a job id it cannot guess gives 404s, as documented); failures not.
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert summary is not None and summary.group(1) == summary.group(2), result.stdout[-4000:]
    assert "No issues found" in result.stdout or "failed" not in result.stdout.split("SUMMARY")[-1]
