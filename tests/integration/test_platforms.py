"""A platform the base image lacks is refused before anything is built: BuildKit would take
the base's amd64 layers and label the result arm64 (a silent wrong image). Real registry,
real `inv build`, on a base tag that holds the host's platform only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagebuild.build.flow import build
from imagebuild.errors import ImageBuildError
from imagebuild.plan.config import Settings
from imagebuild.plan.request import BuildRequest
from imagebuild.platform.registry import Reference, RegistryClient

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
ONE_PLATFORM_TAG = "it-amd64-only"


@pytest.fixture
def amd64_only_base(settings: Settings, docker_client: object) -> Iterator[str]:
    """Today's base as it was before any other platform: a tag of its linux/amd64 manifest."""
    reference = Reference.parse(settings.base_image)
    client = RegistryClient.for_settings(settings)
    manifest = client.manifest(reference.repository, reference.tag)
    if manifest is None:
        pytest.fail(f"no base image {settings.base_image}: run `inv up`")
    digest = client.platform_digest(reference.repository, reference.tag, "linux/amd64")
    client.add_tag(reference.repository, digest, ONE_PLATFORM_TAG)
    assert client.platforms(reference.repository, ONE_PLATFORM_TAG) == ("linux/amd64",)
    yield f"{settings.registry}/{reference.repository}:{ONE_PLATFORM_TAG}"


def test_an_arm64_build_on_an_amd64_only_base_fails_in_one_line(
    settings: Settings, amd64_only_base: str, tmp_path: Path
) -> None:
    arguments = (f"BASE_IMAGE={amd64_only_base}", f"INSTALLER_IMAGE={amd64_only_base}")
    request = BuildRequest(platforms=("linux/arm64",), build_args=arguments, load=False)
    with pytest.raises(ImageBuildError) as refused:
        build(settings, request, print, start_platform=False)
    message = str(refused.value)
    assert "\n" not in message
    assert f"the base image {amd64_only_base} has linux/amd64 only; linux/arm64 is missing" in (
        message
    )
    assert "`inv up --platform linux/amd64,linux/arm64`" in message
    # As a person types it: one line on stderr, exit 1, and no build was started.
    history = settings.history_path.read_text() if settings.history_path.exists() else ""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("inv")),
            "build",
            "--platform",
            "linux/arm64",
            "--no-load",
            *(item for argument in arguments for item in ("--build-arg", argument)),
        ],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: the base image "), result.stderr
    after = settings.history_path.read_text() if settings.history_path.exists() else ""
    assert after == history  # refused before buildx: nothing ran, nothing was recorded


def test_a_torch_variant_without_a_lock_for_the_platform_is_refused(settings: Settings) -> None:
    request = BuildRequest(platforms=("linux/arm64",), torch_variant="cuda", load=False)
    with pytest.raises(ImageBuildError, match=r"the cuda torch has no lock for arm64"):
        build(settings, request, print, start_platform=False)
