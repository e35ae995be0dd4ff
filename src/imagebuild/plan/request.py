"""What the person asked for, checked: flags parsed, defaults of the settings filled in.

Every flag that can be wrong is refused here, before the platform is touched; the plan is then
made from the checked choices and the engine's facts (`plan/plan.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from imagebuild.errors import UsageError
from imagebuild.plan.config import (
    CACHE_MODES,
    DEFAULT_ENGINES,
    IMAGE_ENGINES,
    PROGRESS_MODES,
    Settings,
)
from imagebuild.plan.dockerfile import Stage, check_target
from imagebuild.plan.target_platforms import architecture, foreign

CACHE_TYPES = ("registry", "local", "inline", "gha", "s3", "azblob")
COMPRESSIONS = ("gzip", "zstd")
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


@dataclass(frozen=True)
class BuildChoices:
    """A request checked, with the settings' defaults filled in: what this build is."""

    target: str
    cache_mode: str
    progress: str
    torch_variant: str
    engines: tuple[str, ...]
    tags: tuple[str, ...]
    # The --cache-from sources asked for, parsed (the cache mode's own come in the plan).
    cache_from: tuple[CacheSpec, ...]
    # --cache-to, parsed; None: the cache mode's.
    cache_to: CacheSpec | None
    no_cache: bool
    push: bool
    load: bool
    platforms: tuple[str, ...]
    build_args: tuple[tuple[str, str], ...]
    compression: str
    reproducible: bool
    source_date_epoch: int | None


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


def check_request(
    settings: Settings,
    request: BuildRequest,
    stages: tuple[Stage, ...],
    source_date_epoch: int | None = None,
) -> BuildChoices:
    """Every flag checked against the settings and the Dockerfile; a clear error otherwise."""
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
    platforms = parse_platforms(request.platforms)
    tags = request.tags or default_tags(
        settings, request.push, image_flavour(variant, engines, platforms)
    )
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

    cache_from = tuple(parse_cache_spec(item, "from") for item in request.cache_from)
    if len(request.cache_to) > 1:
        raise UsageError(
            "one --cache-to per build: python-on-whales passes a single cache exporter to buildx"
        )
    cache_to = parse_cache_spec(request.cache_to[0], "to") if request.cache_to else None
    if request.reproducible and source_date_epoch is None:
        raise UsageError("--reproducible needs SOURCE_DATE_EPOCH: build from a git checkout")
    build_args = parse_build_args(request.build_args)

    compression = request.compression or settings.compression
    if compression not in COMPRESSIONS:
        raise UsageError(f"--compression {compression!r} is not one of {', '.join(COMPRESSIONS)}")
    load = request.load if request.load is not None else not request.push
    if load and len(request.platforms) > 1:
        raise UsageError("--load takes one platform; use --push for a multi-platform image")
    return BuildChoices(
        target=target,
        cache_mode=mode,
        progress=progress,
        torch_variant=variant,
        engines=engines,
        tags=tuple(tags),
        cache_from=cache_from,
        cache_to=cache_to,
        no_cache=request.no_cache or mode == "none",
        push=request.push,
        load=load,
        platforms=platforms,
        build_args=build_args,
        compression=compression,
        reproducible=request.reproducible,
        source_date_epoch=source_date_epoch if request.reproducible else None,
    )


def image_build_args(settings: Settings, choices: BuildChoices) -> dict[str, str]:
    """The build arguments that pick the images and what they hold (before the host's and
    the person's own, which come after and may replace them)."""
    return {
        "BASE_IMAGE": settings.base_image,
        "INSTALLER_IMAGE": settings.installer_image or settings.base_image,
        "TORCH_VARIANT": choices.torch_variant,
        "ENGINES": ",".join(choices.engines),
    }
