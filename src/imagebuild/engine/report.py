"""The build report: what ran, what was cached, how long each stage took, what came out."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from imagebuild.engine.progress import ProgressTracker, Vertex
from imagebuild.output import human_bytes, shorten
from imagebuild.plan.config import redact_url
from imagebuild.plan.plan import BuildPlan

SLOWEST_SHOWN = 5


@dataclass(frozen=True)
class StepRecord:
    """One Dockerfile step of one build."""

    name: str
    stage: str
    cached: bool
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class BuildReport:
    """A build, summed up: kept as one JSON line in build-logs/history.jsonl."""

    target: str
    tags: tuple[str, ...]
    cache_mode: str
    started_at: str
    wall_seconds: float
    succeeded: bool
    steps: tuple[StepRecord, ...]
    context_bytes: int
    log_path: str
    image_digest: str | None = None
    image_id: str | None = None
    image_size: int | None = None
    error: str | None = None
    warnings: tuple[str, ...] = field(default=())
    build_args: tuple[tuple[str, str], ...] = field(default=())
    # What pip reported downloading (a cache-mount hit downloads nothing).
    downloaded_bytes: int = 0
    # Empty in reports written before the manifest path was recorded.
    context_manifest_path: str = ""

    @property
    def steps_total(self) -> int:
        return len(self.steps)

    @property
    def steps_cached(self) -> int:
        return sum(1 for step in self.steps if step.cached)

    @property
    def all_cached(self) -> bool:
        return self.steps_total > 0 and self.steps_cached == self.steps_total

    def stage_seconds(self) -> dict[str, float]:
        """Seconds of work per stage (steps overlap across stages, so these can exceed wall time)."""
        totals: dict[str, float] = {}
        for step in self.steps:
            totals[step.stage] = round(totals.get(step.stage, 0.0) + step.seconds, 3)
        return totals

    def slowest(self, count: int = SLOWEST_SHOWN) -> list[StepRecord]:
        ran = [step for step in self.steps if not step.cached and step.seconds > 0]
        return sorted(ran, key=lambda step: step.seconds, reverse=True)[:count]

    def cached_step_names(self) -> list[str]:
        return [step.name for step in self.steps if step.cached]

    def rebuilt_step_names(self) -> list[str]:
        return [step.name for step in self.steps if not step.cached]

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["steps_total"] = self.steps_total
        data["steps_cached"] = self.steps_cached
        data["stage_seconds"] = self.stage_seconds()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BuildReport:
        data = json.loads(text)
        for derived in ("steps_total", "steps_cached", "stage_seconds"):
            data.pop(derived, None)
        data["steps"] = tuple(StepRecord(**step) for step in data["steps"])
        data["tags"] = tuple(data["tags"])
        data["warnings"] = tuple(data.get("warnings", ()))
        data["build_args"] = tuple(tuple(pair) for pair in data.get("build_args", ()))
        return cls(**data)

    def summary_lines(self) -> list[str]:
        """The short table printed after every build."""
        state = "built" if self.succeeded else "FAILED"
        lines = [
            f"{state} target {self.target} in {self.wall_seconds:.1f}s "
            f"({self.cache_mode} cache): {self.steps_cached} of {self.steps_total} steps cached",
        ]
        if self.all_cached:
            lines.append("every step was cached")
        stages = self.stage_seconds()
        if stages and not self.all_cached:
            # A stage per package layer: the table lists the stages that ran, and counts the rest.
            lines.append("  stage            work    steps  cached")
            whole = 0
            for stage, seconds in stages.items():
                stage_steps = [step for step in self.steps if step.stage == stage]
                cached = sum(1 for step in stage_steps if step.cached)
                if cached == len(stage_steps):
                    whole += 1
                    continue
                lines.append(f"  {stage:<15} {seconds:6.1f}s {len(stage_steps):6d} {cached:7d}")
            if whole:
                lines.append(f"  ({whole} more stages, every step cached)")
        slowest = self.slowest()
        if slowest:
            lines.append("  slowest steps:")
            for step in slowest:
                lines.append(f"    {step.seconds:6.1f}s {shorten(step.name, 90)}")
        lines.append(f"  context sent: {human_bytes(self.context_bytes)}")
        if self.downloaded_bytes:
            lines.append(f"  downloaded by pip: {human_bytes(self.downloaded_bytes)}")
        if self.image_digest or self.image_size:
            size = human_bytes(self.image_size) if self.image_size else "unknown size"
            lines.append(
                f"  image: {', '.join(self.tags)} {self.image_digest or ''} {size}".rstrip()
            )
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        lines.append(f"  log: {self.log_path}")
        return lines


_DOWNLOAD = re.compile(r"Downloading \S+ \(([\d.]+) (kB|MB|GB|bytes)\)")
_UNITS = {"bytes": 1, "kB": 1_000, "MB": 1_000_000, "GB": 1_000_000_000}


def downloaded_bytes(vertices: Sequence[Vertex]) -> int:
    """Bytes pip said it downloaded, summed over the steps' output."""
    total = 0.0
    for vertex in vertices:
        for line in vertex.logs:
            for amount, unit in _DOWNLOAD.findall(line):
                total += float(amount) * _UNITS[unit]
    return int(total)


def step_records(vertices: Sequence[Vertex]) -> tuple[StepRecord, ...]:
    return tuple(
        StepRecord(
            name=vertex.name,
            stage=vertex.stage or "",
            cached=vertex.cached,
            seconds=round(vertex.seconds, 3),
            error=vertex.error,
        )
        for vertex in vertices
    )


def report_of(
    plan: BuildPlan,
    tracker: ProgressTracker,
    started_at: datetime,
    wall_seconds: float,
    error: str | None,
) -> tuple[BuildReport, tuple[str, ...]]:
    """A build's report from its plan and progress; `error`: the engine's one line when the
    call failed. With it, the failing step's last lines (empty for a success)."""
    warnings = tuple(
        line.removeprefix("WARNING: ") for line in tracker.texts if line.startswith("WARNING")
    ) + tuple(tracker.warnings)
    # An internal vertex that failed in a build that went on: an unreachable cache source
    # (import) or destination (export with ignore-error). Worth a warning, not a failure.
    warnings += tuple(
        f"{vertex.name}: {vertex.error}"
        for vertex in tracker.failed()
        if not vertex.is_instruction and error is None
    )
    report = BuildReport(
        target=plan.target,
        tags=plan.tags,
        cache_mode=plan.cache_mode,
        started_at=started_at.isoformat(timespec="seconds"),
        wall_seconds=wall_seconds,
        succeeded=error is None,
        steps=step_records(tracker.steps()),
        context_bytes=tracker.context_bytes(),
        log_path=str(plan.log_path),
        context_manifest_path=str(plan.context_manifest_path),
        warnings=warnings,
        build_args=tuple((key, redact_url(value)) for key, value in plan.build_args),
        downloaded_bytes=downloaded_bytes(tracker.steps()),
    )
    if error is None:
        return report, ()
    message, tail = failure_summary(tracker)
    if not tracker.vertices and not tracker.texts:
        message = error
    return replace(report, error=message), tail


def failure_summary(tracker: ProgressTracker) -> tuple[str, tuple[str, ...]]:
    """One line saying what failed, and the last lines of the failing step's output."""
    errors = [line.removeprefix("ERROR: ") for line in tracker.texts if line.startswith("ERROR")]
    # Parallel stages: one step fails and BuildKit cancels the others ("context canceled").
    failed_steps = sorted(
        (vertex for vertex in tracker.failed() if vertex.is_step),
        key=lambda vertex: "context canceled" in (vertex.error or ""),
    )
    if failed_steps:
        vertex = failed_steps[0]
        tail = tuple(line for line in vertex.logs if line.strip())[-12:]
        reason = _step_error(vertex.error or "")
        # The tool's own error line (pip's "ERROR: ...") says more than an exit code.
        said = [line.strip() for line in tail if line.strip().lower().startswith("error")]
        if said:
            reason = f"{reason}: {shorten(said[0], 200)}"
        return f"step {shorten(vertex.name, 120)} failed: {reason}", tail
    for error in errors:
        if "dockerfile parse error" in error or "failed to parse" in error:
            return f"Dockerfile syntax error: {error.split('failed to solve: ')[-1]}", ()
    failed = tracker.failed()
    if failed:
        return f"{failed[0].name} failed: {failed[0].error}", ()
    if errors:
        return errors[-1], ()
    if tracker.texts:
        return tracker.texts[-1], ()
    return "the build failed without an error message", ()


def _step_error(error: str) -> str:
    # BuildKit repeats the whole command in the error; the exit code is what tells.
    marker = "did not complete successfully: "
    if marker in error:
        return error.split(marker, 1)[1]
    return shorten(error, 200)


# BuildKit older than the Engine 26 one can lose a layer's parent snapshot to containerd's
# garbage collector while it unpacks the exported image (moby/buildkit#6521, fixed upstream
# in 2026); nothing in the build is wrong, and the same build run again succeeds.
_SNAPSHOT_RACE = re.compile(r"extraction snapshot .*parent snapshot \S+ does not exist")


def is_snapshot_race(error: str | None) -> bool:
    """Whether a failed build failed only by the engine's unpack race, and is worth a rerun."""
    return error is not None and _SNAPSHOT_RACE.search(error) is not None


def merge_rerun(first: BuildReport, rerun: BuildReport, note: str) -> BuildReport:
    """One report for a build that ran twice because the first export failed.

    The rerun finds every step in the cache the first attempt filled, so a step the first
    attempt ran counts as run, not cached; time and downloads are those of both attempts.
    """
    ran = {step.name: step for step in first.steps if not step.cached and step.error is None}
    steps = tuple(ran.get(step.name, step) if step.cached else step for step in rerun.steps)
    return replace(
        rerun,
        started_at=first.started_at,
        wall_seconds=round(first.wall_seconds + rerun.wall_seconds, 3),
        steps=steps,
        downloaded_bytes=first.downloaded_bytes + rerun.downloaded_bytes,
        warnings=(*rerun.warnings, note),
    )


def append_history(history: Path, report: BuildReport) -> None:
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a", encoding="utf-8") as handle:
        handle.write(report.to_json() + "\n")


def read_history(history: Path) -> list[BuildReport]:
    if not history.exists():
        return []
    return [
        BuildReport.from_json(line)
        for line in history.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
