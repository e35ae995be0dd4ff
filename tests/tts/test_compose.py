"""The compose file as users start it: `docker compose up --scale worker=2` (Debian's
docker-compose 2.x), Redis built from the project's base, one volume; a book made by the
workers and read through the API. The one compose test of the default run: a small book."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from imagebuild.plan.config import Settings
from tests import bookfiles
from tests.containers import free_port

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Composed:
    project: str
    url: str
    env: dict[str, str]

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "-p", self.project, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=check,
        )


@pytest.fixture
def composed(settings: Settings, image: str) -> Iterator[Composed]:
    port = free_port()
    env = {
        **os.environ,
        "AUDIOBOOK_TTS_IMAGE": image,
        "AUDIOBOOK_TTS_BASE_IMAGE": settings.base_image,
        "AUDIOBOOK_TTS_PORT": str(port),
        "AUDIOBOOK_TTS_ENGINES": "espeak",
    }
    running = Composed(f"abt-{uuid.uuid4().hex[:8]}", f"http://127.0.0.1:{port}", env)
    try:
        running.compose("up", "-d", "--build", "--scale", "worker=2")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{running.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError(running.compose("logs", check=False).stdout[-4000:])
        yield running
    finally:
        running.compose("down", "--volumes", "--timeout", "10", check=False)


def test_compose_runs_the_api_redis_and_two_workers_on_one_volume(composed: Composed) -> None:
    ps = composed.compose("ps", "--format", "{{.Service}}").stdout.split()
    assert sorted(ps) == ["api", "redis", "worker", "worker"], ps
    response = httpx.post(
        f"{composed.url}/v1/audiobook/books",
        files={"file": ("tales.epub", bookfiles.epub(), "application/epub+zip")},
        data={"engine": "espeak", "check": "false"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 300
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{composed.url}/v1/audiobook/jobs/{job_id}", timeout=10).json()
        assert status["status"] in ("queued", "running", "done"), status
        if status["status"] == "done":
            break
        time.sleep(0.5)
    else:
        raise AssertionError(composed.compose("logs", check=False).stdout[-4000:])
    m4b = httpx.get(f"{composed.url}/v1/audiobook/jobs/{job_id}/files/book.m4b", timeout=60)
    assert m4b.status_code == 200 and len(m4b.content) > 10_000
    workers = composed.compose("logs", "worker", check=False).stdout
    assert f"book job {job_id}: done" in workers, workers[-4000:]
