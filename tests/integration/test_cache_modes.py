"""Each cache mode is real: build, throw away the builder's cache and the image, rebuild from
that cache alone, and the heavy steps (torch, dependencies) come from it.

All of it runs on a sandbox engine (a second dockerd, wiped first), so pruning here never
makes your own next build cold."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imagebuild.build.flow import build
from imagebuild.engine.report import BuildReport
from imagebuild.plan.config import Settings
from imagebuild.plan.request import BuildRequest

from .conftest import TEST_IMAGE, Sandbox

pytestmark = pytest.mark.docker
HEAVY = ("[layer-torch 2/2] RUN", "[layer-numpy 2/2] RUN")


def heavy_steps_cached(report: BuildReport) -> dict[str, bool]:
    return {
        prefix: all(step.cached for step in report.steps if step.name.startswith(prefix))
        and any(step.name.startswith(prefix) for step in report.steps)
        for prefix in HEAVY
    }


@pytest.fixture
def scratch_settings(sandbox: Sandbox, scratch_repo: Path, tmp_path: Path) -> Settings:
    return replace(
        sandbox.settings,
        root=scratch_repo,
        dockerfile=scratch_repo / "docker/tts/Dockerfile",
        log_dir=scratch_repo / "build-logs",
        state_dir=tmp_path / "state",
        image=f"{TEST_IMAGE}-{uuid.uuid4().hex[:8]}",
    )


Forget = Callable[..., None]


@pytest.fixture
def forget(sandbox: Sandbox) -> Iterator[Forget]:
    docker_client = sandbox.docker
    made: list[str] = []

    def forget_everything(*tags: str) -> None:
        """`docker buildx prune -af` and the images: nothing local is left to hit."""
        made.extend(tags)
        present = [tag for tag in tags if docker_client.image.exists(tag)]
        if present:
            docker_client.image.remove(present, force=True)
        docker_client.buildx.prune(all=True)

    yield forget_everything
    leftovers = [tag for tag in made if docker_client.image.exists(tag)]
    if leftovers:
        docker_client.image.remove(leftovers, force=True)


def run(settings: Settings, **request: Any) -> BuildReport:
    request.setdefault("progress", "quiet")
    return build(settings, BuildRequest(**request), print, start_platform=False)


def test_after_a_prune_nothing_is_cached_without_a_cache_source(
    scratch_settings: Settings, forget: Forget
) -> None:
    """The control: the prune really empties the builder, so the tests below can fail."""
    tag = f"{scratch_settings.image}:control"
    run(scratch_settings, target="base", tags=(tag,), cache_mode="none")
    forget(tag)
    report = run(scratch_settings, target="base", tags=(tag,), cache_mode="inline")
    assert report.steps_cached == 0, report.cached_step_names()


@pytest.mark.parametrize("mode", ["inline", "local", "registry"])
def test_the_cache_mode_alone_brings_the_heavy_steps_back(
    mode: str, scratch_settings: Settings, forget: Forget
) -> None:
    """Build, forget every local trace, rebuild: the heavy steps come from the mode's cache.
    Inline cache travels in the pushed image (read back with --cache-from); local cache in a
    directory swapped, not grown; registry cache with mode=max (the builder stage too)."""
    inline = mode == "inline"
    tag = f"{scratch_settings.image}:{mode}"
    if inline:
        tag = f"{scratch_settings.registry}/{tag}"
    first = run(scratch_settings, cache_mode=mode, tags=(tag,), push=inline, load=True)
    assert first.succeeded
    cache_root = scratch_settings.local_cache_dir
    if mode == "local":
        assert [p.name for p in cache_root.iterdir()] == ["current"]
    forget(tag)
    rebuilt = run(
        scratch_settings, cache_mode=mode, tags=(tag,), cache_from=(tag,) if inline else ()
    )
    assert heavy_steps_cached(rebuilt) == {prefix: True for prefix in HEAVY}, rebuilt.steps
    if mode == "local":
        # The export went to a fresh directory that replaced the old one: still one cache.
        assert [p.name for p in cache_root.iterdir()] == ["current"]
    if mode == "registry":
        # mode=max: the builder stage (not part of the final image) came from the cache too.
        assert all(step.cached for step in rebuilt.steps if step.stage == "builder"), rebuilt.steps
