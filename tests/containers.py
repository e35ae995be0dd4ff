"""The built image, started as a container: the fixtures and helpers that the smoke, tts and
arm64 tests share (a pytest plugin, loaded by tests/conftest.py; real engine, no mocks)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pip
import pytest
from python_on_whales import Container, DockerClient

from imagebuild.plan.config import Settings


@dataclass(frozen=True)
class Service:
    container: Container
    url: str
    image: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(
    url: str, container: Container, timeout: float = 60.0, path: str = "/healthz"
) -> None:
    """Until `path` answers 200 (`/readyz`: every engine loaded); fails with the logs if the
    container exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        container.reload()  # type: ignore[no-untyped-call]  # python-on-whales
        if container.state.status == "exited":
            break
        time.sleep(0.5)
    raise AssertionError(f"service did not answer {path} within {timeout}s:\n{container.logs()}")


def built(docker_client: DockerClient, reference: str, how: str) -> str:
    """The image `reference`, or a failure saying how to build it (never a skip)."""
    if not docker_client.image.exists(reference):
        pytest.fail(f"image {reference} is not built: run `{how}` first")
    return reference


@pytest.fixture(scope="session")
def image(settings: Settings, docker_client: DockerClient) -> str:
    return built(docker_client, f"{settings.image}:latest", "inv build")


@contextlib.contextmanager
def running_service(
    docker_client: DockerClient,
    image: str,
    name: str,
    path: str = "/healthz",
    timeout: float = 60.0,
    **options: Any,
) -> Iterator[Service]:
    """The image serving on a free local port until `path` answers; removed afterwards.
    `options` go to `docker run` (envs, volumes, platform)."""
    port = free_port()
    container = docker_client.run(
        image,
        detach=True,
        name=f"audiobook-tts-{name}-{uuid.uuid4().hex[:8]}",
        publish=[(f"127.0.0.1:{port}", 8000)],
        **options,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, container, timeout=timeout, path=path)
        yield Service(container=container, url=url, image=image)
    finally:
        container.remove(force=True)


@pytest.fixture(scope="session")
def service(docker_client: DockerClient, image: str) -> Iterator[Service]:
    with running_service(docker_client, image, "smoke") as started:
        yield started


def post_json(
    url: str, payload: Mapping[str, object], timeout: float = 60.0
) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def pip_check(docker_client: DockerClient, image: str) -> str:
    """`pip check` in the image, with this environment's pip mounted: the runtime has none."""
    pip_package = Path(pip.__file__).parent
    return str(
        docker_client.run(
            image,
            ["-m", "pip", "check"],
            entrypoint="python3",
            envs={"PYTHONPATH": "/opt/pip"},
            volumes=[(pip_package, "/opt/pip/pip", "ro")],
            remove=True,
        )
    )
