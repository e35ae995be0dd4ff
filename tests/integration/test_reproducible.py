"""Same commit, same inputs -> the same image digest, even with the builder's cache gone."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from imagebuild.build import build
from imagebuild.plan import BuildRequest

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


def test_two_builds_of_one_commit_with_the_cache_pruned_between_have_one_digest(
    sandbox: Sandbox, scratch_repo: Path
) -> None:
    commit(scratch_repo)
    settings = replace(
        sandbox.settings,
        root=scratch_repo,
        dockerfile=scratch_repo / "docker/tts/Dockerfile",
        log_dir=scratch_repo / "build-logs",
    )
    tag = f"audiobook-tts-it:repro-{uuid.uuid4().hex[:8]}"
    request = BuildRequest(tags=(tag,), reproducible=True, progress="quiet", cache_mode="none")
    first = build(settings, request, print, start_platform=False)
    sandbox.docker.image.remove(tag, force=True)
    sandbox.docker.buildx.prune(all=True)
    second = build(settings, request, print, start_platform=False)
    assert second.steps_cached == 0, "the prune did not empty the builder"
    assert first.image_digest and first.image_digest == second.image_digest
    created = sandbox.docker.image.inspect(tag).created
    assert created is not None and created.isoformat().startswith("2026-11-01T12:00:00")
