"""Background processes the platform starts and stops: the engine, the registry, sandbox
engines. Pid files, waiting for an answer, stopping, and the mounts a killed engine leaves."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer


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


def last_lines(path: Path, count: int = 3) -> str:
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
                f"{what} exited with code {process.returncode}: {last_lines(log)}", log
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
