"""Shared test options: daemon tests skip without an engine locally, and fail in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.engine.docker import DockerEngine
from imagebuild.invoke_glue import settings_from
from imagebuild.plan.config import Settings

ROOT = Path(__file__).resolve().parents[1]
# The running image's fixtures (image, service) and helpers, shared by smoke, tts and arm64.
pytest_plugins = ("tests.containers",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-docker",
        action="store_true",
        default=os.environ.get("AUDIOBOOK_TTS_REQUIRE_DOCKER") == "1",
        help="fail (instead of skip) tests marked docker when no Docker daemon answers",
    )


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The project's settings, read from invoke.yaml the way `inv` reads them."""
    from invoke.config import Config

    config = Config(project_location=str(ROOT))
    config.load_project()
    config.load_shell_env()
    return settings_from(config)


@pytest.fixture(scope="session")
def docker_client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[DockerClient]:
    docker = DockerClient(client_call=[settings.docker_client])
    if not DockerEngine(settings.docker_client).answers():
        message = "no Docker daemon answers (run `inv up`)"
        if request.config.getoption("--require-docker"):
            pytest.fail(f"{message}; --require-docker turns this skip into a failure")
        pytest.skip(message)
    yield docker


@pytest.fixture(autouse=True)
def _docker_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_client")


@pytest.fixture(autouse=True)
def _no_listener_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line listens by default where the listener is installed (it is, for the
    listener's tests): other tests hear nothing unless they set AUDIOBOOK_TTS_LISTENER_MODEL."""
    if "AUDIOBOOK_TTS_LISTENER_MODEL" not in os.environ:
        monkeypatch.setenv("AUDIOBOOK_TTS_LISTENER_MODEL", "off")
