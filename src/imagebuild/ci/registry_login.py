"""`inv login`: credentials for the configured registry, handed to the engine.

ECR gets a 12-hour token from the AWS CLI; any other registry a user and a password, the
password read from standard input or an environment variable, never from an argument (an
argument is visible to every user of the machine in the process list).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import TextIO

from imagebuild.engine.docker import DockerEngine
from imagebuild.errors import ImageBuildError, UsageError
from imagebuild.output import Printer
from imagebuild.plan.config import Settings
from imagebuild.platform.registry import RegistryClient
from imagebuild.platform.registry_auth import REGISTRY_USER

_ECR = re.compile(r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
PASSWORD_VARIABLE = "REGISTRY_PASSWORD"  # noqa: S105 - the variable's name
USERNAME_VARIABLE = "REGISTRY_USERNAME"


def is_ecr(registry: str) -> bool:
    return _ECR.match(registry) is not None


def ecr_region(registry: str) -> str:
    match = _ECR.match(registry)
    if match is None:
        raise ImageBuildError(
            f"registry {registry} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)"
        )
    return match.group("region")


def login_ecr(settings: Settings, printer: Printer) -> None:
    """A 12-hour ECR token from the AWS CLI, given to the engine for pushes and cache export."""
    region = ecr_region(settings.registry)
    if shutil.which("aws") is None:
        raise ImageBuildError("the AWS CLI is not installed; it makes the ECR login token")
    result = subprocess.run(
        ["aws", "ecr", "get-login-password", "--region", region],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        raise ImageBuildError(f"aws ecr get-login-password failed: {detail[0]}")
    DockerEngine.of(settings).login(settings.registry, "AWS", result.stdout.strip())
    printer(f"logged in to {settings.registry}")


def login_password(
    settings: Settings,
    printer: Printer,
    username: str,
    stdin: TextIO | None,
    environ: Mapping[str, str],
) -> None:
    """User and password for any registry: the password from `stdin`, else from the environment."""
    password = stdin.read().strip() if stdin is not None else environ.get(PASSWORD_VARIABLE, "")
    if not password:
        raise UsageError(
            f"no password for {settings.registry}: pipe it to `inv login --password-stdin`, "
            f"or set {PASSWORD_VARIABLE} (never an argument)"
        )
    user = username or environ.get(USERNAME_VARIABLE, "")
    if not user and settings.registry_is_local and settings.registry_auth:
        user = REGISTRY_USER
    if not user:
        raise UsageError(
            f"no user for {settings.registry}: give --username or set {USERNAME_VARIABLE}"
        )
    # A wrong password is named as such: docker's own message for it (after falling back to
    # plain HTTP on a loopback registry) would say "400 Bad Request".
    if RegistryClient.for_settings(settings).accepts((user, password)) is False:
        raise ImageBuildError(
            f"cannot log in to {settings.registry}: the registry refused the password for {user}"
        )
    DockerEngine.of(settings).login(settings.registry, user, password)
    printer(f"logged in to {settings.registry} as {user}")


def login(
    settings: Settings,
    printer: Printer,
    ecr: bool,
    username: str,
    stdin: TextIO | None,
    environ: Mapping[str, str],
) -> None:
    """`inv login`: ECR's token path for an ECR registry (or --ecr), a password otherwise."""
    if ecr or (is_ecr(settings.registry) and not username and stdin is None):
        login_ecr(settings, printer)
        return
    login_password(settings, printer, username, stdin, environ)
