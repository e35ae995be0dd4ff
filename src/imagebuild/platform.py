"""`inv up` / `inv down`: the local build platform (engine, registry, base image), idempotent.

The engine and the registry are started as background processes whose pids and logs live
in the project's state directory; their data stays there too, so `inv up` after a reboot
brings them back in seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagebuild import engine
from imagebuild.config import Settings
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.registry import RegistryClient

DAEMON_JSON = Path("/etc/docker/daemon.json")
OS_RELEASE = Path("/etc/os-release")
APT_SOURCE = Path("/etc/apt/sources.list.d/audiobook-tts-trixie.sources")
APT_PIN = Path("/etc/apt/preferences.d/audiobook-tts-trixie.pref")
MIN_ENGINE_MAJOR = 26
ENGINE_PACKAGES = ("docker.io", "docker-buildx", "containerd", "docker-cli")
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

    @property
    def registry_pid(self) -> Path:
        return self.root / "registry.pid"

    @property
    def registry_log(self) -> Path:
        return self.root / "registry.log"

    @property
    def registry_config(self) -> Path:
        return self.root / "registry" / "config.yml"

    @property
    def registry_data(self) -> Path:
        return self.root / "registry" / "data"

    @property
    def apt_log(self) -> Path:
        return self.root / "apt.log"


# --- pure helpers ---------------------------------------------------------------------------


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


def merge_daemon_config(existing: Mapping[str, Any]) -> dict[str, Any]:
    """The engine settings we need, merged into whatever the file already holds."""
    merged = dict(existing)
    features = dict(merged.get("features") or {})
    features["containerd-snapshotter"] = True
    merged["features"] = features
    return merged


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


# --- processes ------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # A zombie is dead for our purposes.
        return state.read_text().split(")")[-1].split()[0] != "Z"
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def start_background(command: Sequence[str], log: Path, pidfile: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `inv up`, and Ctrl-C in the shell does not reach it
        )
    pidfile.write_text(f"{process.pid}\n")
    return process


def _last_lines(path: Path, count: int = 3) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(lines[-count:])
    return ""


def wait_until(
    check: Callable[[], bool],
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    what: str,
    log: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise ImageBuildError(
                f"{what} exited with code {process.returncode}: {_last_lines(log)}", log
            )
        time.sleep(0.3)
    raise ImageBuildError(f"{what} did not answer within {timeout:.0f}s", log)


def stop_pid(pidfile: Path, what: str, printer: Printer, timeout: float = 30.0) -> None:
    pid = read_pid(pidfile)
    if pid is None or not pid_alive(pid):
        printer(f"{what}: not running (no live pid in {pidfile})")
        pidfile.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        printer(f"{what}: did not stop within {timeout:.0f}s, killed (pid {pid})")
    else:
        printer(f"{what}: stopped (pid {pid})")
    pidfile.unlink(missing_ok=True)


def mounts_under(mountinfo: str, root: Path) -> list[Path]:
    """Mount points at or below `root` in /proc/self/mountinfo text, deepest first."""
    found: set[Path] = set()
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        # mountinfo escapes space, tab, newline and backslash as octal (\040 and so on).
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
        if point == root or root in point.parents:
            found.add(point)
    return sorted(found, key=lambda path: (-len(path.parts), str(path)))


def release_mounts(roots: Sequence[Path], printer: Printer) -> None:
    """Unmount what a killed dockerd left under `roots` (it bind-mounts its data root)."""
    mountinfo = Path("/proc/self/mountinfo").read_text()
    for point in (point for root in roots for point in mounts_under(mountinfo, root)):
        # Lazy: a mount still held by a leftover process goes once that process does.
        result = subprocess.run(
            ["umount", "--lazy", str(point)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ImageBuildError(
                f"cannot unmount {point} (left by an engine that did not stop cleanly): "
                f"{result.stderr.strip()}"
            )
        printer(f"unmounted {point} (left by an engine that did not stop cleanly)")


# --- installing -----------------------------------------------------------------------------


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


def _require_root_debian(why: str) -> str:
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
    missing = [name for name in packages if not _dpkg_installed(name)]
    if not missing:
        return
    printer(f"installing {', '.join(missing)} from Debian packages ...")
    _run_logged(["apt-get", "update"], paths.apt_log, "apt-get update")
    _run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
        paths.apt_log,
        f"installing {', '.join(missing)}",
    )


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and "install ok installed" in result.stdout


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
    docker = engine.client_for(settings)
    if engine.engine_answers(docker):
        facts = engine.engine_facts(docker)
        if not facts.containerd_store:
            printer(
                "warning: the engine does not use the containerd image store; registry and "
                f"local cache export need it: set it in {DAEMON_JSON} and restart the engine"
            )
        printer(f"engine: up (Docker {facts.server_version}, buildx {facts.buildx_version})")
        return
    if not _engine_installed():
        _require_root_debian("no Docker Engine with buildx is installed")
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
    wait_until(lambda: engine.engine_answers(docker), process, 90, "dockerd", paths.dockerd_log)
    facts = engine.engine_facts(docker)
    printer(f"engine: up (Docker {facts.server_version}, buildx {facts.buildx_version})")


def ensure_registry(settings: Settings, paths: StatePaths, printer: Printer) -> None:
    if not settings.registry_is_local:
        printer(f"registry: {settings.registry} is remote; not started here (`inv login --ecr`)")
        return
    registry = RegistryClient(settings.registry)
    if registry.answers():
        printer(f"registry: up at {settings.registry}")
        return
    port = settings.registry.rpartition(":")[2]
    if not port.isdigit():
        raise ImageBuildError(f"registry {settings.registry} has no port; use 127.0.0.1:PORT")
    if shutil.which("docker-registry") is None:
        _require_root_debian("the local registry (Debian's docker-registry) is not installed")
        install_packages(["docker-registry"], paths, printer)
    paths.registry_data.mkdir(parents=True, exist_ok=True)
    config = REGISTRY_CONFIG.format(data=paths.registry_data, address=settings.registry)
    if not paths.registry_config.exists() or paths.registry_config.read_text() != config:
        paths.registry_config.write_text(config)
    printer(
        f"registry: starting docker-registry on {settings.registry} (log: {paths.registry_log})"
    )
    process = start_background(
        ["docker-registry", "serve", str(paths.registry_config)],
        paths.registry_log,
        paths.registry_pid,
    )
    wait_until(registry.answers, process, 30, "docker-registry", paths.registry_log)
    printer(f"registry: up at {settings.registry} (data: {paths.registry_data})")


def up(settings: Settings, printer: Printer) -> None:
    """Bring up engine, registry and base image; each part is skipped when already there."""
    from imagebuild import baseimage  # the base image needs the two parts above

    started = time.monotonic()
    paths = StatePaths(settings.state_dir)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_engine(settings, paths, printer)
    ensure_registry(settings, paths, printer)
    baseimage.ensure_base_image(settings, printer)
    printer(f"platform up in {time.monotonic() - started:.1f}s")


def platform_is_up(settings: Settings) -> bool:
    """Cheap check used before a build: engine and registry answer."""
    docker = engine.client_for(settings)
    if not engine.engine_answers(docker):
        return False
    return not settings.registry_is_local or RegistryClient(settings.registry).answers()


def down(settings: Settings, printer: Printer) -> None:
    """Stop what `inv up` started, by pid; data (images, cache, registry blobs) is kept."""
    paths = StatePaths(settings.state_dir)
    stop_pid(paths.registry_pid, "registry", printer)
    stop_pid(paths.dockerd_pid, "engine", printer)
