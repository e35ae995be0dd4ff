"""BuildKit's rawjson progress read into a report, from recorded streams of real builds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagebuild.engine.progress import (
    ProgressTracker,
    RawJsonReader,
    Status,
    Text,
    compact_line,
    decode_stream,
    parse_time,
    plain_line,
)
from imagebuild.engine.report import (
    BuildReport,
    StepRecord,
    append_history,
    failure_summary,
    is_snapshot_race,
    merge_rerun,
    read_history,
    step_records,
)
from imagebuild.engine.report import report_of as report_of_run
from imagebuild.plan.config import HostPackageSettings, Settings
from imagebuild.plan.dockerfile import parse_stages
from imagebuild.plan.plan import make_plan
from imagebuild.plan.request import BuildRequest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[4]
NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
PLAN = make_plan(
    Settings.from_mapping({}, ROOT),
    HostPackageSettings(index_url="https://user:secret@mirror.example/simple"),
    BuildRequest(),
    parse_stages((ROOT / "docker/tts/Dockerfile").read_text()),
    NOW,
)


def track(name: str) -> ProgressTracker:
    tracker = ProgressTracker()
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    for event in decode_stream(lines):
        tracker.handle(event)
    return tracker


def report_of(tracker: ProgressTracker) -> BuildReport:
    return BuildReport(
        target="runtime",
        tags=("t:1",),
        cache_mode="inline",
        started_at="2026-11-21T00:00:00+00:00",
        wall_seconds=1.0,
        succeeded=True,
        steps=step_records(tracker.steps()),
        context_bytes=tracker.context_bytes(),
        log_path="x.log",
    )


def test_reader_splits_pretty_printed_objects_and_text() -> None:
    reader = RawJsonReader()
    chunks = [
        '{\n  "vertexes": [\n    {"digest": "d"}\n  ]\n}\n',
        "ERROR: boom\n",
        '{"logs": []}\n',
    ]
    events = [event for chunk in chunks for event in reader.feed(chunk)]
    assert isinstance(events[0], Status) and events[0].data["vertexes"][0]["digest"] == "d"
    assert events[1] == Text("ERROR: boom")
    assert isinstance(events[2], Status)


def test_times_with_nanoseconds_parse() -> None:
    moment = parse_time("2026-11-21T07:41:20.581993678Z")
    assert moment is not None and moment.microsecond == 581993
    assert parse_time(None) is None and parse_time("garbage") is None


def test_cold_build_counts_steps_and_nothing_cached() -> None:
    tracker = track("cold-build.rawjson")
    report = report_of(tracker)
    assert report.steps_total == 10
    assert report.steps_cached == 0
    stages = report.stage_seconds()
    assert set(stages) == {"base", "torch", "dependencies", "builder", "runtime"}
    assert stages["torch"] > 10
    assert report.slowest(1)[0].name.startswith("[torch 2/2] RUN")
    assert report.context_bytes > 0


def test_rebuild_without_change_is_every_step_cached() -> None:
    report = report_of(track("cached-build.rawjson"))
    assert report.steps_total == 10
    assert report.all_cached
    assert "every step was cached" in "\n".join(report.summary_lines())


def test_failed_run_names_the_step_and_keeps_its_last_lines() -> None:
    tracker = track("failed-run.rawjson")
    message, tail = failure_summary(tracker)
    assert message.startswith("step [2/2] RUN echo preparing")
    assert message.endswith("failed: exit code: 3")
    assert tail[-3:] == ("preparing", "line two of output", "boom")


def test_a_failure_beside_cancelled_parallel_stages_names_the_step_that_failed() -> None:
    # A damaged hash in the service lock: the dependencies stage fails, torch is cancelled.
    message, _ = failure_summary(track("parallel-failure.rawjson"))
    assert message.startswith("step [dependencies 3/3] RUN"), message
    assert "DO NOT MATCH THE HASHES" in message
    assert "context canceled" not in message


def test_syntax_error_names_the_line() -> None:
    message, tail = failure_summary(track("syntax-error.rawjson"))
    assert message == (
        "Dockerfile syntax error: dockerfile parse error on line 2: "
        "unknown instruction: RUNN (did you mean RUN?)"
    )
    assert tail == ()


def test_renderers_show_steps_once() -> None:
    shown: list[str] = []

    def on_event(kind: str, vertex: object, detail: str) -> None:
        line = compact_line(kind, vertex, detail)  # type: ignore[arg-type]
        if line:
            shown.append(line)

    tracker = ProgressTracker(on_event=on_event)
    for event in decode_stream((FIXTURES / "cached-build.rawjson").read_text().splitlines()):
        tracker.handle(event)
    cached = [line for line in shown if line.startswith("  cached")]
    assert len(cached) == 10 and len(set(cached)) == 10
    vertex = next(iter(tracker.vertices.values()))
    assert (plain_line("done", vertex, "") or "").startswith(f"#{vertex.number} DONE")


def test_history_round_trips_as_json_lines(tmp_path: Path) -> None:
    report = report_of(track("cached-build.rawjson"))
    history = tmp_path / "history.jsonl"
    append_history(history, report)
    append_history(history, report)
    lines = history.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["steps_cached"] == 10
    assert read_history(history) == [report, report]


def test_only_the_engines_unpack_race_is_worth_a_rerun() -> None:
    # The message the integration tests met on CI (Engine 26, containerd image store).
    race = (
        'exporting to image failed: failed to prepare extraction snapshot "extract-867862751-1PBP '
        'sha256:99dccd1d713ab6380c5b23392784311d01501c3bb4d1e079939823b0f00f8f65": parent '
        "snapshot sha256:041906ac98d1ec8f84b7f9a7fe7b2efdc949b957921f836f2c6fdeb18653a0a7 "
        "does not exist: not found"
    )
    assert is_snapshot_race(race)
    # A real failure of the build must fail at once, not run twice.
    assert not is_snapshot_race(
        "step [torch 2/2] RUN pip install failed: exit code: 1: ERROR: file does not exist"
    )
    assert not is_snapshot_race('failed to compute cache key: "/requirements" not found')
    assert not is_snapshot_race(None)
    assert not is_snapshot_race("")


def test_a_rerun_after_the_race_reports_what_the_first_attempt_built() -> None:
    def report(started: str, seconds: float, cached: bool, **extra: Any) -> BuildReport:
        steps = (
            StepRecord("[base 1/1] FROM base", "base", True, 0.0),
            StepRecord("[torch 2/2] RUN pip install", "torch", cached, 0.0 if cached else 40.0),
            StepRecord("[runtime 1/1] COPY src /app", "runtime", cached, 0.0 if cached else 0.2),
        )
        return BuildReport(
            target="runtime",
            tags=("t:1",),
            cache_mode="inline",
            started_at=started,
            wall_seconds=seconds,
            steps=steps,
            context_bytes=10,
            log_path="run.log",
            **extra,
        )

    first = report(
        "2026-11-21T10:00:00+00:00",
        50.0,
        cached=False,
        succeeded=False,
        error="exporting to image failed",
        downloaded_bytes=1000,
    )
    rerun = report("2026-11-21T10:00:51+00:00", 2.0, cached=True, succeeded=True)
    merged = merge_rerun(first, rerun, "ran again")

    # The steps the first attempt ran stay "run": the rerun only found them in the cache.
    assert merged.rebuilt_step_names() == [
        "[torch 2/2] RUN pip install",
        "[runtime 1/1] COPY src /app",
    ]
    assert merged.steps_cached == 1
    assert merged.succeeded and merged.error is None
    assert merged.wall_seconds == 52.0 and merged.downloaded_bytes == 1000
    assert merged.started_at == first.started_at
    assert merged.warnings == ("ran again",)


def test_the_report_of_a_run_is_made_from_its_plan_and_its_progress() -> None:
    report, tail = report_of_run(PLAN, track("cold-build.rawjson"), NOW, 12.5, None)
    assert report.succeeded and report.error is None and tail == ()
    assert (report.target, report.tags, report.cache_mode) == (
        PLAN.target,
        PLAN.tags,
        PLAN.cache_mode,
    )
    assert (report.steps_total, report.steps_cached, report.wall_seconds) == (10, 0, 12.5)
    assert report.started_at == "2026-11-21T08:00:00+00:00"
    assert report.log_path == str(PLAN.log_path)
    assert dict(report.build_args)["PIP_INDEX_URL"] == "https://***@mirror.example/simple"


def test_a_failed_run_is_reported_by_its_step_or_else_by_the_engines_line() -> None:
    failed, tail = report_of_run(PLAN, track("failed-run.rawjson"), NOW, 1.0, "exit status 1")
    assert not failed.succeeded
    assert (failed.error or "").startswith("step [2/2] RUN echo preparing")
    assert tail[-1] == "boom"
    silent, _ = report_of_run(PLAN, ProgressTracker(), NOW, 0.1, "Cannot connect to the daemon")
    assert (silent.succeeded, silent.error) == (False, "Cannot connect to the daemon")
