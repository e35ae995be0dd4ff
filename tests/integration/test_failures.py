"""Failures say one clear line and where the log is; nothing half-written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagebuild.build.flow import build
from imagebuild.engine.run import BuildFailed
from imagebuild.errors import ImageBuildError
from imagebuild.plan.config import Settings
from imagebuild.plan.request import BuildRequest

from .conftest import BuildRunner


def test_no_daemon_says_run_inv_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    with pytest.raises(ImageBuildError, match="run `inv up`"):
        build(settings, BuildRequest(), print, start_platform=False)


@pytest.mark.docker
def test_dockerfile_syntax_error_names_the_line(scratch_repo: Path, build_in: BuildRunner) -> None:
    dockerfile = scratch_repo / "docker/tts/Dockerfile"
    lines = dockerfile.read_text().splitlines()
    lines.insert(20, "RUNN echo typo")
    dockerfile.write_text("\n".join(lines) + "\n")
    with pytest.raises(BuildFailed) as failure:
        build_in(scratch_repo)
    assert str(failure.value).startswith(
        "Dockerfile syntax error: dockerfile parse error on line 21: unknown instruction: RUNN"
    )
    assert failure.value.log_path is not None and failure.value.log_path.is_file()


@pytest.mark.docker
def test_failing_run_names_the_step_and_shows_its_last_lines(
    scratch_repo: Path, build_in: BuildRunner
) -> None:
    dockerfile = scratch_repo / "docker/tts/Dockerfile"
    text = dockerfile.read_text().replace(
        "RUN SOURCE_DATE_EPOCH=0 python3 -m compileall -q /app",
        "RUN echo about to fail && echo 'error: the step broke' && exit 7",
    )
    dockerfile.write_text(text)
    with pytest.raises(BuildFailed) as failure:
        build_in(scratch_repo)
    message = str(failure.value)
    assert message.startswith("step [builder 2/2] RUN echo about to fail")
    assert "failed: exit code: 7: error: the step broke" in message
    assert message.endswith(f"(log: {failure.value.log_path})")
    assert failure.value.tail[-2:] == ("about to fail", "error: the step broke")
    assert not failure.value.report.succeeded


@pytest.mark.docker
@pytest.mark.parametrize("damage", ["corrupt", "remove"])
def test_a_damaged_hash_in_the_service_lock_fails_at_install_with_pips_message(
    scratch_repo: Path, build_in: BuildRunner, damage: str
) -> None:
    lock = scratch_repo / "requirements/service.txt"
    text = lock.read_text()
    block = re.search(r"^uvicorn==\S+ \\\n(?:\s+--hash=sha256:\w+(?: \\)?\n)+", text, re.MULTILINE)
    assert block, "uvicorn is not in the service lock"
    if damage == "corrupt":
        new = re.sub(
            r"sha256:(\w)",
            lambda m: "sha256:" + ("0" if m.group(1) != "0" else "1"),
            block.group(0),
        )
    else:
        new = block.group(0).split(" \\\n")[0] + "\n"
    lock.write_text(text.replace(block.group(0), new))
    with pytest.raises(BuildFailed) as failure:
        build_in(scratch_repo)
    message = str(failure.value)
    assert message.startswith("step [layer-uvicorn 2/2] RUN")
    expected = "DO NOT MATCH THE HASHES" if damage == "corrupt" else "Hashes are required"
    assert expected in message, message


@pytest.mark.docker
def test_unreachable_cache_source_and_destination_warn_and_the_build_goes_on(
    scratch_repo: Path, build_in: BuildRunner
) -> None:
    report = build_in(
        scratch_repo,
        cache_from=("127.0.0.1:5999/nowhere:cache",),
        cache_to=("type=registry,ref=127.0.0.1:5999/nowhere:cache",),
    )
    assert report.succeeded
    text = "\n".join(report.warnings)
    assert "importing cache manifest from 127.0.0.1:5999/nowhere:cache" in text
    assert "exporting cache to registry" in text
