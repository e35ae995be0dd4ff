"""Real-time factor and latency to first byte, beside espeak-ng's own command line (its floor)."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlparse

import pytest
from python_on_whales import DockerClient

from tests.containers import Service

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
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=600)
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
    return max(seconds, 0.001), float(str(frames))


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


def test_streamed_speech_is_chunked_and_its_first_audio_comes_early(
    service: Service, findings: Findings
) -> None:
    text = (SENTENCE * 60)[:4000]
    payload = {"input": text, "response_format": "wav", "stream": True}
    address = urlparse(service.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=600)
    started = time.monotonic()
    connection.request(
        "POST",
        "/v1/audio/speech",
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    header = response.read(44)
    first_audio = response.read(2)
    first_seconds = time.monotonic() - started
    rest = response.read()
    total = time.monotonic() - started
    connection.close()
    assert header.startswith(b"RIFF") and len(first_audio) == 2
    audio = decode(header + first_audio + rest, "wav")
    assert audio.seconds > 150  # 47 sentences of speech with their pauses
    whole_first, _, _ = timed_post(service, "/v1/audio/speech", {"input": text})
    result = {
        "stream_first_audio_seconds": round(first_seconds, 3),
        "stream_total_seconds": round(total, 3),
        "unstreamed_first_byte_seconds": round(whole_first, 3),
        "audio_seconds": round(audio.seconds, 1),
    }
    findings.data["performance"]["4k-character streamed speech"] = result
    print("streamed", result)
