"""Failures say one clear line and where the log is; nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild.build import build
from imagebuild.config import Settings
from imagebuild.errors import ImageBuildError
from imagebuild.plan import BuildRequest


def test_no_daemon_says_run_inv_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(ImageBuildError, match="run `inv up`"):
        build(settings, BuildRequest(), print, start_platform=False)
