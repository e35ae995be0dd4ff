"""BuildKit's machine-readable progress (`--progress=rawjson`) read into steps.

buildx prints one pretty-printed JSON object per solve status, and plain text (errors,
warnings) around them. `RawJsonReader` splits that stream; `ProgressTracker` keeps the
state of every vertex; `plain_line` and `compact_line` turn its events into lines for people.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imagebuild.output import human_bytes, shorten

# "[stage 2/3] RUN ...", or "[2/3] RUN ..." when the Dockerfile has one unnamed stage.
_STEP = re.compile(
    r"^\[(?:(?P<stage>[^\]\s]+) )?(?P<index>\d+)/(?P<count>\d+)\] (?P<instruction>.*)$"
)
_TIME = re.compile(r"^(?P<base>[^.Z+]+)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?$")
MAX_KEPT_LOG_LINES = 400


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 with nanoseconds, as BuildKit writes it."""
    if not value:
        return None
    match = _TIME.match(value)
    if match is None:
        return None
    fraction = (match.group("fraction") or "0")[:6].ljust(6, "0")
    zone = match.group("zone") or "Z"
    zone = "+00:00" if zone == "Z" else zone
    try:
        return datetime.fromisoformat(f"{match.group('base')}.{fraction}{zone}")
    except ValueError:
        return None


@dataclass
class Vertex:
    """One node of the build graph: a Dockerfile step or an internal operation."""

    digest: str
    name: str
    number: int
    started: datetime | None = None
    completed: datetime | None = None
    cached: bool = False
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    partial_logs: dict[int, str] = field(default_factory=dict)
    context_bytes: int = 0
    finished: bool = False

    @property
    def step(self) -> re.Match[str] | None:
        return _STEP.match(self.name)

    @property
    def is_step(self) -> bool:
        """A Dockerfile instruction that can hit or miss the cache.

        FROM resolves an image (it is never "cached"), and internal vertices are
        BuildKit's own work, so neither counts as a step.
        """
        match = self.step
        return match is not None and not match.group("instruction").upper().startswith("FROM ")

    @property
    def is_instruction(self) -> bool:
        """Any `[stage n/m] ...` vertex, FROM included."""
        return self.step is not None

    @property
    def stage(self) -> str | None:
        match = self.step
        if match is None:
            return None
        return match.group("stage") or "default"

    @property
    def seconds(self) -> float:
        if self.started is None or self.completed is None:
            return 0.0
        return max(0.0, (self.completed - self.started).total_seconds())


@dataclass(frozen=True)
class Text:
    """A line of buildx output that is not JSON (errors, warnings, notices)."""

    line: str


@dataclass(frozen=True)
class Status:
    """One decoded solve status object."""

    data: dict[str, Any]


Event = Text | Status


class RawJsonReader:
    """Split buildx's rawjson stream (pretty-printed objects, one after another) into events."""

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._decoder = json.JSONDecoder()

    def feed(self, chunk: str) -> Iterator[Event]:
        for line in chunk.splitlines():
            yield from self._feed_line(line)

    def _feed_line(self, line: str) -> Iterator[Event]:
        if not self._buffer:
            if line.startswith("{"):
                self._buffer.append(line)
                if line.rstrip().endswith("}"):
                    yield from self._flush()
            elif line.strip():
                yield Text(line.rstrip())
            return
        self._buffer.append(line)
        # buildx indents nested lines, so a bare "}" at column 0 closes the object.
        if line.rstrip() == "}":
            yield from self._flush()

    def _flush(self) -> Iterator[Event]:
        text = "\n".join(self._buffer)
        self._buffer = []
        try:
            data, _ = self._decoder.raw_decode(text)
        except json.JSONDecodeError:
            for line in text.splitlines():
                yield Text(line)
            return
        if isinstance(data, dict):
            yield Status(data)

    def close(self) -> Iterator[Event]:
        if self._buffer:
            yield from self._flush()


def _decode(data: str) -> str:
    try:
        return base64.b64decode(data).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return data


class ProgressTracker:
    """The state of every vertex, updated from solve statuses."""

    def __init__(self, on_event: Callable[[str, Vertex, str], None] | None = None) -> None:
        self.vertices: dict[str, Vertex] = {}
        self.texts: list[str] = []
        self.warnings: list[str] = []
        self.first_seen: datetime | None = None
        self.last_seen: datetime | None = None
        self._on_event = on_event

    def _emit(self, kind: str, vertex: Vertex, detail: str = "") -> None:
        if self._on_event is not None:
            self._on_event(kind, vertex, detail)

    def _vertex(self, digest: str, name: str = "") -> Vertex:
        vertex = self.vertices.get(digest)
        if vertex is None:
            vertex = Vertex(digest=digest, name=name, number=len(self.vertices) + 1)
            self.vertices[digest] = vertex
        elif name and not vertex.name:
            vertex.name = name
        return vertex

    def _seen(self, moment: datetime | None) -> None:
        if moment is None:
            return
        if self.first_seen is None or moment < self.first_seen:
            self.first_seen = moment
        if self.last_seen is None or moment > self.last_seen:
            self.last_seen = moment

    def handle(self, event: Event) -> None:
        if isinstance(event, Text):
            self.texts.append(event.line)
            return
        data = event.data
        for item in data.get("vertexes") or []:
            self._handle_vertex(item)
        for item in data.get("statuses") or []:
            self._handle_status(item)
        for item in data.get("logs") or []:
            self._handle_log(item)
        for item in data.get("warnings") or []:
            short = _decode(str(item.get("short", "")))
            self.warnings.append(short.strip())

    def _handle_vertex(self, item: dict[str, Any]) -> None:
        vertex = self._vertex(str(item.get("digest", "")), str(item.get("name", "")))
        started = parse_time(item.get("started"))
        completed = parse_time(item.get("completed"))
        self._seen(started)
        self._seen(completed)
        was_started = vertex.started is not None
        if started is not None and (vertex.started is None or started < vertex.started):
            vertex.started = started
        if item.get("cached"):
            vertex.cached = True
        if not was_started and vertex.started is not None:
            self._emit("started", vertex)
        if item.get("error"):
            vertex.error = str(item["error"])
            vertex.completed = completed or vertex.completed
            if not vertex.finished:
                vertex.finished = True
                self._emit("error", vertex, vertex.error)
            return
        if completed is not None and (vertex.completed is None or completed > vertex.completed):
            vertex.completed = completed
        if completed is not None and not vertex.finished:
            vertex.finished = True
            self._emit("cached" if vertex.cached else "done", vertex)

    def _handle_status(self, item: dict[str, Any]) -> None:
        vertex = self._vertex(str(item.get("vertex", "")))
        name = str(item.get("id", ""))
        current = int(item.get("current") or 0)
        if name.startswith("transferring context"):
            vertex.context_bytes = max(vertex.context_bytes, current)
        if item.get("completed"):
            self._emit(
                "status",
                vertex,
                f"{name} {human_bytes(current, compact=True) if current > 0 else ''} done".strip(),
            )

    def _handle_log(self, item: dict[str, Any]) -> None:
        vertex = self._vertex(str(item.get("vertex", "")))
        # stdout and stderr arrive interleaved: a line is only whole within its own stream.
        stream = int(item.get("stream") or 1)
        text = vertex.partial_logs.get(stream, "") + _decode(str(item.get("data", "")))
        lines = text.split("\n")
        vertex.partial_logs[stream] = lines.pop()
        for raw in lines:
            # A progress bar redraws with \r: what a terminal would show is the last part.
            parts = [part for part in raw.split("\r") if part.strip()]
            line = parts[-1] if parts else ""
            vertex.logs.append(line)
            if len(vertex.logs) > MAX_KEPT_LOG_LINES:
                del vertex.logs[0]
            self._emit("log", vertex, line)

    def steps(self) -> list[Vertex]:
        return [vertex for vertex in self.vertices.values() if vertex.is_step]

    def context_bytes(self) -> int:
        return sum(vertex.context_bytes for vertex in self.vertices.values())

    def failed(self) -> list[Vertex]:
        return [vertex for vertex in self.vertices.values() if vertex.error]


def plain_line(kind: str, vertex: Vertex, detail: str) -> str | None:
    """One line in the style of `--progress=plain`; None for events it does not show."""
    prefix = f"#{vertex.number}"
    if kind == "started":
        return f"{prefix} {vertex.name}"
    if kind == "log":
        return f"{prefix} {detail}"
    if kind == "status":
        return f"{prefix} {detail}"
    if kind == "cached":
        return f"{prefix} CACHED"
    if kind == "done":
        return f"{prefix} DONE {vertex.seconds:.1f}s"
    if kind == "error":
        return f"{prefix} ERROR: {detail}"
    return None


def compact_line(kind: str, vertex: Vertex, detail: str, width: int = 110) -> str | None:
    """One line per Dockerfile step as it starts and ends: what a person watching wants."""
    if not vertex.is_step and kind != "error":
        return None
    name = shorten(vertex.name, width)
    if kind == "cached":
        return f"  cached  {name}"
    if kind == "done":
        return f"  {vertex.seconds:6.1f}s {name}"
    if kind == "error":
        return f"  FAILED  {name}: {detail}"
    if kind == "started" and not vertex.cached:
        return f"  ...     {name}"
    return None


def decode_stream(lines: Iterable[str]) -> Iterator[Event]:
    """Events of a whole recorded rawjson stream."""
    reader = RawJsonReader()
    for line in lines:
        yield from reader.feed(line)
    yield from reader.close()


def utc_now() -> datetime:
    return datetime.now(UTC)
