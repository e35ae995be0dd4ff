"""`inv login`: credentials for a remote registry (ECR), handed to the engine."""

from __future__ import annotations

import re
import shutil
import subprocess

from imagebuild.config import Settings
from imagebuild.engine import Engine
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer

_ECR = re.compile(r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


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
    Engine.of(settings).login(settings.registry, "AWS", result.stdout.strip())
    printer(f"logged in to {settings.registry}")
