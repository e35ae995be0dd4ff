"""The build plan: a pure, frozen value computed from settings, host settings, flags and the
engine's facts.

Nothing here talks to a daemon or touches the disk (the Dockerfile's stages and the engine's
facts are passed in), so every flag's effect on the buildx call is unit-tested without an
engine. The plan renders its call once (`buildx_kwargs`); the command line in the log is
derived from that same value (`describe`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from imagebuild.plan.config import HostPackageSettings, Settings, redact_url
from imagebuild.plan.dockerfile import Stage
from imagebuild.plan.request import (
    BuildChoices,
    BuildRequest,
    CacheSpec,
    check_request,
    image_build_args,
    names_registry,
)

CA_SECRET_ID = "ca_bundle"  # noqa: S105 - the id of a secret mount, not a secret
WHEELHOUSE_CONTEXT = "wheelhouse"
# Cache exporters that the docker driver refuses on an engine with the classic image store.
EXPORTING_CACHE_TYPES = ("registry", "local", "gha", "s3", "azblob")


@dataclass(frozen=True)
class CacheExporter:
    """How the engine at hand writes a registry or local cache, learned before planning.

    The docker driver on an engine with the classic image store exports no cache but inline;
    a docker-container builder can, where it starts (its BuildKit image must be pullable).
    """

    # True: the engine's own builder exports every cache (the containerd image store).
    containerd_store: bool = True
    # With the classic store: None when the docker-container builder runs, else why it cannot.
    builder_problem: str | None = None


@dataclass(frozen=True)
class BuildPlan:
    """Everything one `docker buildx build` call needs, and where its records go."""

    context: Path
    dockerfile: Path
    target: str
    tags: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, Path], ...]
    build_contexts: tuple[tuple[str, str], ...]
    cache_mode: str
    cache_from: tuple[CacheSpec, ...]
    cache_to: CacheSpec | None
    no_cache: bool
    load: bool
    push: bool
    platforms: tuple[str, ...]
    progress: str
    provenance: bool
    log_path: Path
    raw_log_path: Path
    metadata_path: Path
    # The files and hashes the context sent, kept so `inv cache-check` can name what changed.
    context_manifest_path: Path
    local_cache: tuple[Path, Path] | None = None
    notes: tuple[str, ...] = field(default=())
    network: str = ""
    # Reproducible builds go to an OCI archive with every layer's mtimes clamped to
    # SOURCE_DATE_EPOCH (dockerd's own exporters refuse rewrite-timestamp: they unpack),
    # and are loaded or pushed from there.
    oci_archive: Path | None = None
    compression: str = "gzip"
    # Empty: the engine's own builder (docker driver); else a docker-container builder's name.
    builder: str = ""

    def buildx_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for python-on-whales' `docker.buildx.build`: the call itself."""
        kwargs: dict[str, Any] = {
            "context_path": self.context,
            "file": self.dockerfile,
            "target": self.target or None,
            "tags": list(self.tags),
            "build_args": dict(self.build_args),
            "secrets": [f"id={name},src={path}" for name, path in self.secrets],
            "build_contexts": dict(self.build_contexts),
            "cache": not self.no_cache,
            "progress": "rawjson",
            "provenance": self.provenance,
            "metadata_file": self.metadata_path,
            "stream_logs": True,
        }
        if self.cache_from:
            kwargs["cache_from"] = [dict(spec) for spec in self.cache_from]
        if self.cache_to is not None:
            kwargs["cache_to"] = dict(self.cache_to)
        if self.platforms:
            kwargs["platforms"] = list(self.platforms)
        if self.network:
            kwargs["network"] = self.network
        if self.builder:
            kwargs["builder"] = self.builder
        if self.oci_archive is not None:
            kwargs["output"] = {
                "type": "oci",
                "dest": str(self.oci_archive),
                "rewrite-timestamp": "true",
            }
        elif self.compression != "gzip" and (self.push or not self.builder):
            # The image exporter compresses as asked; it also stores (docker driver) and pushes.
            kwargs["output"] = {
                "type": "image",
                "compression": self.compression,
                "force-compression": "true",
                "oci-mediatypes": "true",
                **({"push": "true"} if self.push else {}),
            }
            if self.load and self.builder:
                kwargs["load"] = True
        elif self.push and self.load and not self.builder:
            # One exporter that both stores the image in the engine and pushes it.
            kwargs["output"] = {"type": "image", "push": "true"}
        elif self.push and self.load:
            # A docker-container builder keeps images to itself: push, and load a copy.
            kwargs["push"] = True
            kwargs["load"] = True
        elif self.push:
            kwargs["push"] = True
        elif self.load:
            kwargs["load"] = True
        return kwargs

    def describe(self) -> str:
        """The call as a command line, for logs and for people (credentials in URLs hidden)."""
        return shlex.join(buildx_command(self.buildx_kwargs(), redact=True))


def _pairs(value: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={item}" for key, item in value.items())


def buildx_command(kwargs: Mapping[str, Any], redact: bool = False) -> list[str]:
    """The command line python-on-whales runs for these `docker.buildx.build` arguments, in
    its order (a unit test holds the two together); `redact` hides credentials in URLs."""
    shown = redact_url if redact else str
    parts = ["docker", "buildx", "build"]
    if kwargs.get("progress", "auto") != "auto":
        parts += ["--progress", str(kwargs["progress"])]
    for key, value in kwargs.get("build_args", {}).items():
        parts += ["--build-arg", f"{key}={shown(value)}"]
    for name, value in kwargs.get("build_contexts", {}).items():
        parts += ["--build-context", f"{name}={value}"]
    if kwargs.get("builder"):
        parts += ["--builder", str(kwargs["builder"])]
    if isinstance(kwargs.get("provenance"), bool):
        parts.append(f"--provenance={str(kwargs['provenance']).lower()}")
    parts += ["--push"] if kwargs.get("push") else []
    parts += ["--load"] if kwargs.get("load") else []
    if kwargs.get("metadata_file") is not None:
        parts += ["--metadata-file", str(kwargs["metadata_file"])]
    if kwargs.get("file") is not None:
        parts += ["--file", str(kwargs["file"])]
    if kwargs.get("target") is not None:
        parts += ["--target", str(kwargs["target"])]
    for spec in kwargs.get("cache_from", []):
        parts += ["--cache-from", _pairs(spec)]
    if kwargs.get("cache_to") is not None:
        parts += ["--cache-to", _pairs(kwargs["cache_to"])]
    for secret in kwargs.get("secrets", []):
        parts += ["--secret", str(secret)]
    if kwargs.get("output"):
        parts += ["--output", _pairs(kwargs["output"])]
    if kwargs.get("platforms") is not None:
        parts += ["--platform", ",".join(kwargs["platforms"])]
    if kwargs.get("network") is not None:
        parts += ["--network", str(kwargs["network"])]
    parts += [] if kwargs.get("cache", True) else ["--no-cache"]
    for tag in kwargs.get("tags", []):
        parts += ["--tag", str(tag)]
    parts.append(str(kwargs["context_path"]))
    return parts


def log_stamp(now: datetime) -> str:
    """UTC time to the millisecond: two builds in one second must not share a log."""
    return now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class _Cache:
    mode: str
    cache_from: tuple[CacheSpec, ...]
    cache_to: CacheSpec | None
    # The local cache's fresh export directory and the one it replaces.
    local_cache: tuple[Path, Path] | None
    notes: tuple[str, ...] = ()
    builder: str = ""


def _cache_for_mode(settings: Settings, mode: str, stamp: str) -> _Cache:
    if mode == "none":
        return _Cache(mode, (), None, None)
    if mode == "inline":
        return _Cache(mode, (), (("type", "inline"),), None)
    if mode == "local":
        current = settings.local_cache_dir / "current"
        # Export to a fresh directory and swap it in, so the cache never grows without bound.
        fresh = settings.local_cache_dir / f"next-{stamp}"
        return _Cache(
            mode,
            ((("type", "local"), ("src", str(current))),),
            (("type", "local"), ("dest", str(fresh)), ("mode", "max")),
            (fresh, current),
        )
    ref = settings.registry_cache_ref
    return _Cache(
        mode,
        ((("type", "registry"), ("ref", ref)),),
        (
            ("type", "registry"),
            ("ref", ref),
            ("mode", "max"),
            ("image-manifest", "true"),
            ("oci-mediatypes", "true"),
            ("ignore-error", "true"),
        ),
        None,
    )


def _asked_cache(settings: Settings, choices: BuildChoices, stamp: str) -> _Cache:
    """The cache the mode and the --cache-from/--cache-to flags ask for."""
    cache = _cache_for_mode(settings, choices.cache_mode, stamp)
    cache_to, local_cache = cache.cache_to, cache.local_cache
    if choices.cache_to is not None:
        cache_to = choices.cache_to
        if dict(cache_to).get("type") != "inline" and "ignore-error" not in dict(cache_to):
            # A cache that cannot be written is a warning, never a failed build.
            cache_to = (*cache_to, ("ignore-error", "true"))
        local_cache = None
    notes: tuple[str, ...] = ()
    if choices.cache_to is None and cache.mode == "inline" and not choices.push:
        # Inline cache is read from a pushed image; on one that stays here it is only cost:
        # BuildKit prepares it per layer, ~2 s on the image's 49 layers with nothing changed.
        cache_to = None
        notes = ("inline cache export left out: nothing is pushed (--push writes it)",)
    elif choices.reproducible and cache_to is not None and dict(cache_to).get("type") == "inline":
        # Inline cache metadata is a label with each cache record's creation time: a warm and
        # a cold build of one commit would differ in it. A registry or local cache does not
        # touch the image, so those stay.
        cache_to = None
        notes = ("inline cache export left out: it would stamp build times into the image",)
    return _Cache(
        choices.cache_mode, cache.cache_from + choices.cache_from, cache_to, local_cache, notes
    )


def exports_cache(settings: Settings, choices: BuildChoices) -> bool:
    """True when the build exports a cache that only BuildKit with the containerd store, or a
    docker-container builder, can write (inline is written into the image itself)."""
    cache_to = _asked_cache(settings, choices, "").cache_to
    return cache_to is not None and dict(cache_to).get("type") in EXPORTING_CACHE_TYPES


def _fit_to_engine(
    settings: Settings, choices: BuildChoices, cache: _Cache, exporter: CacheExporter
) -> tuple[_Cache, str | None]:
    """The cache as this engine can write it: through a docker-container builder where the
    classic image store cannot, and where that builder cannot start, inline cache read from
    the pushed image; with a note that says which and why, in one line."""
    exporting = (
        cache.cache_to is not None and dict(cache.cache_to).get("type") in EXPORTING_CACHE_TYPES
    )
    if not exporting or exporter.containerd_store:
        return cache, None
    if exporter.builder_problem is None:
        note = (
            f"{cache.mode} cache through the docker-container builder {settings.builder_name} "
            f"({settings.buildkit_image}): the engine's classic image store cannot export it"
        )
        return replace(cache, builder=settings.builder_name), note
    pushed = [tag for tag in choices.tags if names_registry(tag)]
    source = pushed[0] if pushed else f"{settings.registry}/{settings.image}:latest"
    # Registry cache sources stay (importing works on every driver); local ones go, since the
    # classic store cannot read them either.
    sources = tuple(spec for spec in cache.cache_from if dict(spec).get("type") == "registry")
    image_source: CacheSpec = (("type", "registry"), ("ref", source))
    if image_source not in sources:
        sources = (*sources, image_source)
    note = (
        f"cache fallback: {cache.mode} cache needs the containerd image store or a "
        f"docker-container builder, and the builder could not start "
        f"({exporter.builder_problem}); building with inline cache, read from {source}"
    )
    return replace(
        cache, mode="inline", cache_from=sources, cache_to=(("type", "inline"),), local_cache=None
    ), note


def plan_build(
    settings: Settings,
    host: HostPackageSettings,
    choices: BuildChoices,
    now: datetime,
    wheelhouse: Path | None = None,
    exporter: CacheExporter = CacheExporter(),
) -> BuildPlan:
    """The one buildx call to make, final: the checked choices, the host's package settings,
    and what the engine can export (the default: an engine that exports every cache)."""
    stamp = log_stamp(now)
    cache, engine_note = _fit_to_engine(
        settings, choices, _asked_cache(settings, choices, stamp), exporter
    )
    notes = tuple(f"host setting not passed to the build: {item}" for item in host.ignored)
    notes += cache.notes
    if not settings.installer_image:
        notes += ("installer_image is empty: the package layers follow the base image",)
    notes += (engine_note,) if engine_note else ()

    build_args = image_build_args(settings, choices)
    if host.index_url:
        build_args["PIP_INDEX_URL"] = host.index_url
    if host.extra_index_urls:
        build_args["PIP_EXTRA_INDEX_URL"] = " ".join(host.extra_index_urls)
    if choices.source_date_epoch is not None:
        build_args["SOURCE_DATE_EPOCH"] = str(choices.source_date_epoch)
    build_args.update(dict(choices.build_args))

    secrets: tuple[tuple[str, Path], ...] = ()
    if host.ca_bundle is not None:
        secrets = ((CA_SECRET_ID, host.ca_bundle),)
    contexts: tuple[tuple[str, str], ...] = ()
    if wheelhouse is not None:
        contexts = ((WHEELHOUSE_CONTEXT, str(wheelhouse)),)
    log_dir = settings.log_path
    base_name = f"{stamp}-{choices.target}"
    return BuildPlan(
        context=settings.root,
        dockerfile=settings.dockerfile_path,
        target=choices.target,
        tags=choices.tags,
        build_args=tuple(sorted(build_args.items())),
        secrets=secrets,
        build_contexts=contexts,
        cache_mode=cache.mode,
        cache_from=cache.cache_from,
        cache_to=cache.cache_to,
        no_cache=choices.no_cache,
        load=choices.load,
        push=choices.push,
        platforms=choices.platforms,
        progress=choices.progress,
        provenance=settings.provenance,
        log_path=log_dir / f"{base_name}.log",
        raw_log_path=log_dir / f"{base_name}.rawjson",
        metadata_path=log_dir / f"{base_name}.metadata.json",
        context_manifest_path=log_dir / f"{base_name}.context.json",
        local_cache=cache.local_cache,
        notes=notes,
        network=settings.build_network,
        oci_archive=log_dir / f"{base_name}.oci.tar" if choices.reproducible else None,
        compression=choices.compression,
        builder=cache.builder,
    )


def make_plan(
    settings: Settings,
    host: HostPackageSettings,
    request: BuildRequest,
    stages: tuple[Stage, ...],
    now: datetime,
    wheelhouse: Path | None = None,
    source_date_epoch: int | None = None,
    exporter: CacheExporter = CacheExporter(),
) -> BuildPlan:
    """Flags checked and planned in one step (`inv build` checks them before the platform is
    up, and plans once the engine's facts are known)."""
    choices = check_request(settings, request, stages, source_date_epoch)
    return plan_build(settings, host, choices, now, wheelhouse, exporter)
