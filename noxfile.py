"""Lint, tests, image smoke tests and speech checks: `nox` runs them all, `nox -l` lists them.

Thin on purpose: each session installs from a lock file and runs one tool or one `inv` task.
Arguments after `--` go to pytest, e.g. `nox -s tests -- --require-docker -k plan`.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "smoke", "tts"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
DEV_LOCK = "requirements/dev.txt"
SERVICE_LOCK = "requirements/service.txt"
# The csm engine's tests run a tiny model on the CPU: torch (the local CPU wheel) and the csm
# lock; the piper engine's run the bundled voice with onnxruntime (the piper lock).
CSM_LOCKS = ("requirements/torch-cpu.txt", "requirements/csm.txt")
PIPER_LOCK = "requirements/piper.txt"
# The listener's tests hear a committed clip with the packaged Whisper weights.
LISTENER_LOCK = "requirements/listener.txt"


def pytest_args(session: nox.Session, *default_paths: str) -> list[str]:
    """`nox -s tests -- tests/unit -k plan` picks paths; `-- --require-docker` keeps defaults."""
    if session.posargs and not session.posargs[0].startswith("-"):
        return list(session.posargs)
    return [*default_paths, *session.posargs]


def install_locked(session: nox.Session, *locks: str) -> None:
    for lock in locks:
        session.install("--require-hashes", "-r", lock)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy, hadolint, actionlint, and the lock freshness check."""
    # The service's own dependencies too, so mypy checks it against real signatures.
    install_locked(session, DEV_LOCK, SERVICE_LOCK)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "src", "tests", "tasks.py", "noxfile.py")
    session.run("hadolint", *sorted(str(path) for path in Path("docker").glob("*/Dockerfile")))
    session.run(
        "actionlint", *sorted(str(path) for path in Path(".github/workflows").glob("*.yml"))
    )
    session.run("inv", "lock", "--check")


@nox.session(python=PYTHON)
def lock(session: nox.Session) -> None:
    """Recompile every lock into a scratch directory; fail with a diff if one is stale."""
    install_locked(session, DEV_LOCK)
    session.run("inv", "lock", "--check")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests (no daemon) and integration tests (real engine and registry, marked docker)."""
    install_locked(session, DEV_LOCK, SERVICE_LOCK, *CSM_LOCKS, PIPER_LOCK, LISTENER_LOCK)
    session.run("inv", "test-tools")  # redis-server and espeak-ng, for the book workers' tests
    session.run(
        "pytest",
        "--junitxml=build-logs/junit-tests.xml",
        *pytest_args(session, "tests/unit", "tests/integration"),
    )


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    """Build the image, start it, and check what it runs and that it speaks."""
    install_locked(session, DEV_LOCK)
    session.run("inv", "build", "--progress", "tty")
    session.run(
        "pytest", "--junitxml=build-logs/junit-smoke.xml", *pytest_args(session, "tests/smoke")
    )


@nox.session(python=PYTHON)
def tts(session: nox.Session) -> None:
    """Speech through the running images: formats, pacing, ACX levels, bad input, speed; csm."""
    # No torch here: the csm checks have the image make its tiny model (a smaller venv).
    install_locked(session, DEV_LOCK, SERVICE_LOCK)
    session.run("inv", "build", "--progress", "tty")
    session.run("inv", "build", "--engines", "espeak,piper,csm,listener", "--progress", "tty")
    session.run("inv", "test-tools")  # ffprobe, to read the books' M4B
    session.run("pytest", "--junitxml=build-logs/junit-tts.xml", *pytest_args(session, "tests/tts"))


@nox.session(python=PYTHON)
def arm64(session: nox.Session) -> None:
    """The linux/arm64 image under QEMU: two-platform base, build, and what it runs (slow)."""
    install_locked(session, DEV_LOCK, SERVICE_LOCK)
    session.run("inv", "up", "--platform", "linux/amd64,linux/arm64")
    session.run("inv", "build", "--platform", "linux/arm64", "--progress", "tty")
    session.run(
        "pytest", "--junitxml=build-logs/junit-arm64.xml", *pytest_args(session, "tests/arm64")
    )
