"""Speech synthesised through the running container and checked as audio."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.containers import Service, free_port, post_json, wait_for_health

from .analysis import (
    clipped_fraction,
    decode,
    loudness_lufs,
    mp3_frame_bitrates,
    noise_floor_db,
    peak_dbfs,
    quiet_edges,
    rms_db,
)
from .conftest import Findings

pytestmark = [pytest.mark.docker, pytest.mark.tts]

TEXTS = {
    "short": ("Hello.", "alloy"),
    "long": (
        " ".join(
            [
                "The lighthouse keeper climbed the winding stairs every evening, "
                "lit the great lamp, and watched the ships pass safely by."
            ]
            * 6
        ),
        "alloy",
    ),
    "numeric": (
        "Chapter 12 begins on page 347, in the year 1984, at 7:45 in the morning.",
        "alloy",
    ),
    "punctuation": (
        '"Wait!" she cried - "what... what did you say?!" (He did not answer; he only smiled.)',
        "alloy",
    ),
    "non-ascii": (
        "Ça va très bien, merci. Où est la bibliothèque? L'été dernier, à Noël.",
        "fr-fr",
    ),
}
RATES = {"wav": 22050, "mp3": 22050, "flac": 22050, "opus": 48000, "pcm": 24000}
FORMATS = list(RATES)


def words(text: str) -> int:
    return len(re.findall(r"[\w']+", text))


@pytest.mark.parametrize("response_format", FORMATS)
@pytest.mark.parametrize("kind", list(TEXTS))
def test_speech_decodes_with_its_rate_is_audible_and_paced(
    service: Service, findings: Findings, kind: str, response_format: str
) -> None:
    text, voice = TEXTS[kind]
    status, content_type, body = post_json(
        f"{service.url}/v1/audio/speech",
        {"model": "tts-1", "input": text, "voice": voice, "response_format": response_format},
    )
    assert status == 200, body[:300]
    assert content_type.startswith(
        {
            "wav": "audio/wav",
            "mp3": "audio/mpeg",
            "flac": "audio/flac",
            "opus": "audio/ogg",
            "pcm": "audio/pcm",
        }[response_format]
    )
    audio = decode(body, response_format)
    assert audio.rate == RATES[response_format]
    assert audio.channels == 1
    level = rms_db(audio.samples)
    assert level > -40, f"silent: {level:.1f} dB RMS"
    assert clipped_fraction(audio.samples) < 0.001
    wpm = words(text) / audio.seconds * 60
    low = 40 if kind == "short" else 80  # one word is mostly attack and release
    assert low < wpm < 320, f"{wpm:.0f} words a minute over {audio.seconds:.2f} s"
    findings.data["speech"].append(
        {
            "text": kind,
            "format": response_format,
            "seconds": round(audio.seconds, 3),
            "rate": audio.rate,
            "rms_db": round(level, 1),
            "words_per_minute": round(wpm),
        }
    )


def test_double_speed_roughly_halves_the_duration(service: Service) -> None:
    text = TEXTS["long"][0]
    durations = {}
    for speed in (1.0, 2.0):
        status, _, body = post_json(
            f"{service.url}/v1/audio/speech", {"input": text, "speed": speed}
        )
        assert status == 200
        durations[speed] = decode(body, "wav").seconds
    ratio = durations[2.0] / durations[1.0]
    assert 0.4 < ratio < 0.65, durations


def test_chapter_mp3_meets_every_acx_figure_as_measured_here(
    service: Service, findings: Findings
) -> None:
    paragraphs = [TEXTS["long"][0], TEXTS["numeric"][0] + " " + TEXTS["punctuation"][0]] * 3
    status, content_type, body = post_json(
        f"{service.url}/v1/audiobook/chapters",
        {"input": "\n\n".join(paragraphs), "voice": "alloy", "response_format": "mp3"},
        timeout=300,
    )
    assert status == 200, body[:300]
    assert content_type == "audio/mpeg"
    bitrates = mp3_frame_bitrates(body)
    assert len(bitrates) > 100 and len(set(bitrates)) == 1 and bitrates[0] >= 192, set(bitrates)
    audio = decode(body, "mp3")
    assert audio.rate == 44100 and audio.channels == 1
    rms, peak = rms_db(audio.samples), peak_dbfs(audio.samples)
    floor = noise_floor_db(audio.samples, audio.rate)
    head, tail = quiet_edges(audio.samples, audio.rate)
    assert -23 <= rms <= -18, rms
    assert peak <= -3.0, peak
    assert floor <= -60, floor
    assert 0.5 <= head <= 1.0 + 0.2, head  # + the quiet start of the first word
    assert 1.0 <= tail <= 5.0, tail
    findings.data["chapter"] = {
        "seconds": round(audio.seconds, 2),
        "rms_db": round(rms, 2),
        "peak_dbfs": round(peak, 2),
        "noise_floor_db": round(floor, 1),
        "head_seconds": round(head, 2),
        "tail_seconds": round(tail, 2),
        "bitrate_kbps": bitrates[0],
        "lufs": round(loudness_lufs(audio.samples, audio.rate), 1),
        "service_said": json.loads(_report_header(service, paragraphs)),
    }
    findings.data["_chapter_samples"] = audio.samples[: audio.rate * 20].tolist()


def _report_header(service: Service, paragraphs: list[str]) -> str:
    request = urllib.request.Request(
        f"{service.url}/v1/audiobook/chapters",
        data=json.dumps({"input": paragraphs[0], "response_format": "wav"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return str(response.headers["X-Audiobook-Report"])


BAD_REQUESTS: dict[str, tuple[dict[str, object], int, str]] = {
    "empty input": ({"input": ""}, 400, "input"),
    "whitespace input": ({"input": "  \n\t "}, 400, "input"),
    "input over the limit": ({"input": "word " * 1000}, 400, "input"),
    "unknown voice": ({"input": "hi", "voice": "nobody"}, 400, "voice"),
    "unknown format": ({"input": "hi", "response_format": "aiff"}, 400, "response_format"),
    "speed too low": ({"input": "hi", "speed": 0.1}, 400, "speed"),
    "speed too high": ({"input": "hi", "speed": 4.01}, 400, "speed"),
    "wrong type": ({"input": ["a", "list"]}, 400, "input"),
}


def healthy(service: Service) -> bool:
    with urllib.request.urlopen(f"{service.url}/healthz", timeout=5) as response:
        return bool(response.status == 200)


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_a_4xx_json_error_and_the_service_stays_up(
    service: Service, case: str
) -> None:
    payload, expected, param = BAD_REQUESTS[case]
    status, content_type, body = post_json(f"{service.url}/v1/audio/speech", payload)
    assert status == expected, body[:300]
    assert content_type == "application/json"
    error = json.loads(body)["error"]
    assert error["param"] == param
    if case == "unknown voice":
        assert "valid voices:" in error["message"] and "alloy" in error["message"]
    assert healthy(service)


def _raw_post(service: Service, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{service.url}/v1/audio/speech", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_malformed_json_is_400(service: Service) -> None:
    status, body = _raw_post(service, b'{"input": "unterminated')
    assert status == 400 and "malformed JSON" in json.loads(body)["error"]["message"]
    assert healthy(service)


def test_a_body_over_the_size_limit_is_413(service: Service) -> None:
    status, body = _raw_post(service, b'{"input": "' + b"a" * 2_000_000 + b'"}')
    assert status == 413, body[:200]
    assert healthy(service)


def test_an_over_long_chapter_is_400(service: Service) -> None:
    status, _, body = post_json(f"{service.url}/v1/audiobook/chapters", {"input": "word " * 20001})
    assert status == 400 and json.loads(body)["error"]["param"] == "input"
    assert healthy(service)


def test_concurrency_beyond_the_limit_is_refused_quickly(
    docker_client: DockerClient, image: str
) -> None:
    port = free_port()
    container = docker_client.run(
        image,
        detach=True,
        publish=[(f"127.0.0.1:{port}", 8000)],
        envs={"AUDIOBOOK_TTS_MAX_CONCURRENCY": "1", "AUDIOBOOK_TTS_MAX_QUEUE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, container)
        text = TEXTS["long"][0] * 2
        with ThreadPoolExecutor(max_workers=8) as pool:
            started = time.monotonic()
            futures = [
                pool.submit(post_json, f"{url}/v1/audio/speech", {"input": text[:4000]})
                for _ in range(8)
            ]
            results = [(future.result()[0], time.monotonic() - started) for future in futures]
        statuses = [status for status, _ in results]
        assert statuses.count(200) >= 1
        refused = [elapsed for status, elapsed in results if status in (429, 503)]
        assert refused, statuses
        assert min(refused) < 2.0, "refusals should be immediate, not queued"
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        container.remove(force=True)


def test_docker_stop_drains_the_request_in_flight_and_exits_cleanly(
    docker_client: DockerClient, image: str
) -> None:
    port = free_port()
    container = docker_client.run(image, detach=True, publish=[(f"127.0.0.1:{port}", 8000)])
    url = f"http://127.0.0.1:{port}"
    outcome: dict[str, object] = {}
    try:
        wait_for_health(url, container)

        def request() -> None:
            outcome["status"] = post_json(
                f"{url}/v1/audiobook/chapters",
                {"input": TEXTS["long"][0] * 3, "response_format": "wav"},
                timeout=60,
            )[0]

        worker = threading.Thread(target=request)
        worker.start()
        time.sleep(1.0)  # the request is being synthesised
        started = time.monotonic()
        docker_client.container.stop(container, time=10)
        stop_seconds = time.monotonic() - started
        worker.join(timeout=30)
        container.reload()  # type: ignore[no-untyped-call]  # python-on-whales
        assert outcome.get("status") == 200, outcome
        assert container.state.exit_code in (0, 143), container.state.exit_code
        assert stop_seconds < 10, stop_seconds
    finally:
        container.remove(force=True)


def test_chapter_command_line_in_the_image(
    docker_client: DockerClient, image: str, tmp_path: Path
) -> None:
    book = tmp_path / "book"
    book.mkdir()
    (book / "ch01.txt").write_text(TEXTS["long"][0] + "\n\n" + TEXTS["numeric"][0] + "\n")
    book.chmod(0o777)
    output = docker_client.run(
        image,
        ["chapter", "/book/ch01.txt", "-o", "/book/out/ch01.mp3"],
        volumes=[(str(book), "/book")],
        remove=True,
    )
    report = json.loads(str(output).strip().splitlines()[-1])
    assert report["meets_acx"] is True and report["sample_rate"] == 44100
    audio = decode((book / "out" / "ch01.mp3").read_bytes(), "mp3")
    assert -23 <= rms_db(audio.samples) <= -18
    assert json.loads((book / "out" / "ch01.mp3.json").read_text())["format"] == "mp3"


def test_a_lexicon_fixes_a_word_espeak_ng_mispronounces(service: Service) -> None:
    """espeak-ng reads "Cholmondeley" as cholmon-deeley (k'oUm@nd,Eli); it is said "Chumley".
    With the lexicon, the chapter is exactly the chapter of the respelt text, by respelling or
    by espeak-ng phonemes; without it, it is not."""
    url = f"{service.url}/v1/audiobook/chapters"

    def chapter(text: str, lexicon: dict[str, str] | None = None) -> bytes:
        payload: dict[str, object] = {"input": text, "voice": "alloy", "response_format": "wav"}
        if lexicon is not None:
            payload["lexicon"] = [{"word": word, "say": say} for word, say in lexicon.items()]
        status, _, body = post_json(url, payload, timeout=120)
        assert status == 200, body[:300]
        return body

    said_right = chapter("Mister Chumley came home.")
    assert chapter("Mister Cholmondeley came home.") != said_right
    assert chapter("Mister CHOLMONDELEY came home.", {"Cholmondeley": "Chumley"}) == said_right
    assert chapter("Mister Cholmondeley came home.", {"Cholmondeley": "[[tS'Vmli]]"}) == said_right
    status, _, body = post_json(
        url, {"input": "Hello.", "lexicon": [{"word": "Cholmondeley", "say": "[[tS'Vmli"}]}, 30
    )
    assert status == 400 and json.loads(body)["error"]["param"] == "lexicon.0.say"
