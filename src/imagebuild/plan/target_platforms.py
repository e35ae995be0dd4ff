"""Target platforms (`linux/arm64`): names, the host's own, and what a base image lacks.

Pure functions: the registry is read elsewhere (`RegistryClient.platforms`) and emulation is
set up elsewhere (`emulation`); here only names are compared.
"""

from __future__ import annotations

import platform as host
from collections.abc import Mapping, Sequence

# `uname -m` -> the OCI architecture; Debian's architecture names are the same for these.
MACHINE_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# OCI architecture -> the QEMU user-mode emulator (binfmt name) that runs its binaries.
QEMU_NAMES = {"arm64": "aarch64", "amd64": "x86_64"}
# What `arm64` means without a variant: v8 (BuildKit and registries write it either way).
DEFAULT_VARIANTS = {"arm64": "v8"}


def normalize(name: str) -> str:
    """`linux/arm64/v8` and `linux/arm64` are one platform: the default variant is dropped."""
    parts = name.strip().lower().split("/")
    if len(parts) == 3 and DEFAULT_VARIANTS.get(parts[1]) == parts[2]:
        parts = parts[:2]
    return "/".join(parts)


def platform_name(fields: Mapping[str, object]) -> str:
    """An OCI platform (`{"os": "linux", "architecture": "arm64"}`) as `linux/arm64`; empty
    for an attestation's `unknown/unknown`."""
    if fields.get("os") in (None, "", "unknown"):
        return ""
    parts = (fields.get("os"), fields.get("architecture"), fields.get("variant"))
    return normalize("/".join(str(part) for part in parts if part))


def architecture(name: str) -> str:
    """`linux/arm64` -> `arm64` (the OCI and Debian name)."""
    parts = normalize(name).split("/")
    return parts[1] if len(parts) > 1 else parts[0]


def host_platform(machine: str | None = None) -> str:
    found = machine or host.machine()
    return f"linux/{MACHINE_ARCHITECTURES.get(found, found)}"


def missing_platforms(available: Sequence[str], requested: Sequence[str]) -> list[str]:
    """The requested platforms that `available` lacks, in the order asked."""
    have = {normalize(name) for name in available}
    return [name for name in requested if normalize(name) not in have]


def foreign(platforms: Sequence[str], machine: str | None = None) -> list[str]:
    """The platforms this host can only run under emulation."""
    own = host_platform(machine)
    return [name for name in platforms if normalize(name) != own]


def missing_base_message(image: str, available: Sequence[str], missing: Sequence[str]) -> str:
    """One line: what the base has, what it lacks, and the command that makes it."""
    wanted = ",".join(dict.fromkeys([*available, *missing]))
    return (
        f"the base image {image} has {', '.join(available) or 'no platform'} only; "
        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing, and a build "
        f"for it would fill the image with {', '.join(available) or 'foreign'} binaries: "
        f"make the base for it with `inv up --platform {wanted}`"
    )
