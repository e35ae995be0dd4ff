"""Integration fixtures: real builds of a scratch copy of this repository (never the work tree)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient

from imagebuild.build.flow import build
from imagebuild.build.scratch_copy import copy_tree
from imagebuild.engine.docker import DockerEngine
from imagebuild.engine.report import BuildReport
from imagebuild.plan.config import Settings, StatePaths
from imagebuild.plan.request import BuildRequest
from imagebuild.platform import local as local_platform
from imagebuild.platform import registry_auth
from imagebuild.platform import sandbox as sandbox_module
from imagebuild.platform.processes import stop_pid

ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGE = "audiobook-tts-it"


def copy_repository(destination: Path) -> Path:
    return copy_tree(ROOT, destination)


@pytest.fixture(scope="session", autouse=True)
def _remove_test_images(settings: Settings) -> Iterator[None]:
    """Every image the tests tagged in the main engine goes at the end: CI disks are small."""
    yield
    if not DockerEngine(settings.docker_client).answers():
        return
    docker_client = DockerClient(client_call=[settings.docker_client])
    tagged = [
        tag
        for image in docker_client.image.list()
        for tag in image.repo_tags
        if tag.rpartition(":")[0].rpartition("/")[2].startswith(TEST_IMAGE)
    ]
    if tagged:
        docker_client.image.remove(tagged, force=True)
        print(f"removed {len(tagged)} test image tags")


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    return copy_repository(tmp_path / "repo")


BuildRunner = Callable[..., BuildReport]


@pytest.fixture
def build_in(settings: Settings, docker_client: DockerClient) -> Iterator[BuildRunner]:
    """Build a scratch repository with the project's settings, under a test image name."""
    tags: list[str] = []

    def run(root: Path, **request: Any) -> BuildReport:
        scratch_settings = replace(
            settings,
            root=root,
            dockerfile=root / "docker/tts/Dockerfile",
            log_dir=root / "build-logs",
        )
        tag = f"{TEST_IMAGE}:{uuid.uuid4().hex[:8]}"
        tags.append(tag)
        request.setdefault("tags", (tag,))
        request.setdefault("progress", "quiet")
        return build(scratch_settings, BuildRequest(**request), print, start_platform=False)

    yield run
    present = [tag for tag in tags if docker_client.image.exists(tag)]
    if present:
        docker_client.image.remove(present, force=True)


def steps(report: BuildReport, stage: str) -> list[tuple[str, bool]]:
    return [(step.name, step.cached) for step in report.steps if step.stage == stage]


@dataclass(frozen=True)
class Sandbox:
    """A second engine, wiped at the start: tests that prune caches never touch yours."""

    settings: Settings
    docker: DockerClient


@pytest.fixture(scope="session")
def sandbox(settings: Settings, docker_client: DockerClient) -> Iterator[Sandbox]:
    box = sandbox_module.sandbox(settings, "tests")
    sandbox_module.start(box, print, fresh=True)
    try:
        yield Sandbox(box.settings(settings), DockerClient(host=box.host))
    finally:
        sandbox_module.stop(box, print, wipe=True)


@pytest.fixture(scope="session")
def classic_sandbox(settings: Settings, docker_client: DockerClient) -> Iterator[Sandbox]:
    """A second engine with the classic image store, as CodeBuild's and most CI runners' are."""
    box = sandbox_module.sandbox(
        settings, "classic", containerd_store=False, cidr="172.17.201.0/24"
    )
    sandbox_module.start(box, print, fresh=True)
    try:
        yield Sandbox(box.settings(settings), DockerClient(host=box.host))
    finally:
        sandbox_module.stop(box, print, wipe=True)


@dataclass(frozen=True)
class AuthRegistry:
    """The authenticated local registry (htpasswd + TLS) on a port of the tests' own."""

    settings: Settings
    password: str
    docker_config: Path


@pytest.fixture(scope="session")
def auth_registry(
    settings: Settings, docker_client: DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthRegistry]:
    """Started as `inv up --registry-auth` starts it. The docker CLI's logins go to a config
    of the tests' own (DOCKER_CONFIG), so a login made here never reaches yours."""
    docker_config = tmp_path_factory.mktemp("docker-config")
    previous = os.environ.get("DOCKER_CONFIG")
    os.environ["DOCKER_CONFIG"] = str(docker_config)
    auth_settings = replace(settings, registry="127.0.0.1:5444", registry_auth=True)
    try:
        local_platform.ensure_registry(auth_settings, StatePaths(settings.state_dir), print)
        password = registry_auth.read_password(auth_settings.registry_paths)
        yield AuthRegistry(auth_settings, password, docker_config)
    finally:
        # The tests' own registry: its blobs (gigabytes of pushed images) go with the session.
        registry_paths = auth_settings.registry_paths
        stop_pid(registry_paths.pid, "registry (tests)", print)
        shutil.rmtree(registry_paths.data, ignore_errors=True)
        if previous is None:
            os.environ.pop("DOCKER_CONFIG", None)
        else:
            os.environ["DOCKER_CONFIG"] = previous
