"""Real builds of the service image: what a rebuild caches, and what a change rebuilds."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .conftest import BuildRunner, steps

pytestmark = pytest.mark.docker


def test_rebuild_without_change_caches_every_step(
    scratch_repo: Path, build_in: BuildRunner
) -> None:
    first = build_in(scratch_repo)
    assert first.succeeded and first.steps_total >= 8
    second = build_in(scratch_repo)
    assert second.all_cached, second.rebuilt_step_names()
    assert (
        f"{second.steps_cached} of {second.steps_total} steps cached" in second.summary_lines()[0]
    )
    history = (scratch_repo / "build-logs" / "history.jsonl").read_text().splitlines()
    assert len(history) == 2
    assert Path(second.log_path).is_file()


def test_app_change_rebuilds_only_the_code_layers(
    scratch_repo: Path, build_in: BuildRunner
) -> None:
    build_in(scratch_repo)
    source = scratch_repo / "src/audiobook_tts/app.py"
    # A change never built before (the builder cache is content-addressed and outlives tests).
    source.write_text(source.read_text() + f"\n# a change of application code {uuid.uuid4()}\n")
    report = build_in(scratch_repo)
    assert report.succeeded
    for stage in ("base", "torch", "dependencies"):
        assert all(cached for _, cached in steps(report, stage)), steps(report, stage)
    builder = dict(steps(report, "builder"))
    assert not any(builder.values()), builder
    runtime = dict(steps(report, "runtime"))
    # Each COPY --link is two steps: the copy, and the LINK that joins it to the image.
    script = [cached for name, cached in runtime.items() if "COPY --link docker/tts" in name]
    assert script and all(script), runtime
    linked_code = [cached for name, cached in runtime.items() if "--from=builder" in name]
    assert linked_code and not any(linked_code), runtime
    # The log says so too: the torch install's vertex is followed by CACHED.
    log = Path(report.log_path).read_text().splitlines()
    torch_vertex = next(line.split()[0] for line in log if "[torch 2/2] RUN" in line)
    assert f"{torch_vertex} CACHED" in log


def test_a_file_the_image_does_not_need_changes_no_step(
    scratch_repo: Path, build_in: BuildRunner
) -> None:
    build_in(scratch_repo)
    (scratch_repo / "tests/unit/imagebuild/plan/test_plan.py").write_text("# edited\n")
    (scratch_repo / "README.md").write_text("edited\n")
    (scratch_repo / "build-logs" / "noise.log").write_text("noise\n")
    report = build_in(scratch_repo)
    assert report.all_cached, report.rebuilt_step_names()


def test_a_dependency_change_keeps_torch_and_fetches_no_wheel_twice(
    scratch_repo: Path, build_in: BuildRunner
) -> None:
    lock = scratch_repo / "requirements/service.txt"
    original = lock.read_text()
    # Two changes never built before: the first fills the wheel cache, the second reuses it.
    lock.write_text(original + f"# a lock change {uuid.uuid4()}\n")
    assert build_in(scratch_repo).succeeded
    lock.write_text(original + f"# a lock change {uuid.uuid4()}\n")
    report = build_in(scratch_repo)
    assert report.succeeded
    for stage in ("base", "torch", "builder"):
        assert all(cached for _, cached in steps(report, stage)), steps(report, stage)
    assert not any(cached for _, cached in steps(report, "dependencies"))
    assert report.downloaded_bytes == 0
    log = Path(report.log_path).read_text()
    assert "File was already downloaded /root/.cache/pip/wheels/numpy-" in log
    assert "Downloading " not in log
