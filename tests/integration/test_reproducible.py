"""Same commit, same inputs -> the same image digest, even with the builder's cache gone."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from imagebuild.build.flow import build
from imagebuild.plan.request import BuildRequest

from .conftest import Sandbox

pytestmark = pytest.mark.docker


def commit(root: Path) -> None:
    """A scratch copy with a commit of its own: SOURCE_DATE_EPOCH comes from git."""
    env = {
        "GIT_AUTHOR_DATE": "2026-11-01T12:00:00Z",
        "GIT_COMMITTER_DATE": "2026-11-01T12:00:00Z",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
    }
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "scratch"]):
        subprocess.run(["git", "-C", str(root), *command], check=True, env=env, capture_output=True)


def test_a_warm_and_a_cold_build_of_one_commit_have_one_digest_with_the_default_cache(
    sandbox: Sandbox, scratch_repo: Path
) -> None:
    commit(scratch_repo)
    settings = replace(
        sandbox.settings,
        root=scratch_repo,
        dockerfile=scratch_repo / "docker/tts/Dockerfile",
        log_dir=scratch_repo / "build-logs",
    )
    assert settings.cache == "inline", "the test is about the default cache mode"
    tag = f"audiobook-tts-it:repro-{uuid.uuid4().hex[:8]}"
    request = BuildRequest(tags=(tag,), reproducible=True, progress="quiet")
    first = build(settings, request, print, start_platform=False)
    warm = build(settings, request, print, start_platform=False)
    assert warm.all_cached, "the second build should find every step in the builder's cache"
    sandbox.docker.image.remove(tag, force=True)
    sandbox.docker.buildx.prune(all=True)
    cold = build(settings, request, print, start_platform=False)
    # After the prune nothing comes from the cache but a COPY --link that repeats a layer this
    # very build made (the CPU image's empty cuda-libraries and engines layers are one).
    from_cache = [step.name for step in cold.steps if step.cached]
    assert all("COPY --link --from=" in name for name in from_cache), from_cache
    assert len(from_cache) <= 1, f"the prune did not empty the builder: {from_cache}"
    assert first.image_digest and first.image_digest == warm.image_digest == cold.image_digest
    config = sandbox.docker.image.inspect(tag)
    assert config.created is not None and config.created.isoformat().startswith(
        "2026-11-01T12:00:00"
    )
    labels = config.config.labels or {}
    assert "moby.buildkit.cache.v0" not in labels
