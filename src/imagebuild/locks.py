"""`inv lock` and the lock freshness check: pip-tools groups compiled with hashes.

Groups are layered: torch is pinned alone, the service is constrained by the torch lock,
the neural engine by both, and the developer tools by the service lock, so a version that
two groups share is the same in both. Every group is compiled with the host's pip config
file ignored (a lock must not depend on one machine's extra indexes); the torch-cpu group
alone also looks in the host's wheelhouse (PIP_FIND_LINKS), where the CPU wheel lives here.
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

from imagebuild.config import HostPackageSettings
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer

COMPILE_COMMAND = "inv lock"


@dataclass(frozen=True)
class LockGroup:
    name: str
    # Other groups whose lock this one is constrained by (they must be compiled first).
    after: tuple[str, ...] = ()
    find_links: bool = False


GROUPS: tuple[LockGroup, ...] = (
    LockGroup("torch-cpu", find_links=True),
    LockGroup("torch-cuda"),
    LockGroup("service", after=("torch-cpu",)),
    LockGroup("csm", after=("torch-cpu", "service")),
    LockGroup("dev", after=("service",)),
    LockGroup("installer"),
)


def present_groups(requirements: Path) -> list[LockGroup]:
    return [group for group in GROUPS if (requirements / f"{group.name}.in").exists()]


def compile_command(
    group: LockGroup,
    host: HostPackageSettings,
    upgrade_packages: Sequence[str] = (),
    upgrade: bool = False,
) -> list[str]:
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
    for package in upgrade_packages:
        command += ["--upgrade-package", package]
    if upgrade:
        command.append("--upgrade")
    command.append(f"{group.name}.in")
    return command


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
    return env


def _run_compile(command: list[str], env: dict[str, str], group: str, cwd: Path) -> None:
    # pip-compile leaves each file it hashes in a pip-unpack-* folder (16 GB seen in /tmp after
    # one `inv lock` of new packages): give it a temporary folder of its own and delete it.
    with tempfile.TemporaryDirectory(prefix="pip-compile-") as scratch:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**env, "TMPDIR": scratch},
            cwd=cwd,
            check=False,
        )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit {result.returncode}"
        raise ImageBuildError(f"pip-compile of {group} failed: {detail}")


def lock(
    requirements: Path,
    printer: Printer,
    upgrade_packages: Sequence[str] = (),
    upgrade: bool = False,
    only: Sequence[str] = (),
) -> list[Path]:
    """Compile every group in dependency order; returns the lock files written."""
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
            group.name,
            requirements,
        )
        written.append(output)
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
            _run_compile(
                compile_command(group, host),
                env,
                group.name,
                scratch,
            )
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


def check_or_fail(requirements: Path, printer: Printer) -> None:
    stale = check_locks(requirements, printer)
    if not stale:
        printer("lock check: every lock matches its .in")
        return
    for item in stale:
        printer(item.diff)
    names = ", ".join(f"requirements/{item.group}.txt" for item in stale)
    raise ImageBuildError(f"stale lock(s): {names}; run `inv lock` and commit the result")
