"""buildspec.yml, run phase by phase as CodeBuild runs it: CodeBuild's variables, an engine
with the classic image store (CodeBuild's kind, started by the tests), and the authenticated
registry standing in for ECR. A failed phase fails the run, as it would fail the build."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from imagebuild.ci.buildspec import codebuild_environment, run_buildspec_file
from imagebuild.platform.registry import RegistryClient

from .conftest import TEST_IMAGE, AuthRegistry, Sandbox

pytestmark = pytest.mark.docker
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def environment(
    scratch: Path, classic: Sandbox, registry: AuthRegistry, image: str, password: str, config: Path
) -> dict[str, str]:
    keep = {key: value for key, value in os.environ.items() if not key.startswith("INVOKE_")}
    return {
        **keep,
        **codebuild_environment(scratch, COMMIT),
        "DOCKER_HOST": classic.settings.docker_host,
        "DOCKER_CONFIG": str(config),
        "INVOKE_IMAGEBUILD_REGISTRY": registry.settings.registry,
        "INVOKE_IMAGEBUILD_REGISTRY_AUTH": "true",
        "INVOKE_IMAGEBUILD_BASE_IMAGE": registry.settings.base_image,
        "INVOKE_IMAGEBUILD_IMAGE": image,
        "REGISTRY_USERNAME": "audiobook-tts",
        "REGISTRY_PASSWORD": password,
    }


def test_the_buildspec_runs_on_a_classic_engine_against_an_authenticated_registry(
    classic_sandbox: Sandbox, auth_registry: AuthRegistry, scratch_repo: Path, tmp_path: Path
) -> None:
    image = f"{TEST_IMAGE}-codebuild-{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    config = tmp_path / "docker-config"
    config.mkdir()

    # A wrong secret: pre_build fails, so build and post_build never run.
    wrong = environment(scratch_repo, classic_sandbox, auth_registry, image, "wrong", config)
    refused = run_buildspec_file(scratch_repo / "buildspec.yml", scratch_repo, wrong, lines.append)
    assert [(phase.name, phase.status) for phase in refused.phases] == [
        ("install", "SUCCEEDED"),
        ("pre_build", "FAILED"),
        ("build", "SKIPPED"),
        ("post_build", "SKIPPED"),
    ]
    assert refused.phases[1].failed_command == ".venv/bin/inv login"
    assert any("the registry refused the password" in line for line in lines)

    lines.clear()
    env = environment(
        scratch_repo, classic_sandbox, auth_registry, image, auth_registry.password, config
    )
    run = run_buildspec_file(scratch_repo / "buildspec.yml", scratch_repo, env, lines.append)
    assert run.succeeded, "\n".join(lines[-40:])
    assert [phase.status for phase in run.phases] == ["SUCCEEDED"] * 4
    # CodeBuild's engine has the classic store; here its builder cannot start (no Docker Hub),
    # so the registry cache falls back to inline, and says so in one line.
    assert sum("cache fallback:" in line for line in lines) >= 1
    summary = (scratch_repo / "build-logs" / "ci-summary.md").read_text()
    assert COMMIT in summary and "| smoke test | passed |" in summary
    tags = RegistryClient.for_settings(
        auth_registry.settings, ("audiobook-tts", auth_registry.password)
    ).tags(image)
    assert {"latest", COMMIT[:12]} <= set(tags)
    assert auth_registry.password not in "\n".join(lines)
