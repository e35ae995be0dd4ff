"""The build plan: a pure, frozen value computed from settings, host settings and flags.

Nothing here talks to a daemon or touches the disk (the Dockerfile's stages are passed in),
so every flag's effect on the buildx call is unit-tested without an engine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from imagebuild.config import (
    CACHE_MODES,
    DEFAULT_ENGINES,
    IMAGE_ENGINES,
    PROGRESS_MODES,
    HostPackageSettings,
    Settings,
    redact_url,
)
from imagebuild.dockerfile import Stage, check_target
from imagebuild.errors import UsageError
from imagebuild.platforms import architecture, foreign

CA_SECRET_ID = "ca_bundle"  # noqa: S105 - the id of a secret mount, not a secret
WHEELHOUSE_CONTEXT = "wheelhouse"
CACHE_TYPES = ("registry", "local", "inline", "gha", "s3", "azblob")
_BUILD_ARG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$"
)

CacheSpec = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BuildRequest:
    """What the person asked for on the command line (None: use the configured default)."""

    target: str | None = None
    tags: tuple[str, ...] = ()
    cache_mode: str | None = None
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    no_cache: bool = False
    push: bool = False
    load: bool | None = None
    platforms: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()
    progress: str = "auto"
    verbose: bool = False
    torch_variant: str | None = None
    engines: tuple[str, ...] = ()
    reproducible: bool = False
    compression: str | None = None


COMPRESSIONS = ("gzip", "zstd")


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
        """Keyword arguments for python-on-whales' `docker.buildx.build`."""
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
        """The plan as the equivalent command line, for logs and for people."""
        parts = ["docker", "buildx", "build", "--file", str(self.dockerfile)]
        if self.builder:
            parts += ["--builder", self.builder]
        if self.target:
            parts += ["--target", self.target]
        for tag in self.tags:
            parts += ["--tag", tag]
        for key, value in self.build_args:
            parts += ["--build-arg", f"{key}={redact_url(value)}"]
        for name, path in self.secrets:
            parts += ["--secret", f"id={name},src={path}"]
        for name, value in self.build_contexts:
            parts += ["--build-context", f"{name}={value}"]
        for spec in self.cache_from:
            parts += ["--cache-from", format_cache_spec(spec)]
        if self.cache_to is not None:
            parts += ["--cache-to", format_cache_spec(self.cache_to)]
        if self.no_cache:
            parts.append("--no-cache")
        if self.platforms:
            parts += ["--platform", ",".join(self.platforms)]
        if self.network:
            parts += ["--network", self.network]
        if self.compression != "gzip":
            parts += [
                "--output",
                f"type=image,compression={self.compression},force-compression=true,"
                f"oci-mediatypes=true{',push=true' if self.push else ''}",
            ]
        elif self.push:
            parts.append("--push")
        if self.load and (self.compression == "gzip" or self.builder):
            parts.append("--load")
        parts.append(str(self.context))
        return " ".join(parts)


def format_cache_spec(spec: CacheSpec) -> str:
    return ",".join(f"{key}={value}" for key, value in spec)


def parse_cache_spec(text: str, direction: str) -> CacheSpec:
    """A plain image reference or a full buildx cache spec (`type=...,key=value`)."""
    text = text.strip()
    if not text:
        raise UsageError(f"--cache-{direction} needs a value")
    if "=" not in text:
        if not _TAG.match(text):
            raise UsageError(
                f"--cache-{direction} {text!r} is neither an image reference nor a spec"
            )
        return (("type", "registry"), ("ref", text))
    pairs: list[tuple[str, str]] = []
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise UsageError(f"--cache-{direction} {text!r}: {part!r} is not key=value")
        pairs.append((key.strip(), value.strip()))
    spec = dict(pairs)
    kind = spec.get("type", "registry")
    if "type" not in spec:
        pairs.insert(0, ("type", kind))
    if kind not in CACHE_TYPES:
        raise UsageError(
            f"--cache-{direction} type {kind!r} is not one of {', '.join(CACHE_TYPES)}"
        )
    if kind == "registry" and "ref" not in spec:
        raise UsageError(f"--cache-{direction} {text!r}: a registry cache needs ref=IMAGE")
    if kind == "local" and direction == "from" and "src" not in spec:
        raise UsageError(f"--cache-from {text!r}: a local cache needs src=DIR")
    if kind == "local" and direction == "to" and "dest" not in spec:
        raise UsageError(f"--cache-to {text!r}: a local cache needs dest=DIR")
    return tuple(pairs)


def parse_build_args(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    parsed: list[tuple[str, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _BUILD_ARG_KEY.match(key):
            raise UsageError(f"--build-arg {item!r} is not KEY=VALUE with KEY a valid name")
        parsed.append((key, value))
    return tuple(parsed)


def parse_platforms(items: Sequence[str]) -> tuple[str, ...]:
    platforms: list[str] = []
    for item in items:
        for platform in item.split(","):
            platform = platform.strip()
            if not _PLATFORM.match(platform):
                raise UsageError(
                    f"--platform {platform!r} is not os/arch[/variant], e.g. linux/amd64"
                )
            platforms.append(platform)
    return tuple(platforms)


def log_stamp(now: datetime) -> str:
    """UTC time to the millisecond: two builds in one second must not share a log."""
    return now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"


def names_registry(reference: str) -> bool:
    """True when an image reference starts with a registry host (a dot, a port or localhost)."""
    first, sep, _ = reference.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def parse_engines(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """`espeak,csm` -> ("espeak", "csm"); espeak is always in, unknown names are refused."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [item.strip() for item in items if item.strip()]
    unknown = [name for name in names if name not in IMAGE_ENGINES]
    if unknown:
        raise UsageError(
            f"--engines: unknown engine(s) {', '.join(unknown)}; engines: {', '.join(IMAGE_ENGINES)}"
        )
    return tuple(name for name in IMAGE_ENGINES if name in names or name == "espeak")


def image_flavour(
    variant: str, engines: tuple[str, ...], platforms: tuple[str, ...] = (), machine: str = ""
) -> str:
    """The default tag: `latest` for the default CPU image (espeak and piper), else what sets
    it apart; one
    platform other than the host's is named too (`latest-arm64`), so it never takes the
    host image's tag."""
    flavour = (
        "latest"
        if variant == "cpu" and engines == DEFAULT_ENGINES
        else "-".join((variant, *engines))
    )
    if len(platforms) == 1 and foreign(platforms, machine or None):
        flavour = f"{flavour}-{architecture(platforms[0])}"
    return flavour


def default_tags(settings: Settings, push: bool, flavour: str = "latest") -> tuple[str, ...]:
    qualified = f"{settings.registry}/{settings.image}:{flavour}"
    return (qualified,) if push else (f"{settings.image}:{flavour}", qualified)


def _cache_for_mode(
    settings: Settings, mode: str, stamp: str
) -> tuple[tuple[CacheSpec, ...], CacheSpec | None, tuple[Path, Path] | None]:
    if mode == "none":
        return (), None, None
    if mode == "inline":
        return (), (("type", "inline"),), None
    if mode == "local":
        current = settings.local_cache_dir / "current"
        # Export to a fresh directory and swap it in, so the cache never grows without bound.
        fresh = settings.local_cache_dir / f"next-{stamp}"
        return (
            ((("type", "local"), ("src", str(current))),),
            (("type", "local"), ("dest", str(fresh)), ("mode", "max")),
            (fresh, current),
        )
    ref = settings.registry_cache_ref
    return (
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


def make_plan(
    settings: Settings,
    host: HostPackageSettings,
    request: BuildRequest,
    stages: tuple[Stage, ...],
    now: datetime,
    wheelhouse: Path | None = None,
    source_date_epoch: int | None = None,
) -> BuildPlan:
    """Turn settings and flags into the one buildx call to make."""
    target = request.target or settings.target
    check_target(stages, target)
    mode = request.cache_mode or settings.cache
    if mode not in CACHE_MODES:
        raise UsageError(f"--cache {mode!r} is not one of {', '.join(CACHE_MODES)}")
    progress = "plain" if request.verbose else request.progress
    if progress not in PROGRESS_MODES:
        raise UsageError(f"--progress {progress!r} is not one of {', '.join(PROGRESS_MODES)}")
    variant = request.torch_variant or settings.torch_variant
    if variant not in ("cpu", "cuda"):
        raise UsageError(f"torch variant {variant!r} is not one of cpu, cuda")

    engines = parse_engines(request.engines or settings.engines)
    flavour = image_flavour(variant, engines, parse_platforms(request.platforms))
    tags = request.tags or default_tags(settings, request.push, flavour)
    for tag in tags:
        if not _TAG.match(tag):
            raise UsageError(f"--tag {tag!r} is not a valid image reference")
    if request.push:
        local_only = [tag for tag in tags if not names_registry(tag)]
        if local_only:
            raise UsageError(
                f"--push needs tags that name a registry host; {', '.join(local_only)} "
                f"would go to Docker Hub (try {settings.registry}/{settings.image}:TAG)"
            )

    stamp = log_stamp(now)
    cache_from, cache_to, local_cache = _cache_for_mode(settings, mode, stamp)
    if request.cache_from:
        cache_from = cache_from + tuple(
            parse_cache_spec(item, "from") for item in request.cache_from
        )
    if len(request.cache_to) > 1:
        raise UsageError(
            "one --cache-to per build: python-on-whales passes a single cache exporter to buildx"
        )
    if request.cache_to:
        cache_to = parse_cache_spec(request.cache_to[0], "to")
        if dict(cache_to).get("type") != "inline" and "ignore-error" not in dict(cache_to):
            # A cache that cannot be written is a warning, never a failed build.
            cache_to = (*cache_to, ("ignore-error", "true"))
        local_cache = None
    notes = tuple(f"host setting not passed to the build: {item}" for item in host.ignored)
    if request.reproducible and cache_to is not None and dict(cache_to).get("type") == "inline":
        # Inline cache metadata is a label with each cache record's creation time: a warm and
        # a cold build of one commit would differ in it. A registry or local cache does not
        # touch the image, so those stay.
        cache_to = None
        notes = (*notes, "inline cache export left out: it would stamp build times into the image")
    no_cache = request.no_cache or mode == "none"
    if mode == "none":
        cache_from = tuple(parse_cache_spec(item, "from") for item in request.cache_from)

    if not settings.installer_image:
        notes = (*notes, "installer_image is empty: the package layers follow the base image")
    build_args: dict[str, str] = {
        "BASE_IMAGE": settings.base_image,
        "INSTALLER_IMAGE": settings.installer_image or settings.base_image,
        "TORCH_VARIANT": variant,
        "ENGINES": ",".join(engines),
    }
    if host.index_url:
        build_args["PIP_INDEX_URL"] = host.index_url
    if host.extra_index_urls:
        build_args["PIP_EXTRA_INDEX_URL"] = " ".join(host.extra_index_urls)
    if request.reproducible:
        if source_date_epoch is None:
            raise UsageError("--reproducible needs SOURCE_DATE_EPOCH: build from a git checkout")
        build_args["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    build_args.update(dict(parse_build_args(request.build_args)))

    secrets: tuple[tuple[str, Path], ...] = ()
    if host.ca_bundle is not None:
        secrets = ((CA_SECRET_ID, host.ca_bundle),)
    contexts: tuple[tuple[str, str], ...] = ()
    if wheelhouse is not None:
        contexts = ((WHEELHOUSE_CONTEXT, str(wheelhouse)),)

    compression = request.compression or settings.compression
    if compression not in COMPRESSIONS:
        raise UsageError(f"--compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")
    load = request.load if request.load is not None else not request.push
    if load and len(request.platforms) > 1:
        raise UsageError("--load takes one platform; use --push for a multi-platform image")
    log_dir = settings.log_path
    base_name = f"{stamp}-{target}"
    return BuildPlan(
        context=settings.root,
        dockerfile=settings.dockerfile_path,
        target=target,
        tags=tuple(tags),
        build_args=tuple(sorted(build_args.items())),
        secrets=secrets,
        build_contexts=contexts,
        cache_mode=mode,
        cache_from=cache_from,
        cache_to=cache_to,
        no_cache=no_cache,
        load=load,
        push=request.push,
        platforms=parse_platforms(request.platforms),
        progress=progress,
        provenance=settings.provenance,
        log_path=log_dir / f"{base_name}.log",
        raw_log_path=log_dir / f"{base_name}.rawjson",
        metadata_path=log_dir / f"{base_name}.metadata.json",
        context_manifest_path=log_dir / f"{base_name}.context.json",
        local_cache=local_cache,
        notes=notes,
        network=settings.build_network,
        oci_archive=log_dir / f"{base_name}.oci.tar" if request.reproducible else None,
        compression=compression,
    )


# Cache exporters that the docker driver refuses on an engine with the classic image store.
EXPORTING_CACHE_TYPES = ("registry", "local", "gha", "s3", "azblob")


def needs_cache_export(plan: BuildPlan) -> bool:
    """True when the plan exports a cache that only BuildKit with the containerd store, or a
    docker-container builder, can write (inline is written into the image itself)."""
    return plan.cache_to is not None and dict(plan.cache_to).get("type") in EXPORTING_CACHE_TYPES


def inline_fallback(plan: BuildPlan, image_ref: str, reason: str) -> BuildPlan:
    """The same build with inline cache, reading the cache from the pushed image instead.

    Registry cache sources stay (importing works on every driver); local ones go, since
    the classic store cannot read them either.
    """
    sources = tuple(spec for spec in plan.cache_from if dict(spec).get("type") == "registry")
    image_source: CacheSpec = (("type", "registry"), ("ref", image_ref))
    if image_source not in sources:
        sources = (*sources, image_source)
    return replace(
        plan,
        cache_mode="inline",
        cache_from=sources,
        cache_to=(("type", "inline"),),
        local_cache=None,
        notes=(*plan.notes, reason),
    )


def inline_cache_source(plan: BuildPlan, settings: Settings) -> str:
    """The image a fallback build reads its inline cache from: a pushed tag of this build."""
    pushed = [tag for tag in plan.tags if names_registry(tag)]
    return pushed[0] if pushed else f"{settings.registry}/{settings.image}:latest"
