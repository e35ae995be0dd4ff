"""Real builds of the service image: what a rebuild caches, and what a change rebuilds."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from python_on_whales import DockerClient

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
    for stage in ("base", "layer-torch", "layer-numpy", "checked"):
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
    torch_vertex = next(line.split()[0] for line in log if "[layer-torch 2/2] RUN" in line)
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


def bumped_block(package: str, version: str, folder: Path) -> str:
    """`package==version` with the hash of its wheel, as pip-compile writes a lock entry."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(folder),
            f"{package}=={version}",
        ],
        check=True,
    )
    (wheel,) = folder.glob(f"{package}-{version}-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"{package}=={version} \\\n    --hash=sha256:{digest}\n"


def test_bumping_one_package_rebuilds_its_own_layer_and_no_other(
    scratch_repo: Path, build_in: BuildRunner, docker_client: DockerClient, tmp_path: Path
) -> None:
    """idna bumped in the service lock: only its layer stage installs, the runtime gets one
    new layer, and every other layer of the image keeps its digest."""
    before = build_in(scratch_repo)
    lock = scratch_repo / "requirements/service.txt"
    text = lock.read_text()
    start = text.index("\nidna==") + 1
    end = text.index("    # via", start)
    lock.write_text(text[:start] + bumped_block("idna", "3.7", tmp_path / "wheels") + text[end:])
    after = build_in(scratch_repo)
    ran = {
        step.stage for step in after.steps if not step.cached and step.stage.startswith("layer-")
    }
    # No other layer installs. idna's own may come from the builder's cache, which outlives
    # tests: an engine that ran this test before has this very bump's layer (the image's
    # layers below show the bump landed, in one layer).
    assert ran <= {"layer-idna"}, after.rebuilt_step_names()
    for stage in ("base", "installer", "builder", "layer-torch", "layer-numpy"):
        assert all(cached for _, cached in steps(after, stage)), steps(after, stage)
    old = docker_client.image.inspect(before.tags[0]).root_fs.layers or []
    new = docker_client.image.inspect(after.tags[0]).root_fs.layers or []
    assert len(old) == len(new)
    changed = [index for index, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert len(changed) == 1, changed  # the idna layer; the pip check's verdict is the same
    listing = docker_client.run(
        after.tags[0], ["/opt/venv/image-layers/idna.txt"], entrypoint="cat", remove=True
    )
    assert str(listing).strip() == "idna==3.7"
