"""Real-time factor and latency to first byte, beside espeak-ng's own command line (its floor)."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlparse

import pytest
from python_on_whales import DockerClient

from tests.smoke.conftest import Service

from .analysis import decode
from .conftest import Findings

pytestmark = [pytest.mark.docker, pytest.mark.tts]

SHORT = "The quick brown fox jumps over the lazy dog."
SENTENCE = "The old lighthouse keeper climbed the winding stairs and lit the great lamp once more. "
CHAPTER = (SENTENCE * 200)[:10_000]


def timed_post(
    service: Service, path: str, payload: dict[str, object]
) -> tuple[float, float, bytes]:
    """(seconds to the first byte of the body, seconds in all, body)."""
    address = urlparse(service.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=600)
    body = json.dumps(payload).encode()
    started = time.monotonic()
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    first = response.read(1)
    first_byte = time.monotonic() - started
    rest = response.read()
    total = time.monotonic() - started
    assert response.status == 200, (first + rest)[:200]
    connection.close()
    return first_byte, total, first + rest


def espeak_directly(docker: DockerClient, service: Service, text: str) -> tuple[float, float]:
    """(seconds, audio seconds) of espeak-ng's own CLI in the same container."""
    container = service.container
    docker.container.execute(container, ["sh", "-c", 'printf "%s" "$0" > /tmp/perf.txt', text])
    started = time.monotonic()
    docker.container.execute(container, ["true"])
    overhead = time.monotonic() - started
    started = time.monotonic()
    docker.container.execute(container, ["espeak-ng", "-w", "/tmp/perf.wav", "-f", "/tmp/perf.txt"])
    seconds = time.monotonic() - started - overhead
    frames = docker.container.execute(
        container,
        [
            "python",
            "-c",
            "import wave; w=wave.open('/tmp/perf.wav'); print(w.getnframes()/w.getframerate())",
        ],
    )
    return max(seconds, 0.001), float(frames)


@pytest.mark.parametrize("case", ["short sentence", "10k-character chapter"])
def test_real_time_factor_and_first_byte(
    docker_client: DockerClient, service: Service, findings: Findings, case: str
) -> None:
    if case == "short sentence":
        first, total, body = timed_post(service, "/v1/audio/speech", {"input": SHORT})
        text = SHORT
    else:
        first, total, body = timed_post(
            service, "/v1/audiobook/chapters", {"input": CHAPTER, "response_format": "wav"}
        )
        text = CHAPTER
    audio_seconds = decode(body, "wav").seconds
    cli_seconds, cli_audio = espeak_directly(docker_client, service, text)
    result = {
        "first_byte_seconds": round(first, 3),
        "total_seconds": round(total, 3),
        "audio_seconds": round(audio_seconds, 2),
        "real_time_factor": round(total / audio_seconds, 4),
        "espeak_cli_seconds": round(cli_seconds, 3),
        "espeak_cli_real_time_factor": round(cli_seconds / cli_audio, 4),
    }
    findings.data["performance"][case] = result
    print(case, result)
    # Faster than real time is the least a speech service must be.
    assert result["real_time_factor"] < 1.0
