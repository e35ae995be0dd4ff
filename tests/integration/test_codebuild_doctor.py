"""`inv doctor --codebuild PROJECT` against moto's server mode: a stand-in for the AWS API,
since no AWS account is reachable here. boto3 talks HTTP to it exactly as to AWS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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


def make_project(name: str, cached: bool) -> None:
    codebuild = boto3.client("codebuild")
    codebuild.create_project(
        name=name,
        source={"type": "GITHUB", "location": "https://example.invalid/audiobook-tts.git"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_MEDIUM",
            "privilegedMode": True,
        },
        serviceRole="arn:aws:iam::123456789012:role/audiobook-tts-codebuild",
        cache=(
            {"type": "LOCAL", "modes": ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]}
            if cached
            else {"type": "NO_CACHE"}
        ),
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


def test_a_project_as_infra_sets_it_up_passes_all_three_checks(aws: dict[str, str]) -> None:
    make_project("audiobook-tts", cached=True)
    boto3.client("ecr").create_repository(repositoryName="audiobook-tts")
    push_image("audiobook-tts", "latest")
    push_image("audiobook-tts", "buildcache")
    log_build(
        "audiobook-tts",
        [
            "[Container] Running command .venv/bin/inv ci",
            "  cached  [torch 2/2] RUN --mount=type=cache,id=pip ...",
            "  cached  [dependencies 2/2] RUN --mount=type=cache ...",
            "     0.4s [builder 2/2] RUN SOURCE_DATE_EPOCH=0 python3 -m compileall -q /app",
        ],
    )
    result = doctor("audiobook-tts", aws)
    text = result.stdout
    assert "ok    codebuild project: audiobook-tts: cache LOCAL LOCAL_DOCKER_LAYER_CACHE" in text
    assert "ok    ecr image: audiobook-tts:latest" in text and "buildcache present" in text
    assert "ok    cached steps: build audiobook-tts:" in text and "2 steps CACHED" in text


def test_a_project_without_cache_or_image_names_each_fix(aws: dict[str, str]) -> None:
    make_project("audiobook-tts", cached=False)
    boto3.client("ecr").create_repository(repositoryName="audiobook-tts")
    log_build("audiobook-tts", ["     52.1s [torch 2/2] RUN --mount=type=cache ..."])
    result = doctor("audiobook-tts", aws)
    assert result.returncode == 1
    text = result.stdout
    assert "FAIL  codebuild project: audiobook-tts: cache is NO_CACHE" in text
    assert 'fix: cache { type = "LOCAL", modes = ["LOCAL_DOCKER_LAYER_CACHE"] }' in text
    assert "FAIL  ecr image: audiobook-tts has no image tagged latest" in text
    assert "warn  cached steps" in text and "no step came from the cache" in text
    assert result.stderr.strip().startswith("error: 2 check(s) failed")


def test_a_missing_project_and_repository_point_at_the_terraform(aws: dict[str, str]) -> None:
    result = doctor("nope", aws)
    assert "FAIL  codebuild project: nope does not exist" in result.stdout
    assert "infra/codebuild.tf" in result.stdout
    assert "FAIL  ecr image: no ECR repository audiobook-tts" in result.stdout
