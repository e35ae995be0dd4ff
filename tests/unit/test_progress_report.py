"""BuildKit's rawjson progress read into a report, from recorded streams of real builds."""

from __future__ import annotations

import json
from pathlib import Path

from imagebuild.progress import (
    ProgressTracker,
    RawJsonReader,
    Status,
    Text,
    compact_line,
    decode_stream,
    parse_time,
    plain_line,
)
from imagebuild.report import (
    BuildReport,
    append_history,
    failure_summary,
    read_history,
    step_records,
)

FIXTURES = Path(__file__).parent / "fixtures"


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
    assert plain_line("done", vertex, "").startswith(f"#{vertex.number} DONE")


def test_history_round_trips_as_json_lines(tmp_path: Path) -> None:
    report = report_of(track("cached-build.rawjson"))
    history = tmp_path / "history.jsonl"
    append_history(history, report)
    append_history(history, report)
    lines = history.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["steps_cached"] == 10
    assert read_history(history) == [report, report]
