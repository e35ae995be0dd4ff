"""An engine with the classic image store (CodeBuild's, most CI runners'): `--cache registry`
goes through a docker-container builder, or falls back to inline cache with one line, and a
second runner still gets the heavy steps through the authenticated registry. Real engine,
real registry."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from imagebuild.build.flow import build
from imagebuild.engine.docker import DockerEngine
from imagebuild.plan.request import BuildRequest
from imagebuild.platform.registry import Reference, RegistryClient

from .conftest import TEST_IMAGE, AuthRegistry, Sandbox

pytestmark = pytest.mark.docker
HEAVY = ("[layer-torch 2/2] RUN", "[layer-numpy 2/2] RUN")


def test_registry_cache_on_the_classic_store_builds_and_a_fresh_runner_reuses_it(
    classic_sandbox: Sandbox, auth_registry: AuthRegistry, scratch_repo: Path, tmp_path: Path
) -> None:
    assert not DockerEngine.of(classic_sandbox.settings).facts().containerd_store
    image = f"{TEST_IMAGE}-classic-{uuid.uuid4().hex[:8]}"
    settings = replace(
        auth_registry.settings,
        docker_host=classic_sandbox.settings.docker_host,
        root=scratch_repo,
        dockerfile=scratch_repo / "docker/tts/Dockerfile",
        log_dir=scratch_repo / "build-logs",
        image=image,
        builder_name=f"it-{uuid.uuid4().hex[:8]}",
    )
    tag = f"{settings.registry}/{image}:ci"
    request = BuildRequest(tags=(tag,), cache_mode="registry", push=True, progress="quiet")
    said: list[str] = []
    first = build(settings, request, said.append, start_platform=False)
    assert first.succeeded

    builder_ran = any("through the docker-container builder" in line for line in said)
    fallback = [line for line in said if "cache fallback:" in line]
    # Here Docker Hub is out of reach, so the builder cannot start: one line says why.
    assert builder_ran or len(fallback) == 1, said
    if fallback:
        assert "could not start" in fallback[0] and tag in fallback[0]
        assert first.cache_mode == "inline"
    reference = Reference.parse(tag)
    assert reference.tag in RegistryClient.for_settings(settings).tags(reference.repository)

    # Runner B: nothing local, only the registry.
    classic_sandbox.docker.image.remove(tag, force=True)
    classic_sandbox.docker.buildx.prune(all=True)
    second = build(settings, request, said.append, start_platform=False)
    for prefix in HEAVY:
        heavy = [step for step in second.steps if step.name.startswith(prefix)]
        assert heavy and all(step.cached for step in heavy), second.rebuilt_step_names()
