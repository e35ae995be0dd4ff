"""Two runners, one cache, through the authenticated registry: runner A builds and exports
the registry cache; runner B, a fresh engine that has never built, builds the same commit
and gets the torch and dependency steps from that cache. Containerd image store (the
classic store's path is in test_classic_engine.py). Real engines, real registry."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from imagebuild.build.flow import build
from imagebuild.plan.config import Settings
from imagebuild.plan.request import BuildRequest
from imagebuild.platform import sandbox as sandbox_module

from .conftest import TEST_IMAGE, AuthRegistry

pytestmark = pytest.mark.docker
HEAVY = ("[layer-torch 2/2] RUN", "[layer-numpy 2/2] RUN")


def test_a_fresh_runner_gets_the_heavy_steps_from_the_registry_cache(
    auth_registry: AuthRegistry, settings: Settings, scratch_repo: Path
) -> None:
    image = f"{TEST_IMAGE}-runners-{uuid.uuid4().hex[:8]}"
    runner_a = replace(
        auth_registry.settings,
        root=scratch_repo,
        dockerfile=scratch_repo / "docker/tts/Dockerfile",
        log_dir=scratch_repo / "build-logs",
        image=image,
    )
    tag = f"{runner_a.registry}/{image}:commit"
    request = BuildRequest(tags=(tag,), cache_mode="registry", push=True, progress="quiet")
    first = build(runner_a, request, print, start_platform=False)
    assert first.succeeded and first.cache_mode == "registry"

    box = sandbox_module.sandbox(settings, "runner-b", cidr="172.17.202.0/24")
    sandbox_module.start(box, print, fresh=True)
    try:
        runner_b = box.settings(runner_a)
        said: list[str] = []
        second = build(runner_b, request, said.append, start_platform=False)
    finally:
        sandbox_module.stop(box, print, wipe=True)
    assert not any("cache fallback" in line for line in said)
    for prefix in HEAVY:
        heavy = [step for step in second.steps if step.name.startswith(prefix)]
        assert heavy and all(step.cached for step in heavy), second.rebuilt_step_names()
    assert second.downloaded_bytes == 0
