"""`inv doctor --codebuild PROJECT` against moto's server mode: a stand-in for the AWS API,
since no AWS account is reachable here. boto3 talks HTTP to it exactly as to AWS.

What moto models: create_project and batch_get_projects keep the project as given, with
`environment.dockerServer` (compute type, security groups) and `vpcConfig`; the ECR images;
the builds and their CloudWatch logs. What it does not: the Docker Server itself (no server
starts, its `status` is never filled in, CodeBuild's refusals, e.g. of a Docker Server on
ARM_CONTAINER, are not made), update_project (not implemented), and no build runs. The
verdicts on each kind of project are unit-tested from the description alone
(tests/unit/imagebuild/ci/test_codebuild_project.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from .conftest import ROOT

REGION = "us-east-1"
LOG_GROUP = "/codebuild/audiobook-tts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto keeps its accounts in the process: every test starts from an empty AWS.
    reset = urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=10).close()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        yield env
    finally:
        server.stop()


DOCKER_SERVER = {"computeType": "BUILD_GENERAL1_MEDIUM"}
LOCAL_MODES = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]


def make_project(
    name: str,
    ci_cache: str,
    docker_server: Mapping[str, object] | None = None,
    privileged: bool = False,
    local_modes: list[str] | None = None,
) -> None:
    """A project as infra/codebuild.tf makes it (or as the seeds' was, by hand)."""
    environment: dict[str, object] = {
        "type": "LINUX_CONTAINER",
        "image": "aws/codebuild/standard:7.0",
        "computeType": "BUILD_GENERAL1_MEDIUM",
        "privilegedMode": privileged,
        "environmentVariables": [{"name": "INVOKE_CI_CACHE", "value": ci_cache}],
    }
    if docker_server is not None:
        environment["dockerServer"] = dict(docker_server)
    boto3.client("codebuild").create_project(
        name=name,
        source={"type": "GITHUB", "location": "https://example.invalid/audiobook-tts.git"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment=environment,
        serviceRole="arn:aws:iam::123456789012:role/audiobook-tts-codebuild",
        cache={"type": "LOCAL", "modes": local_modes} if local_modes else {"type": "NO_CACHE"},
        logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": LOG_GROUP}},
    )


def push_image(repository: str, tag: str) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": "sha256:" + "0" * 64,
        },
        "layers": [],
    }
    boto3.client("ecr").put_image(
        repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
    )


def log_build(project: str, lines: list[str]) -> None:
    build_id = boto3.client("codebuild").start_build(projectName=project)["build"]["id"]
    logs = boto3.client("logs")
    stream = build_id.partition(":")[2]
    now = int(time.time() * 1000)  # CloudWatch drops events older than 14 days
    logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


def doctor(project: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`inv doctor --codebuild` as a person runs it (the engine checks come first)."""
    inv_binary = Path(sys.executable).with_name("inv")
    return subprocess.run(
        [str(inv_binary), "doctor", "--codebuild", project],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def lines_of(result: subprocess.CompletedProcess[str], name: str) -> list[str]:
    out = result.stdout.splitlines()
    return [
        line
        for index, line in enumerate(out)
        if name in line or (index and name in out[index - 1] and line.startswith("      fix:"))
    ]


CACHED_LOG = [
    "[Container] Running command .venv/bin/inv ci",
    "  cached  [torch 2/2] RUN --mount=type=cache,id=pip ...",
    "  cached  [dependencies 2/2] RUN --mount=type=cache ...",
    "     0.4s [builder 2/2] RUN SOURCE_DATE_EPOCH=0 python3 -m compileall -q /app",
]


def doctor_with_image_and_cache(aws: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The project's image and its buildcache tag in ECR, a cached build logged; the doctor run."""
    boto3.client("ecr").create_repository(repositoryName="audiobook-tts")
    push_image("audiobook-tts", "latest")
    push_image("audiobook-tts", "buildcache")
    log_build("audiobook-tts", CACHED_LOG)
    return doctor("audiobook-tts", aws)


def test_the_default_project_has_the_docker_server_and_needs_no_registry_cache(
    aws: dict[str, str],
) -> None:
    make_project("audiobook-tts", "inline", docker_server=DOCKER_SERVER)
    # moto keeps the Docker Server as given: the doctor reads it back over HTTP.
    described = boto3.client("codebuild").batch_get_projects(names=["audiobook-tts"])
    assert described["projects"][0]["environment"]["dockerServer"] == DOCKER_SERVER
    boto3.client("ecr").create_repository(repositoryName="audiobook-tts")
    push_image("audiobook-tts", "latest")
    log_build("audiobook-tts", CACHED_LOG)
    result = doctor("audiobook-tts", aws)
    text = result.stdout
    assert result.returncode == 0, text + result.stderr
    assert (
        "ok    codebuild project: audiobook-tts: the builds' Docker is the project's Docker Server"
        in text
    )
    assert "ok    codebuild cache: Docker Server (BUILD_GENERAL1_MEDIUM): gives every layer" in text
    assert "24 min 54 s to 16 s" in text
    assert "ok    ecr image: audiobook-tts:latest" in text
    assert "no registry cache needed (Docker Server)" in text
    assert "ok    cached steps: build audiobook-tts:" in text and "2 steps CACHED" in text


def test_the_ecr_registry_cache_variant_passes_with_its_cache_in_ecr(aws: dict[str, str]) -> None:
    make_project("audiobook-tts", "registry", privileged=True, local_modes=LOCAL_MODES)
    result = doctor_with_image_and_cache(aws)
    text = result.stdout
    assert result.returncode == 0, text + result.stderr
    assert "ok    codebuild project: audiobook-tts: privileged" in text
    assert "ok    codebuild cache: ECR registry cache: gives any build host the cache" in text
    assert "(and LOCAL_DOCKER_LAYER_CACHE, best effort)" in text
    assert "ok    ecr image: audiobook-tts:latest" in text and "buildcache present" in text


def test_the_seeds_local_layer_cache_alone_warns_and_names_the_stronger_ones(
    aws: dict[str, str],
) -> None:
    make_project("audiobook-tts", "inline", privileged=True, local_modes=LOCAL_MODES)
    result = doctor_with_image_and_cache(aws)
    text = result.stdout
    assert result.returncode == 0, text + result.stderr
    assert (
        "warn  codebuild cache: LOCAL_DOCKER_LAYER_CACHE: gives the layers only to a build" in text
    )
    assert "fix: docker_server = true (the default in infra/codebuild.tf)" in text


def test_a_project_without_docker_cache_or_image_names_each_fix(aws: dict[str, str]) -> None:
    make_project("audiobook-tts", "inline")
    boto3.client("ecr").create_repository(repositoryName="audiobook-tts")
    log_build("audiobook-tts", ["     52.1s [torch 2/2] RUN --mount=type=cache ..."])
    result = doctor("audiobook-tts", aws)
    assert result.returncode == 1
    text = result.stdout
    assert "FAIL  codebuild project: audiobook-tts: no Docker Server and not privileged" in text
    assert "FAIL  codebuild cache: none: gives nothing" in text
    assert "fix: docker_server = true" in text
    assert "FAIL  ecr image: audiobook-tts has no image tagged latest" in text
    assert "warn  cached steps" in text and "no step came from the cache" in text
    assert result.stderr.strip().startswith("error: 3 check(s) failed")


def test_a_missing_project_and_repository_point_at_the_terraform(aws: dict[str, str]) -> None:
    result = doctor("nope", aws)
    assert "FAIL  codebuild project: nope does not exist" in result.stdout
    assert "infra/codebuild.tf" in result.stdout
    assert "FAIL  ecr image: no ECR repository audiobook-tts" in result.stdout
