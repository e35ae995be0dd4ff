"""The linux/arm64 image, run here under QEMU: its binaries are aarch64 (not amd64 ones under
an arm64 label), torch imports, and the service answers and speaks. `nox -s arm64` makes the
two-platform base and builds the image first; it is kept out of the default sessions (every
instruction of the image runs emulated: minutes). Real engine, real image, no mocks."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile
from python_on_whales import DockerClient

from imagebuild.build.flow import build
from imagebuild.plan.config import Settings
from imagebuild.plan.request import BuildRequest
from imagebuild.platform.registry import Reference, RegistryClient
from tests.containers import built, post_json, running_service

pytestmark = pytest.mark.docker
PLATFORM = "linux/arm64"


@pytest.fixture(scope="module")
def arm64_image(settings: Settings, docker_client: DockerClient) -> str:
    reference = f"{settings.image}:latest-arm64"
    return built(docker_client, reference, f"inv build --platform {PLATFORM}")


def run_in(docker_client: DockerClient, image: str, *command: str) -> str:
    return str(
        docker_client.run(image, list(command), entrypoint="", platform=PLATFORM, remove=True)
    ).strip()


def test_the_base_and_the_installer_hold_both_platforms(settings: Settings) -> None:
    client = RegistryClient.for_settings(settings)
    for image in (settings.base_image, settings.installer_image):
        reference = Reference.parse(image)
        platforms = client.platforms(reference.repository, reference.tag)
        assert platforms is not None and {"linux/amd64", "linux/arm64"} <= set(platforms), image


def test_the_image_says_arm64_and_its_machine_is_aarch64(
    docker_client: DockerClient, arm64_image: str
) -> None:
    inspected = docker_client.image.inspect(arm64_image)
    assert inspected.architecture == "arm64" and inspected.os == "linux"
    assert run_in(docker_client, arm64_image, "uname", "-m") == "aarch64"


def test_python_and_torch_binaries_are_arm_aarch64(
    docker_client: DockerClient, arm64_image: str, tmp_path: Path
) -> None:
    """`file` (on this host) of the interpreter and of torch's library, copied out."""
    paths = run_in(
        docker_client,
        arm64_image,
        "python3",
        "-c",
        "import os, sys, torch; print(os.path.realpath(sys.executable)); "
        "print(os.path.join(os.path.dirname(torch.__file__), 'lib', 'libtorch_cpu.so'))",
    ).splitlines()
    container = docker_client.container.create(arm64_image, platform=PLATFORM)
    try:
        for index, path in enumerate(paths):
            local = tmp_path / f"binary-{index}"
            docker_client.container.copy((container, path), local)
            described = subprocess.run(
                ["file", "-b", str(local)], capture_output=True, text=True, check=True
            ).stdout
            assert "ARM aarch64" in described, f"{path}: {described}"
            assert "x86-64" not in described
    finally:
        container.remove(force=True)


def test_torch_imports_and_computes(docker_client: DockerClient, arm64_image: str) -> None:
    out = run_in(
        docker_client,
        arm64_image,
        "python3",
        "-c",
        "import platform, torch; x = torch.arange(6.0).reshape(2, 3); "
        "print(platform.machine(), torch.__version__, float((x @ x.T).sum()))",
    )
    machine, version, total = out.split()
    assert (
        machine == "aarch64" and version.startswith("2.") and float(total) == 83.0
    )  # [[5, 14], [14, 50]]


@pytest.fixture(scope="module")
def arm64_service(docker_client: DockerClient, arm64_image: str) -> Iterator[str]:
    # Imports run emulated: slow to start.
    with running_service(
        docker_client, arm64_image, "arm64", timeout=300.0, platform=PLATFORM
    ) as started:
        yield started.url


def test_the_emulated_service_answers_and_speaks(arm64_service: str) -> None:
    status, content_type, body = post_json(
        f"{arm64_service}/v1/audio/speech",
        {"input": "Chapter one. It was a bright cold day.", "response_format": "wav"},
        timeout=300,
    )
    assert status == 200 and content_type == "audio/wav", body[:200]
    samples, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    assert rate > 0 and samples.size > rate  # more than a second of speech
    assert float(abs(samples).max()) > 0.1


def test_one_push_makes_one_index_for_both_platforms(settings: Settings) -> None:
    """`inv build --platform linux/amd64,linux/arm64 --push`: both were built before in this
    session (the host's by `inv up` users, the arm64 one above), so this is mostly cache."""
    tag = f"{settings.registry}/{settings.image}:it-two-platforms"
    report = build(
        settings,
        BuildRequest(platforms=("linux/amd64", "linux/arm64"), push=True, tags=(tag,)),
        print,
        start_platform=False,
    )
    assert report.image_digest
    reference = Reference.parse(tag)
    platforms = RegistryClient.for_settings(settings).platforms(reference.repository, reference.tag)
    assert platforms is not None and {"linux/amd64", "linux/arm64"} <= set(platforms)
