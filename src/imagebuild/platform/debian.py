"""Installing Debian packages for the platform: the engine from trixie (pinned low) on
bookworm, and single tools (docker-registry, mmdebstrap) from the release at hand."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import Settings, StatePaths

OS_RELEASE = Path("/etc/os-release")
APT_SOURCE = Path("/etc/apt/sources.list.d/audiobook-tts-trixie.sources")
APT_PIN = Path("/etc/apt/preferences.d/audiobook-tts-trixie.pref")
MIN_ENGINE_MAJOR = 26
# docker-compose 2.x: `docker compose up --scale worker=3` (docs/workers.md).
ENGINE_PACKAGES = ("docker.io", "docker-buildx", "containerd", "docker-cli", "docker-compose")
SUPPORTED_DEBIAN = ("12", "13")

TRIXIE_SOURCE = """\
# Added by audiobook-tts `inv up`: Docker Engine >= 26 and buildx come from Debian 13.
Types: deb
URIs: {mirror}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
TRIXIE_PIN = """\
# Added by audiobook-tts `inv up`: nothing is taken from trixie unless asked for by name.
Package: *
Pin: release n=trixie
Pin-Priority: 100
"""


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


def apt_candidate_major(policy_output: str) -> int | None:
    """The major version of `apt-cache policy`'s candidate (`26.1.5+dfsg1-9` -> 26)."""
    match = re.search(r"Candidate:\s*(?:\d+:)?(\d+)\.", policy_output)
    return int(match.group(1)) if match else None


def pinned_siblings(apt_output: str) -> list[str]:
    """Packages whose exact-version dependency is held at a newer, already installed version.

    `iptables : Depends: libip4tc2 (= 1.8.9-2) but 1.8.11-2 is to be installed` -> iptables
    """
    names = re.findall(
        r"^\s*([a-z0-9][a-z0-9+.-]*) : Depends: \S+ \(= [^)]+\) but \S+ is to be installed",
        apt_output[apt_output.rfind("$ apt-get install") :],
        re.MULTILINE,
    )
    return sorted(set(names))


def _run_logged(command: Sequence[str], log: Path, what: str) -> str:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(list(command), capture_output=True, text=True, env=env, check=False)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = " | ".join(line for line in result.stderr.splitlines()[-3:] if line.strip())
        raise ImageBuildError(f"{what} failed: {tail or 'exit ' + str(result.returncode)}", log)
    return result.stdout


def require_root_debian(why: str) -> str:
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"{why}, and only root can install it here: install Docker Engine >= "
            f"{MIN_ENGINE_MAJOR} with buildx (Debian: docker.io docker-buildx containerd) and "
            "start it, or run `inv up` as root"
        )
    release = parse_os_release(OS_RELEASE.read_text()) if OS_RELEASE.exists() else {}
    if release.get("ID") != "debian" or release.get("VERSION_ID") not in SUPPORTED_DEBIAN:
        name = release.get("PRETTY_NAME", "this system")
        raise ImageBuildError(
            f"{why}; `inv up` installs it only on Debian 12 or 13, not on {name}: install "
            f"Docker Engine >= {MIN_ENGINE_MAJOR} with buildx and the containerd image store"
        )
    return release.get("VERSION_ID", "")


def _apt_policy(package: str, paths: StatePaths) -> str:
    return _run_logged(["apt-cache", "policy", package], paths.apt_log, "apt-cache policy")


def install_engine(settings: Settings, paths: StatePaths, printer: Printer) -> None:
    """docker.io >= 26, buildx and containerd from Debian; from trixie, pinned low, on bookworm."""
    printer("installing Docker Engine, buildx and containerd from Debian packages ...")
    _run_logged(["apt-get", "update"], paths.apt_log, "apt-get update")
    candidate = apt_candidate_major(_apt_policy("docker.io", paths))
    packages = list(ENGINE_PACKAGES)
    if candidate is None or candidate < MIN_ENGINE_MAJOR:
        if not APT_SOURCE.exists() or not APT_PIN.exists():
            printer(
                "  adding Debian 13 (trixie) at pin priority 100: only what we name comes from it"
            )
            APT_SOURCE.write_text(TRIXIE_SOURCE.format(mirror=settings.base_mirror))
            APT_PIN.write_text(TRIXIE_PIN)
            _run_logged(["apt-get", "update"], paths.apt_log, "apt-get update")
        # `pkg/trixie` takes that package (and only the dependencies it needs) from trixie.
        packages = [f"{name}/trixie" for name in ENGINE_PACKAGES]
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    try:
        _run_logged(command, paths.apt_log, "installing the engine packages")
    except ImageBuildError:
        # A package already upgraded from trixie (e.g. libip4tc2) pins its siblings there too.
        siblings = pinned_siblings(paths.apt_log.read_text(errors="replace"))
        if not siblings or not any(name.endswith("/trixie") for name in packages):
            raise
        printer(f"  retrying with {', '.join(siblings)} from trixie, to match what is installed")
        _run_logged(
            [*command, *(f"{name}/trixie" for name in siblings)],
            paths.apt_log,
            "installing the engine packages",
        )
    printer(f"  installed {', '.join(ENGINE_PACKAGES)} (apt log: {paths.apt_log})")


def install_packages(packages: Sequence[str], paths: StatePaths, printer: Printer) -> None:
    missing = [name for name in packages if not dpkg_installed(name)]
    if not missing:
        return
    printer(f"installing {', '.join(missing)} from Debian packages ...")
    _run_logged(["apt-get", "update"], paths.apt_log, "apt-get update")
    _run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
        paths.apt_log,
        f"installing {', '.join(missing)}",
    )


def dpkg_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and "install ok installed" in result.stdout


# What the speech checks run on the host beside the images: ffprobe reads the books' M4B
# the way audiobook tools do (the image itself holds FFmpeg's libraries, not its programs);
# redis-server is the queue the workers' tests start on a loopback port, and espeak-ng the
# engine of the workers they start.
TEST_PACKAGES = ("ffmpeg", "redis-server", "espeak-ng")
# The compose file's test and measurement: `docker compose up --scale worker=N`.
COMPOSE_PACKAGE = "docker-compose"
# infra/codebuild.tf read by HashiCorp's own HCL parser (tests/integration/test_infra_hcl.py):
# no Terraform binary can be had here; Debian packages this one, in trixie only.
TRIXIE_ONLY_TEST_PACKAGES = (COMPOSE_PACKAGE, "terraform-config-inspect")


def install_test_tools(settings: Settings, printer: Printer) -> None:
    """The Debian packages the tests use on the host, installed when missing."""
    missing = [name for name in TEST_PACKAGES if not dpkg_installed(name)]
    for name in TRIXIE_ONLY_TEST_PACKAGES:
        if not dpkg_installed(name):
            # From trixie (pinned low) where the engine came from there, as `inv up` does.
            missing.append(f"{name}/trixie" if APT_SOURCE.exists() else name)
    if not missing:
        printer(f"test tools: {', '.join((*TEST_PACKAGES, *TRIXIE_ONLY_TEST_PACKAGES))} installed")
        return
    require_root_debian(f"the tests need {', '.join(missing)}")
    install_packages(missing, StatePaths(settings.state_dir), printer)
