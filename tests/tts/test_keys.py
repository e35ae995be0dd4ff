"""API keys through the image: the OpenAI SDK with a key gets speech, no key gets 401, key B
gets 404 for key A's job and its files and does not see it listed, and schemathesis finds
nothing with a key. Keys are given by hash in the environment; none reaches the logs."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from python_on_whales import DockerClient

from tests import bookfiles
from tests.containers import Service, running_service
from tests.tts.fuzzing import run_schemathesis
from tests.tts.test_books import writable

pytestmark = pytest.mark.docker
KEY_A, KEY_B = "sk-team-a-7c1f0e5d2b", "sk-team-b-93a4d6e0f1"


@pytest.fixture(scope="module")
def keyed(
    docker_client: DockerClient, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    hashes = ",".join(
        "sha256:" + hashlib.sha256(key.encode()).hexdigest() for key in (KEY_A, KEY_B)
    )
    data = writable(tmp_path_factory.mktemp("keys") / "data")
    with running_service(
        docker_client,
        image,
        "keys",
        path="/readyz",
        timeout=120.0,
        volumes=[(data, "/data")],
        envs={"AUDIOBOOK_TTS_API_KEYS": hashes, "AUDIOBOOK_TTS_LISTENER_MODEL": "off"},
    ) as started:
        yield started


def test_the_openai_sdk_with_a_key_gets_speech_and_without_one_401(keyed: Service) -> None:
    client = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key=KEY_A, max_retries=0)
    speech = client.audio.speech.create(
        model="espeak", voice="alloy", input="Hello from the shared service.", response_format="wav"
    )
    assert speech.content[:4] == b"RIFF" and len(speech.content) > 10_000
    refused = httpx.post(
        f"{keyed.url}/v1/audio/speech", json={"model": "espeak", "voice": "alloy", "input": "Hi."}
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{keyed.url}/v1", api_key="sk-wrong", max_retries=0
        ).audio.speech.create(model="espeak", voice="alloy", input="Hi.")
    assert httpx.get(f"{keyed.url}/healthz").status_code == 200  # probes need no key


def test_key_b_cannot_see_key_a_s_job(keyed: Service) -> None:
    a = httpx.Client(base_url=keyed.url, headers={"Authorization": f"Bearer {KEY_A}"}, timeout=60)
    b = httpx.Client(base_url=keyed.url, headers={"Authorization": f"Bearer {KEY_B}"}, timeout=60)
    response = a.post(
        "/v1/audiobook/books",
        files={"file": ("tales.epub", bookfiles.epub(), "application/epub+zip")},
        data={"engine": "espeak"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    done = wait_done_with(a, job_id)
    assert "book.m4b" in done["files"]  # type: ignore[operator]
    assert a.get(f"/v1/audiobook/jobs/{job_id}/files/book.m4b").status_code == 200
    for path in ("", "/files/book.m4b", "/files/book.json"):
        assert b.get(f"/v1/audiobook/jobs/{job_id}{path}").status_code == 404, path
    assert b.delete(f"/v1/audiobook/jobs/{job_id}").status_code == 404
    assert job_id not in [job["id"] for job in b.get("/v1/audiobook/jobs").json()["jobs"]]
    assert job_id in [job["id"] for job in a.get("/v1/audiobook/jobs").json()["jobs"]]
    logs = keyed.container.logs()
    assert KEY_A not in logs and KEY_B not in logs


def wait_done_with(client: httpx.Client, job_id: str, seconds: float = 600) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = client.get(f"/v1/audiobook/jobs/{job_id}").json()
        assert status["status"] in ("queued", "running", "done"), status
        if status["status"] == "done":
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not done in {seconds} s: {status}")


def test_schemathesis_finds_nothing_with_a_key(keyed: Service) -> None:
    result = run_schemathesis(
        keyed.url, "schemathesis-keys.txt", 20, "--header", f"Authorization: Bearer {KEY_A}"
    )
    assert result.returncode == 0, result.stdout[-4000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert summary is not None and summary.group(1) == summary.group(2), result.stdout[-4000:]
