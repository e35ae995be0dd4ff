"""A small client of the OCI distribution API, for the local registry (no Docker CLI needed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, reference: str) -> Reference:
        registry, _, rest = reference.partition("/")
        repository, _, tag = rest.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = rest, "latest"
        return cls(registry=registry, repository=repository, tag=tag)


class RegistryClient:
    """Read manifests and configs from a plain-HTTP registry such as 127.0.0.1:5000."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.base = f"http://{address}/v2"
        self.timeout = timeout

    def _get(self, path: str, accept: str | None = None) -> tuple[bytes, str]:
        request = urllib.request.Request(f"{self.base}{path}")  # noqa: S310 - http to our registry
        if accept:
            request.add_header("Accept", accept)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            return response.read(), str(response.headers.get("Content-Type", ""))

    def answers(self) -> bool:
        try:
            self._get("/")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return True

    def manifest(self, repository: str, tag: str) -> dict[str, Any] | None:
        """The manifest (an index resolved to its linux/amd64 entry), or None if absent."""
        try:
            body, media_type = self._get(f"/{repository}/manifests/{tag}", MANIFEST_TYPES)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        data: dict[str, Any] = json.loads(body)
        if data.get("mediaType", media_type) in INDEX_TYPES or "manifests" in data:
            for entry in data.get("manifests", []):
                platform = entry.get("platform", {})
                if platform.get("architecture") == "amd64" and platform.get("os") == "linux":
                    return self.manifest(repository, entry["digest"])
            return None
        return data

    def config(self, repository: str, tag: str) -> dict[str, Any] | None:
        manifest = self.manifest(repository, tag)
        if manifest is None or "config" not in manifest:
            return None
        body, _ = self._get(f"/{repository}/blobs/{manifest['config']['digest']}")
        config: dict[str, Any] = json.loads(body)
        return config

    def labels(self, repository: str, tag: str) -> dict[str, str] | None:
        config = self.config(repository, tag)
        if config is None:
            return None
        return dict((config.get("config") or {}).get("Labels") or {})

    def tags(self, repository: str) -> list[str]:
        try:
            body, _ = self._get(f"/{repository}/tags/list")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise
        return list(json.loads(body).get("tags") or [])
