"""The base image, made from Debian packages with mmdebstrap and pushed to the local registry.

Docker Hub is out of reach here, so the project makes its own base. The root file system
is built reproducibly (mmdebstrap honours SOURCE_DATE_EPOCH) and added to a `FROM scratch`
image by buildx, so that the image config's timestamps are fixed too (a plain
`docker import` would stamp the time of import into the config).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from imagebuild.engine.docker import DockerEngine
from imagebuild.engine.progress import utc_now
from imagebuild.engine.run import run_build
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import HostPackageSettings, Settings, StatePaths
from imagebuild.plan.dockerfile import read_stages
from imagebuild.plan.plan import make_plan
from imagebuild.plan.request import BuildRequest
from imagebuild.plan.target_platforms import (
    architecture,
    foreign,
    host_platform,
    missing_platforms,
    normalize,
    platform_name,
)
from imagebuild.platform.debian import install_packages
from imagebuild.platform.emulation import ensure_emulation
from imagebuild.platform.registry import Reference, RegistryClient

RECIPE_LABEL = "io.audiobook-tts.base-recipe"
# Fixed, so that the same package set gives the same root file system and image config.
BASE_EPOCH = 1704067200
PATH_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)


@dataclass(frozen=True)
class BaseRecipe:
    """What the base image is made of; its digest decides whether a rebuild is needed."""

    suite: str
    mirror: str
    packages: tuple[str, ...]
    dockerfile_text: str
    # Target platforms (linux/amd64, linux/arm64): one root file system each, one index.
    platforms: tuple[str, ...] = ("linux/amd64",)

    @classmethod
    def from_repository(
        cls, settings: Settings, platforms: Sequence[str] = ("linux/amd64",)
    ) -> BaseRecipe:
        base_dir = settings.root / "docker" / "base"
        packages = read_packages(base_dir / "packages.txt")
        return cls(
            suite=settings.base_suite,
            mirror=settings.base_mirror,
            packages=packages,
            dockerfile_text=(base_dir / "Dockerfile").read_text(encoding="utf-8"),
            platforms=tuple(sorted({normalize(item) for item in platforms})),
        )

    def digest(self) -> str:
        document = json.dumps(
            {
                "suite": self.suite,
                "mirror": self.mirror,
                "packages": sorted(self.packages),
                "dockerfile": self.dockerfile_text,
                "excludes": PATH_EXCLUDES,
                "epoch": BASE_EPOCH,
                "architectures": sorted(architecture(item) for item in self.platforms),
            },
            sort_keys=True,
        )
        return hashlib.sha256(document.encode()).hexdigest()[:16]

    def sources(self) -> list[str]:
        """Release, updates and security suites, so the base carries current fixes."""
        security = self.mirror.rstrip("/").rsplit("/", 1)[0] + "/debian-security"
        return [
            f"deb {self.mirror} {self.suite} main",
            f"deb {self.mirror} {self.suite}-updates main",
            f"deb {security} {self.suite}-security main",
        ]

    def mmdebstrap_command(self, output: Path, platform: str = "linux/amd64") -> list[str]:
        """One architecture's root file system (a foreign one runs its scripts under QEMU)."""
        command = [
            "mmdebstrap",
            "--variant=minbase",
            "--mode=root",
            "--format=tar",
            f"--architectures={architecture(platform)}",
            f"--include={','.join(self.packages)}",
            '--aptopt=Acquire::Languages "none"',
            # The host's resolver and name must not end up in the image.
            '--customize-hook=rm -f "$1"/etc/hostname "$1"/etc/resolv.conf',
        ]
        command += [f"--dpkgopt={option}" for option in PATH_EXCLUDES]
        command += [self.suite, str(output), *self.sources()]
        return command


def read_packages(path: Path) -> tuple[str, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ImageBuildError(f"cannot read the base image's package list {path}") from error
    packages = tuple(
        line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()
    )
    if not packages:
        raise ImageBuildError(f"{path} names no package")
    return packages


def base_image_current(settings: Settings, recipe: BaseRecipe) -> bool:
    reference = Reference.parse(settings.base_image)
    client = RegistryClient.for_settings(settings)
    labels = client.labels(reference.repository, reference.tag)
    if labels is None or labels.get(RECIPE_LABEL) != recipe.digest():
        return False
    # The recipe covers the architectures, but the label is read from one platform only.
    have = client.platforms(reference.repository, reference.tag) or ()
    return not missing_platforms(have, recipe.platforms)


def base_platforms(settings: Settings, requested: Sequence[str]) -> tuple[str, ...]:
    """What the base is made for: the platforms asked for, else those the current base has
    (a plain `inv up` keeps a two-platform base), else the host's."""
    if requested:
        return tuple(dict.fromkeys(normalize(item) for item in requested))
    reference = Reference.parse(settings.base_image)
    have = RegistryClient.for_settings(settings).platforms(reference.repository, reference.tag)
    return tuple(normalize(item) for item in have) if have else (host_platform(),)


def ensure_base_image(
    settings: Settings, printer: Printer, force: bool = False, platforms: Sequence[str] = ()
) -> None:
    if not settings.owns_base_image:
        if platforms:
            raise ImageBuildError(
                f"--platform: the base image {settings.base_image} is not made here; "
                "point base_image at one that has those platforms"
            )
        printer(f"base image: {settings.base_image} (not made here; the build pulls it)")
        return
    targets = base_platforms(settings, platforms)
    recipe = BaseRecipe.from_repository(settings, targets)
    if foreign(recipe.platforms):  # to make the base, and for the builds that use it
        ensure_emulation(recipe.platforms, StatePaths(settings.state_dir), printer)
    if not force and base_image_current(settings, recipe):
        printer(
            f"base image: {settings.base_image} is current (recipe {recipe.digest()}; "
            f"{', '.join(recipe.platforms)})"
        )
        return
    make_base_image(settings, recipe, printer)


def ensure_installer_image(settings: Settings, printer: Printer) -> None:
    """Tag the current base as the installer image once; later bases never move that tag."""
    installer = settings.installer_image
    if not installer:
        printer("installer image: none set; the package layers follow the base image")
        return
    if not (settings.owns_base_image and installer.startswith(f"{settings.registry}/")):
        printer(f"installer image: {installer} (not made here; the build pulls it)")
        return
    base, target = Reference.parse(settings.base_image), Reference.parse(installer)
    client = RegistryClient.for_settings(settings)
    if client.manifest(target.repository, target.tag) is not None:
        extend_installer(client, base, target, printer)
        printer(f"installer image: {installer} (pinned; the package layers build on it)")
        return
    if target.repository != base.repository:
        raise ImageBuildError(
            f"installer_image {installer} must be a tag of the base's repository "
            f"{settings.registry}/{base.repository} to be made here"
        )
    client.add_tag(base.repository, base.tag, target.tag)
    printer(
        f"installer image: made {installer} from {settings.base_image}; a new base will not "
        "move it (delete the tag to follow a new Python)"
    )


def extend_installer(
    client: RegistryClient, base: Reference, installer: Reference, printer: Printer
) -> None:
    """A platform the base has and the pinned installer lacks is added to the installer from
    the base; the platforms it has keep their manifests (their package layers stay cached)."""
    if base.repository != installer.repository:
        return  # another repository's blobs cannot be referenced from this index
    have = client.index_entries(installer.repository, installer.tag) or []
    names = [platform_name(entry.get("platform", {})) for entry in have]
    added = [
        entry
        for entry in client.index_entries(base.repository, base.tag) or []
        if (name := platform_name(entry.get("platform", {}))) and missing_platforms(names, [name])
    ]
    if not added:
        return
    client.put_index(installer.repository, installer.tag, [*have, *added])
    printer(
        f"installer image: added "
        f"{', '.join(platform_name(entry['platform']) for entry in added)} from the base; "
        f"{', '.join(names)} unchanged (its package layers stay cached)"
    )


def make_base_image(settings: Settings, recipe: BaseRecipe, printer: Printer) -> None:
    paths = StatePaths(settings.state_dir)
    if shutil.which("mmdebstrap") is None:
        install_packages(["mmdebstrap"], paths, printer)
    workdir = settings.state_dir / "base" / recipe.digest()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tarballs: list[Path] = []
    for platform in recipe.platforms:
        rootfs = workdir / f"rootfs-{architecture(platform)}.tar"
        tarballs.append(rootfs)
        log = workdir / f"mmdebstrap-{architecture(platform)}.log"
        emulated = " under emulation: minutes" if foreign([platform]) else ""
        printer(
            f"base image: making the {platform} root file system of {settings.base_image} from "
            f"Debian {recipe.suite} packages ({len(recipe.packages)} named{emulated}; "
            f"log: {log}) ..."
        )
        began = time.monotonic()
        with log.open("w", encoding="utf-8") as handle:
            result = subprocess.run(
                recipe.mmdebstrap_command(rootfs, platform),
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={"SOURCE_DATE_EPOCH": str(BASE_EPOCH), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                check=False,
            )
        if result.returncode != 0:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            raise ImageBuildError(
                f"mmdebstrap ({platform}) failed: {lines[-1] if lines else 'no output'}", log
            )
        printer(
            f"  {platform} root file system: {rootfs.stat().st_size / 1e6:.0f} MB in "
            f"{time.monotonic() - began:.0f}s"
        )
    dockerfile = settings.root / "docker" / "base" / "Dockerfile"
    # The same plan as any build, aimed at the rootfs folder: no cache (the layer is one ADD
    # of a fresh tarball), and none of the host's package settings (no pip runs here).
    base_settings = replace(
        settings, root=workdir, dockerfile=dockerfile, target="base", log_dir=settings.log_path
    )
    several = len(recipe.platforms) > 1
    request = BuildRequest(
        tags=(settings.base_image,),
        cache_mode="none",
        push=True,
        # One index for several platforms is pushed only: the engine's store takes one.
        load=not several,
        platforms=recipe.platforms if several else (),
        build_args=(f"RECIPE={recipe.digest()}", f"SOURCE_DATE_EPOCH={BASE_EPOCH}"),
        progress="tty",
    )
    plan = make_plan(
        base_settings, HostPackageSettings(), request, read_stages(dockerfile), now=utc_now()
    )
    report = run_build(DockerEngine.of(settings), plan, printer)
    for rootfs in tarballs:
        rootfs.unlink(missing_ok=True)
    printer(
        f"base image: pushed {settings.base_image} {report.image_digest or ''} "
        f"in {time.monotonic() - started:.0f}s"
    )
