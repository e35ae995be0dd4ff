"""Running a plan on an engine: the buildx call, its log, and the report made from what the
adapter returned; once more when only the engine's unpack race failed it."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from imagebuild.engine.build_log import BuildLog
from imagebuild.engine.docker import DockerEngine
from imagebuild.engine.progress import utc_now
from imagebuild.engine.report import BuildReport, is_snapshot_race, merge_rerun, report_of
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.plan import BuildPlan


class BuildFailed(ImageBuildError):
    """A build that ran and failed; carries its report and the failing step's last lines."""

    def __init__(self, report: BuildReport, tail: Sequence[str]) -> None:
        super().__init__(report.error or "the build failed", Path(report.log_path))
        self.report = report
        self.tail = tuple(tail)


def run_build(
    engine: DockerEngine, plan: BuildPlan, printer: Printer, inspect_after: bool = True
) -> BuildReport:
    """Run the plan's buildx call and return its report; once more if the engine's unpack
    race (not the build) failed it, keeping the first attempt's log and what it built."""
    try:
        return _run_once(engine, plan, printer, inspect_after)
    except BuildFailed as failed:
        if not is_snapshot_race(failed.report.error):
            raise
        kept = plan.log_path.with_name(plan.log_path.stem + ".attempt1.log")
        if plan.log_path.exists():
            plan.log_path.replace(kept)
        note = (
            "the engine lost a layer snapshot while unpacking the image (a known BuildKit "
            f"race, moby/buildkit#6521), so the build ran again; first attempt's log: {kept}"
        )
        printer(f"warning: {note}")
        first = failed.report
    return merge_rerun(first, _run_once(engine, plan, printer, inspect_after), note)


def _run_once(
    engine: DockerEngine, plan: BuildPlan, printer: Printer, inspect_after: bool
) -> BuildReport:
    started_at = utc_now()
    started = time.monotonic()
    log = BuildLog(plan, printer)
    try:
        error = engine.buildx(plan, log.feed)
    finally:
        log.close()
    wall = round(time.monotonic() - started, 3)
    report, tail = report_of(plan, log.tracker, started_at, wall, error)
    if not report.succeeded:
        raise BuildFailed(report, tail)
    if plan.oci_archive is not None:
        _load_and_push_archive(engine, plan, printer)
    return _with_image(engine, plan, report) if inspect_after else report


def _load_and_push_archive(engine: DockerEngine, plan: BuildPlan, printer: Printer) -> None:
    """A reproducible build's OCI archive: into the engine, tagged, and pushed if asked."""
    assert plan.oci_archive is not None
    metadata = json.loads(plan.metadata_path.read_text(encoding="utf-8"))
    digest = str(metadata["containerimage.digest"])
    if plan.load or plan.push:
        engine.load_archive(plan.oci_archive, digest, plan.tags, plan.log_path)
        for tag in plan.tags if plan.push else ():
            engine.push(tag, plan.log_path)
            printer(f"pushed {tag}")
        plan.oci_archive.unlink()
    else:
        printer(f"reproducible image archive: {plan.oci_archive}")


def _with_image(engine: DockerEngine, plan: BuildPlan, report: BuildReport) -> BuildReport:
    """The report with what came out: digest and id from the metadata file, the size (and
    the id, where the metadata lacks it) from the engine's store."""
    digest: str | None = None
    image_id: str | None = None
    if plan.metadata_path.exists():
        with contextlib.suppress(ValueError, OSError):
            metadata = json.loads(plan.metadata_path.read_text(encoding="utf-8"))
            digest = metadata.get("containerimage.digest")
            image_id = metadata.get("containerimage.config.digest")
    size: int | None = None
    if (plan.load or plan.oci_archive is not None) and plan.tags:
        stored = engine.stored_image(plan.tags[0])
        if stored is not None:
            size = stored.size
            image_id = image_id or stored.image_id
    return replace(report, image_digest=digest, image_id=image_id, image_size=size)
