"""The leak check finds what it looks for: an image made to leak is caught (real engine)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.build.saved_image import find_leaks
from imagebuild.plan.config import HostPackageSettings, Settings

pytestmark = pytest.mark.docker


def test_a_copied_ca_bundle_and_a_pip_cache_are_found(
    docker_client: DockerClient, settings: Settings, tmp_path: Path
) -> None:
    # A bundle of the test's own: the check is proven on every host, CA-configured or not.
    body = base64.b64encode(os.urandom(48 * 20)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    bundle = tmp_path / "host-ca.pem"
    bundle.write_text(
        "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
    )
    host = HostPackageSettings(ca_bundle=bundle)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {settings.base_image}\n"
        # Secrets are not in the cache key: a RUN line of its own keeps a stale copy out.
        f"RUN --mount=type=secret,id=ca_bundle cp /run/secrets/ca_bundle /etc/leaked.pem"
        f" # {uuid.uuid4()}\n"
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
