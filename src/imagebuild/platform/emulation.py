"""Running foreign-architecture binaries here: QEMU's user-mode emulators, registered with the
kernel's binfmt_misc with the F flag (the kernel opens the emulator once, so it works inside
containers and chroots too). Debian's `qemu-user-static` and `binfmt-support` provide them;
mmdebstrap's foreign-architecture mode needs `arch-test` besides."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import StatePaths
from imagebuild.plan.target_platforms import QEMU_NAMES, architecture, foreign
from imagebuild.platform.debian import install_packages

BINFMT = Path("/proc/sys/fs/binfmt_misc")
PACKAGES = ("qemu-user-static", "binfmt-support", "arch-test")


def registration(name: str, root: Path = BINFMT) -> dict[str, str]:
    """`enabled`, `interpreter`, `flags` of a binfmt entry (empty when not registered)."""
    entry = root / f"qemu-{name}"
    try:
        lines = entry.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    found: dict[str, str] = {"enabled": "yes" if lines and lines[0] == "enabled" else "no"}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        found[key.rstrip(":")] = value.strip()
    return found


def usable(name: str, root: Path = BINFMT) -> bool:
    entry = registration(name, root)
    return entry.get("enabled") == "yes" and "F" in entry.get("flags", "")


def ensure_emulation(platforms: Sequence[str], paths: StatePaths, printer: Printer) -> None:
    """Make the foreign platforms' binaries runnable here, and say what was done."""
    names = sorted(
        {QEMU_NAMES.get(architecture(item), architecture(item)) for item in foreign(platforms)}
    )
    if not names:
        return
    if all(usable(name) for name in names):
        printer(f"emulation: {', '.join(f'qemu-{name}' for name in names)} registered (F flag)")
        return
    install_packages(PACKAGES, paths, printer)
    if not (BINFMT / "register").exists():
        result = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ImageBuildError(
                f"cannot mount binfmt_misc at {BINFMT}: {result.stderr.strip() or 'no reason'}"
                " (emulating another architecture needs a privileged host)"
            )
    for name in names:
        subprocess.run(
            ["update-binfmts", "--enable", f"qemu-{name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if not usable(name):
            raise ImageBuildError(
                f"qemu-{name} is not registered with binfmt_misc with the F flag "
                f"({registration(name) or 'absent'}): foreign {name} binaries cannot run here"
            )
    printer(
        f"emulation: set up {', '.join(f'qemu-{name}' for name in names)} "
        f"(Debian's {', '.join(PACKAGES)}; binfmt_misc, F flag)"
    )
