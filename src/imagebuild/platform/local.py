"""`inv up` / `inv down`: the local build platform (engine, registry, base image), idempotent.

The engine and the registry are started as background processes whose pids and logs live
in the project's state directory; their data stays there too, so `inv up` after a reboot
brings them back in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imagebuild.engine.docker import DockerEngine
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import Settings, StatePaths
from imagebuild.platform import base_image, registry_auth
from imagebuild.platform.debian import install_engine, install_packages, require_root_debian
from imagebuild.platform.processes import (
    pid_alive,
    read_pid,
    start_background,
    stop_pid,
    wait_until,
)
from imagebuild.platform.registry import RegistryClient

DAEMON_JSON = Path("/etc/docker/daemon.json")

REGISTRY_CONFIG = """\
# Written by audiobook-tts `inv up`; the stand-in for ECR on this machine.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: {address}
  headers:
    X-Content-Type-Options: [nosniff]
"""
# Appended for `registry_auth`: ECR-like, nothing without a login, and TLS.
REGISTRY_AUTH_CONFIG = """\
  tls:
    certificate: {certificate}
    key: {key}
auth:
  htpasswd:
    realm: audiobook-tts
    path: {htpasswd}
"""


def merge_daemon_config(existing: Mapping[str, Any]) -> dict[str, Any]:
    """The engine settings we need, merged into whatever the file already holds."""
    merged = dict(existing)
    features = dict(merged.get("features") or {})
    features["containerd-snapshotter"] = True
    merged["features"] = features
    return merged


def _engine_installed() -> bool:
    plugin_dirs = [
        Path("/usr/libexec/docker/cli-plugins"),
        Path("/usr/lib/docker/cli-plugins"),
        Path("/usr/local/lib/docker/cli-plugins"),
        Path.home() / ".docker" / "cli-plugins",
    ]
    has_buildx = any((directory / "docker-buildx").exists() for directory in plugin_dirs)
    return shutil.which("dockerd") is not None and has_buildx and shutil.which("docker") is not None


def write_daemon_config(printer: Printer) -> None:
    existing: dict[str, Any] = {}
    if DAEMON_JSON.exists():
        try:
            existing = json.loads(DAEMON_JSON.read_text() or "{}")
        except json.JSONDecodeError as error:
            raise ImageBuildError(
                f"{DAEMON_JSON} is not valid JSON ({error.msg} at line {error.lineno}); "
                "fix it by hand: `inv up` does not overwrite it"
            ) from error
    merged = merge_daemon_config(existing)
    if merged != existing:
        DAEMON_JSON.parent.mkdir(parents=True, exist_ok=True)
        temporary = DAEMON_JSON.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(merged, indent=2) + "\n")
        temporary.replace(DAEMON_JSON)
        printer(f"  enabled the containerd image store in {DAEMON_JSON}")


# --- the three parts ------------------------------------------------------------------------


def ensure_engine(settings: Settings, paths: StatePaths, printer: Printer) -> None:
    engine = DockerEngine.of(settings)
    if engine.answers():
        facts = engine.facts()
        if not facts.containerd_store:
            printer(
                "warning: the engine does not use the containerd image store; registry and "
                f"local cache export need it: set it in {DAEMON_JSON} and restart the engine"
            )
        printer(f"engine: up (Docker {facts.server_version}, buildx {facts.buildx_version})")
        return
    if not _engine_installed():
        require_root_debian("no Docker Engine with buildx is installed")
        install_engine(settings, paths, printer)
    elif os.geteuid() != 0:
        raise ImageBuildError(
            "no Docker daemon answers; start it (e.g. `sudo inv up` or your service manager)"
        )
    write_daemon_config(printer)
    stale = read_pid(Path("/var/run/docker.pid"))
    if stale is not None and not pid_alive(stale):
        # Left by an engine that was killed; dockerd refuses to start while it exists.
        Path("/var/run/docker.pid").unlink(missing_ok=True)
    pid = read_pid(paths.dockerd_pid)
    if pid is not None and pid_alive(pid):
        printer(f"engine: dockerd (pid {pid}) is starting, waiting for it ...")
        process = None
    else:
        printer(f"engine: starting dockerd (log: {paths.dockerd_log}) ...")
        process = start_background(["dockerd"], paths.dockerd_log, paths.dockerd_pid)
    wait_until(engine.answers, process, 90, "dockerd", paths.dockerd_log)
    facts = engine.facts()
    printer(f"engine: up (Docker {facts.server_version}, buildx {facts.buildx_version})")


def registry_config(settings: Settings) -> str:
    """docker-registry's configuration: plain HTTP, or htpasswd and TLS with `registry_auth`."""
    paths = settings.registry_paths
    config = REGISTRY_CONFIG.format(data=paths.data, address=settings.registry)
    if settings.registry_auth:
        config += REGISTRY_AUTH_CONFIG.format(
            htpasswd=paths.htpasswd, certificate=paths.server_cert, key=paths.server_key
        )
    return config


def ensure_registry(settings: Settings, paths: StatePaths, printer: Printer) -> None:
    if not settings.registry_is_local:
        printer(f"registry: {settings.registry} is remote; not started here (`inv login`)")
        return
    registry_paths = settings.registry_paths
    mode = "htpasswd + TLS" if settings.registry_auth else "plain HTTP"
    if RegistryClient.for_settings(settings).answers():
        printer(f"registry: up at {settings.registry} ({mode})")
        _log_in_locally(settings, printer)
        return
    port = settings.registry.rpartition(":")[2]
    if not port.isdigit():
        raise ImageBuildError(f"registry {settings.registry} has no port; use 127.0.0.1:PORT")
    if shutil.which("docker-registry") is None:
        require_root_debian("the local registry (Debian's docker-registry) is not installed")
        install_packages(["docker-registry"], paths, printer)
    if settings.registry_auth:
        registry_auth.ensure_tls(registry_paths, settings.registry, printer)
        registry_auth.ensure_htpasswd(registry_paths, paths, printer)
        registry_auth.trust_for_engine(registry_paths, settings.registry)
    registry_paths.data.mkdir(parents=True, exist_ok=True)
    config = registry_config(settings)
    if not registry_paths.config.exists() or registry_paths.config.read_text() != config:
        registry_paths.config.write_text(config)
    printer(
        f"registry: starting docker-registry on {settings.registry}, {mode} "
        f"(log: {registry_paths.log})"
    )
    process = start_background(
        ["docker-registry", "serve", str(registry_paths.config)],
        registry_paths.log,
        registry_paths.pid,
    )
    client = RegistryClient.for_settings(settings)
    wait_until(client.answers, process, 30, "docker-registry", registry_paths.log)
    printer(f"registry: up at {settings.registry} (data: {registry_paths.data})")
    _log_in_locally(settings, printer)


def _log_in_locally(settings: Settings, printer: Printer) -> None:
    """The engine logs in to the authenticated local registry with the password made for it."""
    if not settings.registry_auth:
        return
    registry_paths = settings.registry_paths
    client = RegistryClient.for_settings(settings)
    if client.status() == 200:
        return  # the stored login works already
    DockerEngine.of(settings).login(
        settings.registry, registry_auth.REGISTRY_USER, registry_auth.read_password(registry_paths)
    )
    printer(
        f"registry: logged the engine in as {registry_auth.REGISTRY_USER} "
        f"(password in {registry_paths.password})"
    )


def up(settings: Settings, printer: Printer, platforms: Sequence[str] = ()) -> None:
    """Bring up engine, registry and base image; each part is skipped when already there.
    `platforms`: make the base for each (foreign ones under emulation, set up by the base's
    step, which also sets it up again after a reboot for a base that has them)."""
    started = time.monotonic()
    paths = StatePaths(settings.state_dir)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_engine(settings, paths, printer)
    ensure_registry(settings, paths, printer)
    base_image.ensure_base_image(settings, printer, platforms=platforms)
    base_image.ensure_installer_image(settings, printer)
    printer(f"platform up in {time.monotonic() - started:.1f}s")


def platform_is_up(settings: Settings, engine: DockerEngine) -> bool:
    """Cheap check used before a build: the build's engine and the registry answer."""
    if not engine.answers():
        return False
    return not settings.registry_is_local or RegistryClient.for_settings(settings).answers()


def down(settings: Settings, printer: Printer) -> None:
    """Stop what `inv up` started, by pid; data (images, cache, registry blobs) is kept."""
    paths = StatePaths(settings.state_dir)
    for registry in paths.registries():
        if registry.pid.exists():
            stop_pid(registry.pid, f"registry ({registry.root.name})", printer)
    legacy = paths.root / "registry.pid"  # where the pid file was kept before 2026-11-22
    if legacy.exists():
        stop_pid(legacy, "registry", printer)
    stop_pid(paths.dockerd_pid, "engine", printer)
