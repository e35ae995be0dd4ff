"""The built image, started and inspected: health, user, torch, speech, and what it must not hold."""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
import urllib.request
import wave
from array import array
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.build.saved_image import find_leaks
from imagebuild.plan.config import HostPackageSettings
from tests.containers import Service, pip_check, post_json

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def locked_torch_version() -> str:
    text = (ROOT / "requirements" / "torch-cpu.txt").read_text()
    match = re.search(r"^torch==(\S+)", text, re.MULTILINE)
    assert match, "requirements/torch-cpu.txt pins no torch"
    return match.group(1)


def test_healthz_answers_with_version_and_torch_variant(service: Service) -> None:
    with urllib.request.urlopen(f"{service.url}/healthz", timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "ok"
    assert body["torch"]["variant"] == "cpu"
    assert body["torch"]["version"] == locked_torch_version()


def test_installed_packages_are_consistent(docker_client: DockerClient, image: str) -> None:
    # The layers were installed apart (--no-deps); together they must satisfy each other.
    assert "No broken requirements found" in pip_check(docker_client, image)


def test_the_runtime_has_no_pip(docker_client: DockerClient, image: str) -> None:
    probe = ["-c", "import importlib.util as u; print(u.find_spec('pip') is None)"]
    assert str(docker_client.run(image, probe, entrypoint="python3", remove=True)) == "True"


def test_image_label_names_the_torch_variant(docker_client: DockerClient, image: str) -> None:
    labels = docker_client.image.inspect(image).config.labels or {}
    assert labels.get("io.audiobook-tts.torch-variant") == "cpu"


def test_readyz_lists_the_default_images_engines(service: Service) -> None:
    with urllib.request.urlopen(f"{service.url}/readyz", timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "ready"
    # The default image speaks with piper (a neural voice) beside espeak, and hears nothing.
    assert [engine["name"] for engine in body["engines"]] == ["espeak", "piper"]
    assert body["listener"] is None


def test_service_process_is_not_root(docker_client: DockerClient, service: Service) -> None:
    uid = str(docker_client.container.execute(service.container, ["id", "-u"])).strip()
    assert uid != "0"
    # PID 1 is the service itself, running as that user.
    status = str(docker_client.container.execute(service.container, ["cat", "/proc/1/status"]))
    assert re.search(r"^Uid:\s+10001\b", status, re.MULTILINE), status


def test_torch_imports_at_the_locked_version(docker_client: DockerClient, service: Service) -> None:
    version = str(
        docker_client.container.execute(
            service.container, ["python", "-c", "import torch; print(torch.__version__)"]
        )
    ).strip()
    assert version == locked_torch_version()


def test_torch_computes_without_the_files_the_build_trims(
    docker_client: DockerClient, service: Service
) -> None:
    script = (
        "import pathlib, torch; t = torch.arange(6.0).reshape(2, 3);"
        " print((t @ t.T).sum().item());"
        " root = pathlib.Path(torch.__file__).parent;"
        " print(sorted(p.name for p in (root / 'bin').iterdir()));"
        " print([n for n in ('include', 'test', 'share') if (root / n).exists()])"
    )
    lines = str(docker_client.container.execute(service.container, ["python", "-c", script]))
    product, binaries, development = lines.strip().splitlines()
    assert float(product) == 83.0
    assert binaries == "['torch_shm_manager']"
    assert development == "[]"


def test_speech_request_returns_a_wav_that_decodes_and_is_not_silent(service: Service) -> None:
    status, content_type, body = post_json(
        f"{service.url}/v1/audio/speech",
        {
            "model": "tts-1",
            "input": "The quick brown fox jumps over the lazy dog.",
            "voice": "alloy",
            "response_format": "wav",
        },
    )
    assert status == 200, body[:300]
    assert content_type == "audio/wav"
    with wave.open(io.BytesIO(body)) as handle:
        assert handle.getnchannels() == 1
        assert handle.getsampwidth() == 2
        rate = handle.getframerate()
        frames = handle.readframes(handle.getnframes())
    samples = array("h", frames)
    duration = len(samples) / rate
    assert 1.0 < duration < 10.0, duration
    rms = (sum(s * s for s in samples) / len(samples)) ** 0.5
    assert rms > 300, f"RMS {rms:.0f} of 32768: silent"


def test_health_check_turns_healthy(docker_client: DockerClient, service: Service) -> None:
    deadline = time.monotonic() + 45
    health = None
    while time.monotonic() < deadline:
        service.container.reload()  # type: ignore[no-untyped-call]  # python-on-whales
        health = service.container.state.health
        if health is not None and health.status == "healthy":
            return
        time.sleep(1)
    pytest.fail(f"container health did not turn healthy: {health}")


def test_image_holds_no_ca_bundle_pip_cache_or_secret(
    docker_client: DockerClient, image: str
) -> None:
    """What `docker history --no-trunc` and every layer's files show: no CA, no cache, no secret."""
    host = HostPackageSettings.current()
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "image.tar"
        docker_client.image.save(image, output=archive)
        assert find_leaks(archive, host.ca_bundle) == []


def test_the_default_image_holds_piper_but_neither_csm_nor_the_listener(
    docker_client: DockerClient, service: Service, image: str
) -> None:
    labels = docker_client.image.inspect(image).config.labels or {}
    assert labels.get("io.audiobook-tts.engines") == "espeak,piper"
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('onnxruntime', 'transformers', 'faster_whisper') if u.find_spec(m)])"
    )
    found = str(docker_client.container.execute(service.container, ["python", "-c", probe]))
    assert found.strip() == "['onnxruntime']"
