"""The csm engine in the image (`inv build --engines espeak,piper,csm`), with a tiny random CSM made
by the image's own torch and transformers and mounted read-only, as real weights would be: every format at 24 kHz, greedy
decoding repeats itself, a reference-clip voice, the chapter endpoint, espeak beside it, and
a broken model directory stopping the container with one line. Real container, no mocks."""

from __future__ import annotations

import io
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
from openai import OpenAI
from python_on_whales import Container, DockerClient

from tests.containers import free_port, post_json, wait_for_health

from .analysis import SpeechFormat

pytestmark = pytest.mark.docker
FORMATS = ("wav", "mp3", "flac", "opus", "pcm")


def readable(path: Path) -> Path:
    """The container's user (10001) reads the mounted folders."""
    for item in [path, *path.rglob("*")]:
        os.chmod(item, 0o755 if item.is_dir() else 0o644)
    return path


@pytest.fixture(scope="module")
def csm_image(neural_image: str) -> str:
    return neural_image


def make_tiny_model(docker_client: DockerClient, image: str, folder: Path) -> Path:
    """The image saves the model (no torch needed here: the test environment stays small)."""
    docker_client.run(
        image,
        ["-m", "audiobook_tts.engines.csmrandom", "/models/tiny-csm"],
        entrypoint="python3",
        user="0:0",
        volumes=[(folder, "/models")],
        remove=True,
    )
    return folder / "tiny-csm"


@pytest.fixture(scope="module")
def mounts(
    docker_client: DockerClient, csm_image: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    model = make_tiny_model(docker_client, csm_image, tmp_path_factory.mktemp("model"))
    assert (model / "config.json").exists(), f"the image saved no model in {model}"
    voices = tmp_path_factory.mktemp("voices")
    clip = (0.1 * np.random.default_rng(3).standard_normal(24000)).astype(np.float32)
    soundfile.write(voices / "narrator.wav", clip, 24000)
    (voices / "narrator.txt").write_text("This is how the narrator sounds.\n")
    return readable(model.parent), readable(voices)


def start(
    docker_client: DockerClient, image: str, model: Path, voices: Path
) -> tuple[Container, str]:
    port = free_port()
    container = docker_client.run(
        image,
        detach=True,
        name=f"audiobook-tts-csm-{uuid.uuid4().hex[:8]}",
        publish=[(f"127.0.0.1:{port}", 8000)],
        envs={
            "AUDIOBOOK_TTS_ENGINES": "espeak,csm",
            "AUDIOBOOK_TTS_CSM_MODEL": "/models/tiny-csm",
            "AUDIOBOOK_TTS_CSM_VOICES": "/voices",
            # The listener hears the chapter endpoint's csm (flagged); one retake is enough.
            "AUDIOBOOK_TTS_CHECK_ATTEMPTS": "2",
        },
        volumes=[(model, "/models", "ro"), (voices, "/voices", "ro")],
    )
    return container, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def csm_service(
    docker_client: DockerClient, csm_image: str, mounts: tuple[Path, Path]
) -> Iterator[str]:
    container, url = start(docker_client, csm_image, *mounts)
    try:
        wait_for_health(url, container, timeout=120.0, path="/readyz")
        yield url
    finally:
        container.remove(force=True)


def decode(data: bytes, response_format: str) -> tuple[np.ndarray, int]:
    if response_format == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768, 24000
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def test_readiness_names_the_model_device_and_dtype(csm_service: str) -> None:
    with urllib.request.urlopen(f"{csm_service}/readyz", timeout=5) as response:
        engines = {item["name"]: item for item in json.loads(response.read())["engines"]}
    assert engines["csm"]["model"] == "/models/tiny-csm"
    assert engines["csm"]["device"] == "cpu" and engines["csm"]["dtype"] == "float32"
    assert "espeak" in engines


@pytest.mark.parametrize("response_format", FORMATS)
def test_csm_speaks_every_format_at_24_khz(csm_service: str, response_format: str) -> None:
    status, _, body = post_json(
        f"{csm_service}/v1/audio/speech",
        {
            "model": "csm",
            "input": "Chapter one.",
            "voice": "alloy",
            "response_format": response_format,
        },
        timeout=120,
    )
    assert status == 200, body[:300]
    samples, rate = decode(body, response_format)
    expected = 48000 if response_format == "opus" else 24000
    assert rate == expected and samples.size > 0 and np.isfinite(samples).all()


def test_streamed_csm_speech_comes_in_frames_and_the_mp3_stream_decodes(
    csm_service: str,
) -> None:
    """`"stream": true` through the image: the fast decoder's first chunk (3 frames, 240 ms
    of 24 kHz PCM) leaves before the sentence is done, and a streamed MP3 is one file."""
    payload = {"model": "csm", "input": "Chapter one. It was late.", "voice": "0", "stream": True}
    request = urllib.request.Request(
        f"{csm_service}/v1/audio/speech",
        data=json.dumps({**payload, "response_format": "pcm"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    first_chunk = 3 * 1920 * 2  # 3 frames of 24 kHz 16-bit PCM (chunk sizes: a unit test)
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        first = b""
        while len(first) < first_chunk and (piece := response.read1(first_chunk)):
            first += piece
        rest = response.read()
    assert len(first) >= first_chunk and len(rest) > first_chunk
    pcm = np.frombuffer(first + rest, dtype="<i2")
    whole, rate = decode(
        post_json(
            f"{csm_service}/v1/audio/speech",
            {**payload, "response_format": "mp3"},
            timeout=120,
        )[2],
        "mp3",
    )
    assert rate == 24000 and abs(whole.size - pcm.size) < 4 * 1152


def test_greedy_decoding_gives_the_same_audio_twice_and_length_follows_text(
    csm_service: str,
) -> None:
    payload = {
        "model": "csm-1b",
        "input": "The same words.",
        "voice": "0",
        "response_format": "wav",
    }
    first = post_json(f"{csm_service}/v1/audio/speech", payload, timeout=120)[2]
    second = post_json(f"{csm_service}/v1/audio/speech", payload, timeout=120)[2]
    assert first == second
    longer = post_json(
        f"{csm_service}/v1/audio/speech",
        {**payload, "input": "Many more words than before, in a far longer sentence."},
        timeout=120,
    )[2]
    assert decode(longer, "wav")[0].size > decode(first, "wav")[0].size


def test_a_reference_clip_voice_and_the_chapter_endpoint_heard_as_unintelligible(
    csm_service: str,
) -> None:
    # The image holds the listener: random weights say nothing, so each sentence is retaken
    # (csm samples: another seed) and stays flagged.
    response = httpx.post(
        f"{csm_service}/v1/audiobook/chapters",
        json={
            "model": "csm",
            "input": "The rain had not stopped for three days. The river was rising fast.",
            "voice": "narrator",
            "response_format": "wav",
        },
        timeout=600,
    )
    assert response.status_code == 200, response.text[:300]
    samples, rate = decode(response.content, "wav")
    assert rate == 44100 and samples.size > rate * 2  # room tone head and tail at least
    check = json.loads(response.headers["x-audiobook-report"])["check"]
    assert check["passed"] is False and check["engine"] == "csm", check
    assert [item["sentence"] for item in check["flagged"]] == [1, 2], check
    assert all(item["verdict"] in ("misread", "missing") for item in check["flagged"])


def test_espeak_still_speaks_in_the_same_container(csm_service: str) -> None:
    status, content_type, body = post_json(
        f"{csm_service}/v1/audio/speech", {"model": "espeak", "input": "Hello.", "voice": "alloy"}
    )
    assert status == 200 and content_type == "audio/wav"
    assert decode(body, "wav")[1] == 22050


def test_a_broken_model_directory_stops_the_container_in_one_line(
    docker_client: DockerClient, csm_image: str, mounts: tuple[Path, Path], tmp_path: Path
) -> None:
    model, voices = mounts
    broken = tmp_path / "models" / "tiny-csm"
    broken.mkdir(parents=True)
    for item in (model / "tiny-csm").iterdir():
        if item.name != "config.json":
            (broken / item.name).write_bytes(item.read_bytes())
    container, _ = start(docker_client, csm_image, readable(broken.parent), voices)
    try:
        result = docker_client.container.wait(container)
        logs = [line for line in container.logs().splitlines() if line.strip()]
    finally:
        container.remove(force=True)
    assert result != 0
    assert logs == [
        "error: the csm engine cannot start: CSM model directory /models/tiny-csm has no config.json"
    ]


@pytest.mark.parametrize("response_format", FORMATS)
def test_the_openai_sdk_gets_csm_and_espeak_audio(
    csm_service: str, response_format: SpeechFormat
) -> None:
    client = OpenAI(base_url=f"{csm_service}/v1", api_key="not-needed", timeout=120)
    spoken = client.audio.speech.create(
        model="csm", voice="alloy", input="Chapter one.", response_format=response_format
    )
    samples, rate = decode(spoken.read(), response_format)
    assert rate == (48000 if response_format == "opus" else 24000) and samples.size > 0
    assert spoken.response.headers["x-engine"] == "csm"
    espeak = client.audio.speech.create(
        model="espeak", voice="alloy", input="Chapter one.", response_format=response_format
    )
    assert espeak.response.headers["x-engine"] == "espeak" and len(espeak.read()) > 100
