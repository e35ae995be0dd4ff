"""A small client of the OCI distribution API, for the local registry (no Docker CLI needed).

Plain HTTP for the default local registry; HTTPS with the project's CA and basic auth for the
authenticated one (`inv up --registry-auth`), with the credentials `docker login` stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagebuild.plan.config import Settings
from imagebuild.plan.target_platforms import normalize, platform_name

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


def docker_config_path() -> Path:
    """Where the docker CLI keeps its logins: $DOCKER_CONFIG, else ~/.docker."""
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def stored_credentials(registry: str) -> tuple[str, str] | None:
    """The user and password `docker login` stored for `registry`, if any (plain store only)."""
    try:
        auths = json.loads(docker_config_path().read_text(encoding="utf-8")).get("auths", {})
        encoded = str(auths.get(registry, {}).get("auth", ""))
        user, sep, password = base64.b64decode(encoded).decode().partition(":")
    except (OSError, ValueError, binascii.Error, AttributeError):
        return None
    return (user, password) if sep else None


class RegistryClient:
    """Read manifests and configs from a registry: 127.0.0.1:5000 over HTTP, or over HTTPS."""

    def __init__(
        self,
        address: str,
        timeout: float = 5.0,
        scheme: str = "http",
        ca_file: Path | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.base = f"{scheme}://{address}/v2"
        self.timeout = timeout
        # A CA not made yet (the registry is not up either) verifies nothing: no answer.
        usable = ca_file is not None and ca_file.exists()
        self.context = ssl.create_default_context(cafile=str(ca_file) if usable else None)
        self.credentials = credentials

    @classmethod
    def for_settings(
        cls, settings: Settings, credentials: tuple[str, str] | None = None
    ) -> RegistryClient:
        """The configured registry, with the login `docker login` stored unless one is given."""
        return cls(
            settings.registry,
            scheme=settings.registry_scheme,
            ca_file=settings.registry_ca,
            credentials=credentials or stored_credentials(settings.registry),
        )

    def _get(
        self, path: str, accept: str | None = None, credentials: tuple[str, str] | None = None
    ) -> tuple[bytes, str]:
        request = urllib.request.Request(f"{self.base}{path}")  # noqa: S310 - our registry
        if accept:
            request.add_header("Accept", accept)
        self._authorize(request, credentials or self.credentials)
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=self.timeout, context=self.context
        ) as response:
            return response.read(), str(response.headers.get("Content-Type", ""))

    @staticmethod
    def _authorize(request: urllib.request.Request, credentials: tuple[str, str] | None) -> None:
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")

    def status(self) -> int | None:
        """HTTP status of GET /v2/ (200 open or logged in, 401 needs a login); None: no answer."""
        try:
            self._get("/")
        except urllib.error.HTTPError as error:
            return error.code
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return 200

    def accepts(self, credentials: tuple[str, str]) -> bool | None:
        """Whether the registry takes these credentials; None where it wants a token instead of
        basic auth (Docker Hub, GHCR, ECR), which only `docker login` can try."""
        try:
            self._get("/", credentials=credentials)
        except urllib.error.HTTPError as error:
            challenge = str(error.headers.get("WWW-Authenticate", ""))
            if error.code == 401 and challenge.lower().startswith("basic"):
                return False
            return None
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return True

    def answers(self) -> bool:
        """A registry answers, whether or not it wants a login."""
        return self.status() in (200, 401)

    def _document(self, repository: str, tag: str) -> tuple[dict[str, Any], bytes, str] | None:
        """A manifest or index as stored (parsed, raw, media type); None if absent."""
        try:
            body, media_type = self._get(f"/{repository}/manifests/{tag}", MANIFEST_TYPES)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        data: dict[str, Any] = json.loads(body)
        return data, body, str(data.get("mediaType", media_type))

    @staticmethod
    def _is_index(data: dict[str, Any], media_type: str) -> bool:
        return media_type in INDEX_TYPES or "manifests" in data

    def manifest(self, repository: str, tag: str) -> dict[str, Any] | None:
        """The manifest (an index resolved to its linux/amd64 entry), or None if absent."""
        document = self._document(repository, tag)
        if document is None:
            return None
        data, _, media_type = document
        if self._is_index(data, media_type):
            for entry in data.get("manifests", []):
                platform = entry.get("platform", {})
                if platform.get("architecture") == "amd64" and platform.get("os") == "linux":
                    return self.manifest(repository, entry["digest"])
            return None
        return data

    def index_entries(self, repository: str, tag: str) -> list[dict[str, Any]] | None:
        """The descriptors of an image's platform manifests (one, made from its config, for a
        single manifest); None if the image is absent."""
        document = self._document(repository, tag)
        if document is None:
            return None
        data, body, media_type = document
        if self._is_index(data, media_type):
            return [dict(entry) for entry in data.get("manifests", [])]
        config_body, _ = self._get(f"/{repository}/blobs/{data['config']['digest']}")
        config = json.loads(config_body)
        platform = {"os": config.get("os", ""), "architecture": config.get("architecture", "")}
        if config.get("variant"):
            platform["variant"] = config["variant"]
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        return [
            {"mediaType": media_type, "digest": digest, "size": len(body), "platform": platform}
        ]

    def platforms(self, repository: str, tag: str) -> tuple[str, ...] | None:
        """The platforms (os/arch[/variant]) an image has, attestations left out; None if the
        image is absent."""
        entries = self.index_entries(repository, tag)
        if entries is None:
            return None
        names = [platform_name(entry.get("platform", {})) for entry in entries]
        return tuple(dict.fromkeys(name for name in names if name))

    def platform_digest(self, repository: str, tag: str, platform: str) -> str:
        """The digest of one platform's manifest."""
        for entry in self.index_entries(repository, tag) or []:
            if platform_name(entry.get("platform", {})) == normalize(platform):
                return str(entry["digest"])
        raise LookupError(f"{repository}:{tag} has no {platform} manifest")

    def put_index(self, repository: str, tag: str, entries: list[dict[str, Any]]) -> None:
        """Tag an OCI index of these platform manifests (all in `repository` already)."""
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": entries,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - our registry
            f"{self.base}/{repository}/manifests/{tag}", data=body, method="PUT"
        )
        request.add_header("Content-Type", "application/vnd.oci.image.index.v1+json")
        self._authorize(request, self.credentials)
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context):  # noqa: S310
            pass

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

    def add_tag(self, repository: str, source: str, tag: str) -> None:
        """Point `tag` at the manifest `source` points at (same repository: no blob moves)."""
        body, media_type = self._get(f"/{repository}/manifests/{source}", MANIFEST_TYPES)
        request = urllib.request.Request(  # noqa: S310 - our registry
            f"{self.base}/{repository}/manifests/{tag}", data=body, method="PUT"
        )
        request.add_header("Content-Type", media_type)
        self._authorize(request, self.credentials)
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context):  # noqa: S310
            pass

    def tags(self, repository: str) -> list[str]:
        try:
            body, _ = self._get(f"/{repository}/tags/list")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return []
            raise
        return list(json.loads(body).get("tags") or [])
