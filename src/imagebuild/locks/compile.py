"""`inv lock` and the lock freshness check: pip-tools groups compiled with hashes.

Groups are layered: torch is pinned alone, the service is constrained by the torch lock,
the neural engine by both, and the developer tools by the service lock, so a version that
two groups share is the same in both. Every group is compiled with the host's pip config
file ignored (a lock must not depend on one machine's extra indexes); the torch-cpu group
alone also looks in the host's wheelhouse (PIP_FIND_LINKS), where the CPU wheel lives here.

A group for another architecture (`torch-cpu-arm64`: the image's torch on linux/arm64) is
compiled by uv's `pip compile --python-platform`: pip-compile resolves for the interpreter
that runs it, so on this host it would take x86_64's markers and wheels. It keeps the pins of
its sibling group for every package both have (torch's own dependencies).
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imagebuild.errors import ImageBuildError
from imagebuild.locks.layers import stale_layer_files, write_layer_files
from imagebuild.output import Printer
from imagebuild.plan.config import HostPackageSettings

COMPILE_COMMAND = "inv lock"


PYTHON_VERSION = "3.11"
# The manylinux level the other-architecture locks are resolved for (Debian 12: glibc 2.36).
MANYLINUX = "manylinux_2_28"
PINS_FILE = "pins-of-{group}.txt"


@dataclass(frozen=True)
class LockGroup:
    name: str
    # Other groups whose lock this one is constrained by (they must be compiled first).
    after: tuple[str, ...] = ()
    find_links: bool = False
    # Another architecture's lock (uv resolves it), keeping `pins_from`'s versions.
    platform: str = ""
    pins_from: str = ""


GROUPS: tuple[LockGroup, ...] = (
    LockGroup("torch-cpu", find_links=True),
    LockGroup(
        "torch-cpu-arm64", after=("torch-cpu",), platform="linux/arm64", pins_from="torch-cpu"
    ),
    LockGroup("torch-cuda"),
    LockGroup("service", after=("torch-cpu",)),
    LockGroup("csm", after=("torch-cpu", "service")),
    LockGroup("piper", after=("service",)),
    LockGroup("listener", after=("service", "piper", "csm")),
    LockGroup("installer"),
    LockGroup("dev", after=("service", "installer")),
)


def present_groups(requirements: Path) -> list[LockGroup]:
    return [group for group in GROUPS if (requirements / f"{group.name}.in").exists()]


def upgrade_options(upgrade_packages: Sequence[str], upgrade: bool) -> list[str]:
    """The same flags for pip-compile and uv: which pins may move."""
    options = [item for package in upgrade_packages for item in ("--upgrade-package", package)]
    return [*options, "--upgrade"] if upgrade else options


def uv_binary() -> str:
    """uv from the environment that runs `inv` (the dev lock has it), else from PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise ImageBuildError(
            "uv is not installed (it compiles the other-architecture locks): "
            "pip install --require-hashes -r requirements/dev.txt"
        )
    return found


def foreign_compile_command(
    group: LockGroup, upgrade_packages: Sequence[str] = (), upgrade: bool = False
) -> list[str]:
    """uv's resolution for another platform, in pip-tools' hashed format."""
    machine = {"linux/arm64": "aarch64", "linux/amd64": "x86_64"}[group.platform]
    command = [
        uv_binary(),
        "pip",
        "compile",
        "--quiet",
        "--generate-hashes",
        "--python-platform",
        f"{machine}-{MANYLINUX}",
        "--python-version",
        PYTHON_VERSION,
        "--custom-compile-command",
        COMPILE_COMMAND,
        "--output-file",
        f"{group.name}.txt",
    ]
    if group.pins_from:
        command += ["--constraint", PINS_FILE.format(group=group.pins_from)]
    return [*command, *upgrade_options(upgrade_packages, upgrade), f"{group.name}.in"]


def write_pins(lock_text: str, leave_out: Sequence[str]) -> str:
    """`name==version` of every package in a lock, less `leave_out`: constraints for uv."""
    pins = [
        line.split()[0].rstrip("\\").strip()
        for line in lock_text.splitlines()
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line
    ]
    kept = [pin for pin in pins if pin.split("==")[0].lower() not in leave_out]
    return "".join(f"{pin}\n" for pin in kept)


def compile_command(
    group: LockGroup,
    host: HostPackageSettings,
    upgrade_packages: Sequence[str] = (),
    upgrade: bool = False,
) -> list[str]:
    if group.platform:
        return foreign_compile_command(group, upgrade_packages, upgrade)
    command = [
        sys.executable,
        "-m",
        "piptools",
        "compile",
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",
        "--strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--resolver=backtracking",
        # Relative names (run from the requirements directory) keep paths out of the locks.
        "--output-file",
        f"{group.name}.txt",
    ]
    if group.find_links:
        for directory in host.find_links:
            command += ["--find-links", str(directory)]
    return [*command, *upgrade_options(upgrade_packages, upgrade), f"{group.name}.in"]


def compile_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment pip-compile runs in: no pip config file, no host-only indexes."""
    env = {key: value for key, value in environ.items() if not key.startswith("PIP_")}
    for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "PIP_DEFAULT_TIMEOUT"):
        value = environ.get(key, "")
        if value and (key in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT") or value.startswith("http")):
            env[key] = value
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["CUSTOM_COMPILE_COMMAND"] = COMPILE_COMMAND
    # uv reads its own variables: the same index and CA, no uv.toml of this machine.
    env["UV_NO_CONFIG"] = "1"
    if env.get("PIP_INDEX_URL"):
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"]
    if env.get("PIP_CERT"):
        env["SSL_CERT_FILE"] = env["PIP_CERT"]
    return env


def _run_compile(
    command: list[str], env: dict[str, str], group: LockGroup | str, cwd: Path
) -> None:
    name = group if isinstance(group, str) else group.name
    pins: Path | None = None
    if isinstance(group, LockGroup) and group.pins_from:
        # The sibling's pins less torch itself (the architectures' torch versions differ).
        pins = cwd / PINS_FILE.format(group=group.pins_from)
        source = (cwd / f"{group.pins_from}.txt").read_text(encoding="utf-8")
        pins.write_text(write_pins(source, ("torch",)), encoding="utf-8")
    # pip-compile leaves each file it hashes in a pip-unpack-* folder (16 GB seen in /tmp after
    # one `inv lock` of new packages): give it a temporary folder of its own and delete it.
    try:
        with tempfile.TemporaryDirectory(prefix="pip-compile-") as scratch:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**env, "TMPDIR": scratch},
                cwd=cwd,
                check=False,
            )
    finally:
        if pins is not None:
            pins.unlink(missing_ok=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit {result.returncode}"
        tool = "uv pip compile" if "uv" in Path(command[0]).name else "pip-compile"
        raise ImageBuildError(f"{tool} of {name} failed: {detail}")


def lock(
    requirements: Path,
    dockerfile: Path,
    printer: Printer,
    upgrade_packages: Sequence[str] = (),
    upgrade: bool = False,
    only: Sequence[str] = (),
) -> list[Path]:
    """Compile every group in dependency order, then the package layers' map and stages."""
    host = HostPackageSettings.current()
    env = compile_environment(os.environ)
    groups = present_groups(requirements)
    known = {group.name for group in groups}
    unknown = sorted(set(only) - known)
    if unknown:
        raise ImageBuildError(
            f"no requirements group {', '.join(unknown)}; groups: {', '.join(sorted(known))}"
        )
    written: list[Path] = []
    for group in groups:
        if only and group.name not in only:
            continue
        output = requirements / f"{group.name}.txt"
        printer(f"lock: {group.name}.in -> {output.name}")
        _run_compile(
            compile_command(group, host, upgrade_packages, upgrade),
            env,
            group,
            requirements,
        )
        written.append(output)
    for path in write_layer_files(requirements, dockerfile):
        printer(f"lock: package layers -> {path.name}")
        written.append(path)
    return written


@dataclass(frozen=True)
class StaleLock:
    group: str
    diff: str


def check_locks(requirements: Path, printer: Printer) -> list[StaleLock]:
    """Recompile each group into a scratch copy and diff it with the committed lock.

    The scratch copy starts from the committed lock, so pip-compile keeps its pins and
    only a changed `.in` (or a lock edited by hand) shows up as a difference.
    """
    host = HostPackageSettings.current()
    env = compile_environment(os.environ)
    stale: list[StaleLock] = []
    with tempfile.TemporaryDirectory(prefix="lock-check-") as scratch_name:
        scratch = Path(scratch_name) / "requirements"
        shutil.copytree(requirements, scratch)
        for group in present_groups(requirements):
            committed = requirements / f"{group.name}.txt"
            output = scratch / f"{group.name}.txt"
            printer(f"lock check: {group.name}")
            _run_compile(compile_command(group, host), env, group, scratch)
            before = committed.read_text(encoding="utf-8") if committed.exists() else ""
            after = output.read_text(encoding="utf-8")
            if before != after:
                diff = "".join(
                    difflib.unified_diff(
                        before.splitlines(keepends=True),
                        after.splitlines(keepends=True),
                        fromfile=f"requirements/{group.name}.txt (committed)",
                        tofile=f"requirements/{group.name}.txt (from {group.name}.in)",
                    )
                )
                stale.append(StaleLock(group.name, diff))
    return stale


def check_or_fail(requirements: Path, dockerfile: Path, printer: Printer) -> None:
    layer_files = stale_layer_files(requirements, dockerfile)
    if layer_files:
        names = ", ".join(str(path) for path in layer_files)
        raise ImageBuildError(
            f"{names}: not what the locks give (package layers); run `inv lock` and commit"
        )
    printer("lock check: requirements/layers.txt and the Dockerfile's layer stages are current")
    stale = check_locks(requirements, printer)
    if not stale:
        printer("lock check: every lock matches its .in")
        return
    for item in stale:
        printer(item.diff)
    names = ", ".join(f"requirements/{item.group}.txt" for item in stale)
    raise ImageBuildError(f"stale lock(s): {names}; run `inv lock` and commit the result")
