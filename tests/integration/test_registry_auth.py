"""The authenticated registry (htpasswd + TLS with the project's own CA), as ECR would be:
anonymous pushes are refused, a wrong password is one clear line, and no password reaches
a log, the build history, BuildKit's raw stream or the image. Real registry, real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from python_on_whales import DockerClient, DockerException

from imagebuild.build.flow import build
from imagebuild.build.saved_image import SavedImage
from imagebuild.plan.request import BuildRequest
from imagebuild.platform.registry import Reference, RegistryClient

from .conftest import ROOT, TEST_IMAGE, AuthRegistry

pytestmark = pytest.mark.docker


def inv(
    arguments: list[str],
    registry: AuthRegistry,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`inv` as a person runs it, aimed at the authenticated registry."""
    environment = {
        **os.environ,
        "INVOKE_IMAGEBUILD_REGISTRY": registry.settings.registry,
        "INVOKE_IMAGEBUILD_REGISTRY_AUTH": "true",
    }
    environment.pop("REGISTRY_PASSWORD", None)
    environment.update(env or {})
    inv_binary = Path(sys.executable).with_name("inv")
    return subprocess.run(
        [str(inv_binary), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        input=input,
    )


def test_the_registry_wants_a_login_over_tls_that_only_the_engine_trusts(
    auth_registry: AuthRegistry,
) -> None:
    settings = auth_registry.settings
    anonymous = RegistryClient(
        settings.registry, scheme="https", ca_file=settings.registry_ca, credentials=None
    )
    assert anonymous.status() == 401
    assert (
        RegistryClient.for_settings(settings, ("audiobook-tts", auth_registry.password)).status()
        == 200
    )
    # The system's CA bundle does not know the project's CA: plain clients refuse the server.
    untrusted = RegistryClient(settings.registry, scheme="https")
    assert untrusted.status() is None
    assert Path(f"/etc/docker/certs.d/{settings.registry}/ca.crt").read_bytes() == (
        settings.registry_paths.ca_cert.read_bytes()
    )


def test_an_anonymous_push_is_refused(
    auth_registry: AuthRegistry, settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no login at all
    docker = DockerClient()
    reference = f"{auth_registry.settings.registry}/{TEST_IMAGE}/anonymous:{uuid.uuid4().hex[:8]}"
    docker.image.tag(auth_registry.settings.base_image, reference)
    try:
        with pytest.raises(DockerException) as refused:
            docker.image.push(reference, quiet=True)
        said = f"{refused.value.stderr}{refused.value.stdout}".lower()
        assert "no basic auth credentials" in said or "unauthorized" in said
    finally:
        docker.image.remove(reference, force=True)


def test_a_wrong_password_is_one_line_and_a_right_one_logs_in(
    auth_registry: AuthRegistry, tmp_path: Path
) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path)}
    wrong = f"wrong-{uuid.uuid4().hex}"
    refused = inv(["login", "--password-stdin"], auth_registry, input=wrong + "\n", env=env)
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: cannot log in to {auth_registry.settings.registry}"
    )
    assert wrong not in refused.stdout + refused.stderr
    nothing = inv(["login"], auth_registry, env=env)
    assert nothing.returncode == 1 and "REGISTRY_PASSWORD" in nothing.stderr
    right = inv(["login"], auth_registry, env={**env, "REGISTRY_PASSWORD": auth_registry.password})
    assert right.returncode == 0, right.stderr
    assert f"logged in to {auth_registry.settings.registry} as audiobook-tts" in right.stdout
    assert auth_registry.password not in right.stdout + right.stderr


def test_no_password_reaches_the_logs_the_history_the_raw_stream_or_the_image(
    auth_registry: AuthRegistry, scratch_repo: Path, docker_client: DockerClient, tmp_path: Path
) -> None:
    settings = replace(
        auth_registry.settings,
        root=scratch_repo,
        dockerfile=scratch_repo / "docker/tts/Dockerfile",
        log_dir=scratch_repo / "build-logs",
        image=f"{TEST_IMAGE}-auth-{uuid.uuid4().hex[:8]}",
    )
    tag = f"{settings.registry}/{settings.image}:secret-check"
    request = BuildRequest(
        tags=(tag,), cache_mode="registry", push=True, load=True, progress="quiet"
    )
    report = build(settings, request, print, start_platform=False)
    reference = Reference.parse(tag)
    assert reference.tag in RegistryClient.for_settings(settings).tags(reference.repository)
    secret = auth_registry.password.encode()
    written = sorted(path for path in (scratch_repo / "build-logs").rglob("*") if path.is_file())
    assert any(path.suffix == ".rawjson" for path in written)
    assert any(path.name == "history.jsonl" for path in written)
    assert [path for path in written if secret in path.read_bytes()] == []
    archive = tmp_path / "image.tar"
    docker_client.image.save(report.tags[0], output=archive)
    with SavedImage(archive) as saved:
        assert list(saved.find_bytes([secret])) == []
        assert secret not in json.dumps(saved.config()).encode()
    docker_client.image.remove(tag, force=True)
