"""Typed views of the Invoke configuration and of the host's package settings.

Defaults live in invoke.yaml (and INVOKE_IMAGEBUILD_* variables); this module only
reads them into frozen values, so that everything downstream is plain data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagebuild.errors import UsageError

TORCH_VARIANTS = ("cpu", "cuda")
# Speech engines an image can hold: espeak (always), piper (onnxruntime and a bundled
# voice) and the neural csm (transformers); and the listener (faster-whisper with Whisper
# base, DNSMOS), which hears what they made.
IMAGE_ENGINES = ("espeak", "piper", "csm", "listener")
# The default image's: a newcomer's first request is read by a neural voice.
DEFAULT_ENGINES = ("espeak", "piper")
CACHE_MODES = ("none", "inline", "local", "registry")
PROGRESS_MODES = ("auto", "plain", "tty", "quiet")


@dataclass(frozen=True)
class Settings:
    """Project defaults: the `imagebuild` section of the Invoke configuration."""

    root: Path
    # The image's name (the repository; tags say its flavour: latest, cuda-espeak-csm, ...).
    image: str = "audiobook-tts"
    # Where images and the registry cache are pushed (the local one: `inv up` starts it).
    registry: str = "127.0.0.1:5000"
    base_image: str = "127.0.0.1:5000/audiobook-tts/base:bookworm"
    # What the package layers are installed on: pinned, so that a new base rebases them.
    # Empty: the base itself (every new base then reinstalls every package).
    installer_image: str = "127.0.0.1:5000/audiobook-tts/base:installer-py3.11"
    # The Debian release the base image is made from (mmdebstrap).
    base_suite: str = "bookworm"
    # The Debian mirror the base image's packages come from.
    base_mirror: str = "http://deb.debian.org/debian"
    # The PyTorch build in the image: cpu, or cuda (the GPU image; its own lock).
    torch_variant: str = "cpu"
    # Comma-separated: which engines' libraries the image holds (espeak needs none of its own).
    engines: str = ",".join(DEFAULT_ENGINES)
    # The service image's Dockerfile, relative to the repository.
    dockerfile: Path = Path("docker/tts/Dockerfile")
    # The stage `inv build` builds (`inv stages` lists them).
    target: str = "runtime"
    # Cache mode: none, inline, local or registry.
    cache: str = "inline"
    # The platform's pids, logs, registry data and local cache.
    state_dir: Path = Path("/var/lib/audiobook-tts")
    # Build logs, reports (history.jsonl) and bench results, relative to the repository.
    log_dir: Path = Path("build-logs")
    # The docker client binary python-on-whales runs.
    docker_client: str = "docker"
    # Empty: the engine DOCKER_HOST or the docker context names; else e.g. unix:///path.sock
    docker_host: str = ""
    # Empty: the engine's default network for RUN steps; "host" for an engine with no bridge.
    build_network: str = ""
    provenance: bool = False
    # Layer compression: gzip (every registry and engine) or zstd (OCI; ECR, registry 2.8+).
    compression: str = "gzip"
    # The docker-container builder made when the engine cannot export a cache itself (the
    # classic image store). Pinned by digest; point it at a mirror where Docker Hub is out
    # of reach (an ECR pull-through cache, a registry of your own).
    buildkit_image: str = "moby/buildkit:v0.13.2@sha256:9194b5ec1be368f41c516df7f93f7f540630ea06136056b2ffebb62226ed4ad6"
    # The name of that docker-container builder.
    builder_name: str = "audiobook-tts"
    # A local registry with htpasswd and TLS (a CA the project makes, trusted by the engine
    # only), like ECR: anonymous pushes are refused. `inv up --registry-auth` turns it on.
    registry_auth: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], root: Path) -> Settings:
        """Read the `imagebuild` config section; unknown keys are an error, not a typo kept."""
        known = {f for f in cls.__dataclass_fields__ if f != "root"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(
                f"unknown imagebuild setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {"root": root}
        for key, value in values.items():
            if key in ("dockerfile", "state_dir", "log_dir"):
                path = Path(str(value))
                kwargs[key] = path if path.is_absolute() else root / path
            elif key in ("provenance", "registry_auth"):
                kwargs[key] = _as_bool(key, value)
            else:
                kwargs[key] = str(value)
        settings = cls(**kwargs)
        if settings.torch_variant not in TORCH_VARIANTS:
            raise UsageError(
                f"torch_variant {settings.torch_variant!r} is not one of {', '.join(TORCH_VARIANTS)}"
            )
        if settings.cache not in CACHE_MODES:
            raise UsageError(f"cache {settings.cache!r} is not one of {', '.join(CACHE_MODES)}")
        return settings

    def absolute(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path

    @property
    def dockerfile_path(self) -> Path:
        return self.absolute(self.dockerfile)

    @property
    def log_path(self) -> Path:
        return self.absolute(self.log_dir)

    @property
    def history_path(self) -> Path:
        """Every build's report, one JSON line each (`inv history`, `inv cache-check`)."""
        return self.log_path / "history.jsonl"

    @property
    def registry_cache_ref(self) -> str:
        return f"{self.registry}/{self.image}:buildcache"

    @property
    def local_cache_dir(self) -> Path:
        return self.state_dir / "cache" / self.image

    @property
    def registry_is_local(self) -> bool:
        """A registry on this machine, which `inv up` starts (else: ECR or another remote)."""
        host = self.registry.rpartition(":")[0] or self.registry
        return host in ("127.0.0.1", "localhost", "[::1]")

    @property
    def registry_paths(self) -> RegistryPaths:
        return StatePaths(self.state_dir).registry(self.registry)

    @property
    def registry_ca(self) -> Path | None:
        """The CA a client needs to trust the registry: the project's own for a local TLS one."""
        return (
            self.registry_paths.ca_cert if self.registry_is_local and self.registry_auth else None
        )

    @property
    def registry_scheme(self) -> str:
        """Plain HTTP only for a local registry without auth; TLS everywhere else."""
        return "http" if self.registry_is_local and not self.registry_auth else "https"

    @property
    def owns_base_image(self) -> bool:
        """True when the base image is the one this project makes and pushes itself."""
        return self.registry_is_local and self.base_image.startswith(f"{self.registry}/")


@dataclass(frozen=True)
class StatePaths:
    """Where the platform keeps its pids, logs and data."""

    root: Path

    @property
    def dockerd_pid(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def dockerd_log(self) -> Path:
        return self.root / "dockerd.log"

    def registry(self, address: str) -> RegistryPaths:
        """The files of the local registry at `address` (127.0.0.1:5000 keeps registry/)."""
        port = address.rpartition(":")[2]
        return RegistryPaths(self.root / ("registry" if port == "5000" else f"registry-{port}"))

    def registries(self) -> list[RegistryPaths]:
        """Every local registry `inv up` has started here (for `inv down`)."""
        return [
            RegistryPaths(path) for path in sorted(self.root.glob("registry*")) if path.is_dir()
        ]

    @property
    def apt_log(self) -> Path:
        return self.root / "apt.log"


@dataclass(frozen=True)
class RegistryPaths:
    """One local registry's files: config, data, pid, log; with auth, its TLS and htpasswd."""

    root: Path

    @property
    def pid(self) -> Path:
        return self.root / "registry.pid"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    @property
    def config(self) -> Path:
        return self.root / "config.yml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def ca_cert(self) -> Path:
        """The project's own CA: trusted by the engine (certs.d) and nothing else."""
        return self.root / "tls" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "tls" / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "tls" / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "tls" / "server.key"

    @property
    def htpasswd(self) -> Path:
        return self.root / "htpasswd"

    @property
    def password(self) -> Path:
        """The generated password of REGISTRY_USER, readable by root only."""
        return self.root / "password"


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"setting {key} wants true or false, not {value!r}")


@dataclass(frozen=True)
class HostPackageSettings:
    """The host's pip settings that a build must honour without baking them into layers."""

    ca_bundle: Path | None = None
    find_links: tuple[Path, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> HostPackageSettings:
        """Read SSL_CERT_FILE / PIP_CERT / REQUESTS_CA_BUNDLE, PIP_FIND_LINKS and index URLs."""
        ignored: list[str] = []
        ca_bundle: Path | None = None
        for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            value = environ.get(name, "").strip()
            if value and Path(value).is_file():
                ca_bundle = Path(value)
                break
            if value:
                ignored.append(f"{name}={value} (not a file)")
        find_links: list[Path] = []
        for item in environ.get("PIP_FIND_LINKS", "").split():
            local = item.removeprefix("file://")
            if Path(local).is_dir():
                if Path(local) not in find_links:
                    find_links.append(Path(local))
            else:
                ignored.append(f"PIP_FIND_LINKS entry {item} (only local directories are passed)")
        index_url = _remote_url(environ.get("PIP_INDEX_URL", ""), ignored, "PIP_INDEX_URL")
        extras = tuple(
            url
            for item in environ.get("PIP_EXTRA_INDEX_URL", "").split()
            if (url := _remote_url(item, ignored, "PIP_EXTRA_INDEX_URL"))
        )
        return cls(
            ca_bundle=ca_bundle,
            find_links=tuple(find_links),
            index_url=index_url,
            extra_index_urls=extras,
            ignored=tuple(ignored),
        )

    @classmethod
    def current(cls) -> HostPackageSettings:
        return cls.from_environ(os.environ)


def _remote_url(value: str, ignored: list[str], name: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        return value
    # A file:// index on the host means nothing inside a build container.
    ignored.append(f"{name} entry {value} (not an http(s) URL)")
    return None


def redact_url(value: str) -> str:
    """Credentials in an index URL (https://user:token@host) never reach a log or report."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", value)
