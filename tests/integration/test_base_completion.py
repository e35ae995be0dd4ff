"""The base image is a recipe, not an assumption: a Debian base with Python but without
espeak-ng is completed by the Dockerfile; one that cannot be completed is refused in one
line. Real bases made here from Debian packages, real builds on the real engine."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.engine.run import BuildFailed
from imagebuild.plan.config import Settings
from imagebuild.platform.base_image import BaseRecipe, base_image_current, make_base_image

from .conftest import BuildRunner

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_without_espeak(settings: Settings, docker_client: DockerClient) -> str:
    """Debian bookworm with python3 and venv, no espeak-ng: mmdebstrap, pushed (kept by recipe)."""
    reference = f"{settings.registry}/audiobook-tts-it/base-no-espeak:bookworm"
    recipe = replace(
        BaseRecipe.from_repository(settings),
        packages=("python3", "python3-venv", "ca-certificates"),
    )
    base_settings = replace(settings, base_image=reference)
    if not base_image_current(base_settings, recipe):
        make_base_image(base_settings, recipe, print)
    return reference


def test_a_base_without_espeak_ng_is_completed_by_the_dockerfile(
    base_without_espeak: str, build_in: BuildRunner, scratch_repo: Path, docker_client: DockerClient
) -> None:
    probe = docker_client.run(
        base_without_espeak, ["sh", "-c", "command -v espeak-ng || echo absent"], remove=True
    )
    assert str(probe).strip() == "absent"
    report = build_in(
        scratch_repo, target="base", build_args=(f"BASE_IMAGE={base_without_espeak}",)
    )
    image = report.tags[0]
    spoken = docker_client.run(
        image,
        ["sh", "-c", "espeak-ng -w /tmp/hello.wav 'Chapter one.' && wc -c < /tmp/hello.wav"],
        remove=True,
    )
    assert int(str(spoken).strip()) > 10_000  # a real WAV of speech, not an empty header
    check = next(step for step in report.steps if "python_minor" in step.name)
    if not check.cached:  # a cached step printed nothing this time; it did when it ran
        assert "completing the base image with: espeak-ng" in Path(report.log_path).read_text()


def test_a_base_that_cannot_be_completed_is_refused_in_one_line(
    base_without_espeak: str, build_in: BuildRunner, scratch_repo: Path, docker_client: DockerClient
) -> None:
    # The same base with apt taken away: nothing can install espeak-ng into it.
    reference = f"{base_without_espeak.rsplit(':', 1)[0]}:no-apt-{uuid.uuid4().hex[:8]}"
    folder = scratch_repo.parent / "no-apt"
    folder.mkdir()
    (folder / "Dockerfile").write_text(
        f"FROM {base_without_espeak}\nRUN rm /usr/bin/apt-get /usr/bin/apt\n"
    )
    docker_client.buildx.build(folder, tags=[reference], push=True)
    try:
        with pytest.raises(BuildFailed) as failed:
            build_in(scratch_repo, target="base", build_args=(f"BASE_IMAGE={reference}",))
        message = failed.value.message
        assert "\n" not in message
        assert "lacks espeak-ng and has no apt-get" in message
    finally:
        docker_client.image.remove(reference, force=True)
