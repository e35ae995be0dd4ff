"""A new base image rebases the package layers; a new installer (another Python) rebuilds them.

The weekly security patch of a base image must not reinstall torch: the package stages build
on the pinned installer image, and the runtime joins them with COPY --link. Real builds on
the real engine, real bases pushed to the local registry, the image run afterwards.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.engine.run import BuildFailed
from imagebuild.locks.layers import all_layers, layers_of
from imagebuild.plan.config import Settings
from tests.containers import pip_check

from .conftest import BuildRunner, steps

pytestmark = pytest.mark.docker
LAYER_STAGES = tuple(
    f"layer-{layer.name}"
    for layer in all_layers(layers_of(Path(__file__).parents[2] / "requirements"))
)
PACKAGE_STAGES = ("installer", "package-slices", *LAYER_STAGES, "checked", "builder")
# The runtime's COPY --link layers: one a package layer, the pip check's verdict, script, code.
LINKED = slice(-(len(LAYER_STAGES) + 3), None)


def derived_base(
    docker_client: DockerClient, settings: Settings, folder: Path, instruction: str
) -> str:
    """The configured base plus one instruction, pushed under a tag of the tests' own."""
    reference = f"{settings.registry}/audiobook-tts-it/base:{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(f"FROM {settings.base_image}\n{instruction}\n")
    docker_client.buildx.build(folder, tags=[reference], push=True)
    return reference


def layers(docker_client: DockerClient, tag: str) -> list[str]:
    return list(docker_client.image.inspect(tag).root_fs.layers or [])


def speaks(docker_client: DockerClient, tag: str) -> dict[str, object]:
    """The report of a chapter rendered by the image's own command line (exit 3: not ACX)."""
    script = (
        "printf 'Chapter one. It was a bright cold day.' > /tmp/chapter.txt"
        " && { audiobook-tts chapter /tmp/chapter.txt -o /tmp/chapter.wav || [ $? = 3 ]; }"
    )
    output = docker_client.run(tag, ["-c", script], entrypoint="sh", remove=True)
    report: dict[str, object] = json.loads(str(output).strip().splitlines()[-1])
    return report


def test_a_patched_base_with_the_same_python_rebases_the_layers_and_the_image_still_works(
    settings: Settings, build_in: BuildRunner, scratch_repo: Path, docker_client: DockerClient
) -> None:
    before = build_in(scratch_repo)
    patched = derived_base(
        docker_client,
        settings,
        scratch_repo.parent / "patched-base",
        f"RUN echo 'security patch {uuid.uuid4().hex}' > /etc/patch-marker",
    )
    try:
        after = build_in(scratch_repo, build_args=(f"BASE_IMAGE={patched}",))
        # Nothing was reinstalled: every package stage came from the cache ...
        for stage in PACKAGE_STAGES:
            assert steps(after, stage) and all(cached for _, cached in steps(after, stage)), (
                stage,
                steps(after, stage),
            )
        # ... while the base's own steps ran again on the new base.
        assert not all(cached for _, cached in steps(after, "base"))
        old, new = layers(docker_client, before.tags[0]), layers(docker_client, after.tags[0])
        assert new[0] == old[0] and len(new) == len(old) + 1  # the patch is one layer more
        assert new[LINKED] == old[LINKED], "the torch and package layers changed digest"
        tag = after.tags[0]
        version = docker_client.run(
            tag, ["-c", "import torch; print(torch.__version__)"], entrypoint="python3", remove=True
        )
        assert str(version).strip().startswith("2.")
        assert "No broken requirements found" in pip_check(docker_client, tag)
        spoken = speaks(docker_client, tag)
        assert float(str(spoken["duration_seconds"])) > 1.5, spoken  # real speech, not a header
        marker = docker_client.run(tag, ["/etc/patch-marker"], entrypoint="cat", remove=True)
        assert "security patch" in str(marker)
    finally:
        docker_client.image.remove(patched, force=True)


def test_another_python_minor_is_refused_as_a_base_and_rebuilds_as_an_installer(
    settings: Settings, build_in: BuildRunner, scratch_repo: Path, docker_client: DockerClient
) -> None:
    # A stand-in for a base with Python 3.12 (bookworm has only 3.11): its interpreter
    # reports 3.12, which is all the Dockerfile's checks can see.
    other_python = derived_base(
        docker_client,
        settings,
        scratch_repo.parent / "python-3.12",
        "RUN echo 'import sys; sys.version_info = (3, 12, 0, \"final\", 0)' "
        "> /etc/python3.11/sitecustomize.py",
    )
    new_installer = derived_base(
        docker_client,
        settings,
        scratch_repo.parent / "new-installer",
        f"RUN echo '{uuid.uuid4().hex}' > /etc/installer-marker",
    )
    try:
        # Rebasing 3.11 packages onto it would ship a broken image: the build refuses.
        with pytest.raises(BuildFailed) as refused:
            build_in(scratch_repo, build_args=(f"BASE_IMAGE={other_python}",))
        assert "the base image's python3 is '3.12'; the locks are for Python 3.11" in (
            refused.value.message
        )
        with pytest.raises(BuildFailed) as refused_installer:
            build_in(scratch_repo, build_args=(f"INSTALLER_IMAGE={other_python}",))
        assert "the installer image's python3 is '3.12'" in refused_installer.value.message
        # A new installer image (what a new Python needs) reinstalls every package layer.
        build_in(scratch_repo)
        rebuilt = build_in(scratch_repo, build_args=(f"INSTALLER_IMAGE={new_installer}",))
        for stage in ("layer-torch", "layer-numpy", "builder"):
            assert not any(cached for _, cached in steps(rebuilt, stage)), steps(rebuilt, stage)
        assert all(cached for _, cached in steps(rebuilt, "base"))
    finally:
        docker_client.image.remove([other_python, new_installer], force=True)
