"""The leak check finds what it looks for: an image made to leak is caught (real engine)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.config import HostPackageSettings, Settings
from imagebuild.imagefiles import find_leaks

pytestmark = pytest.mark.docker


def test_a_copied_ca_bundle_and_a_pip_cache_are_found(
    docker_client: DockerClient, settings: Settings, tmp_path: Path
) -> None:
    host = HostPackageSettings.current()
    if host.ca_bundle is None:
        pytest.skip("this host sets no CA bundle to leak")  # nothing to prove the check with
    (tmp_path / "Dockerfile").write_text(
        f"FROM {settings.base_image}\n"
        "RUN --mount=type=secret,id=ca_bundle cp /run/secrets/ca_bundle /etc/leaked.pem\n"
        "RUN mkdir -p /root/.cache/pip/http && echo cached > /root/.cache/pip/http/entry\n"
    )
    tag = f"audiobook-tts-it:leaky-{uuid.uuid4().hex[:8]}"
    # stream_logs: with the containerd store, python-on-whales' own image lookup by id fails.
    stream = docker_client.buildx.build(
        tmp_path,
        tags=[tag],
        load=True,
        secrets=[f"id=ca_bundle,src={host.ca_bundle}"],
        progress="plain",
        provenance=False,
        stream_logs=True,
    )
    list(stream)  # type: ignore[arg-type]
    try:
        archive = tmp_path / "image.tar"
        docker_client.image.save(tag, output=archive)
        findings = "\n".join(find_leaks(archive, host.ca_bundle))
    finally:
        docker_client.image.remove(tag, force=True)
    assert "the host CA bundle, copied to /etc/leaked.pem" in findings
    assert "a pip cache file in layer 2: /root/.cache/pip/http/entry" in findings
