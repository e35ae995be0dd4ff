"""Where a build's progress goes: the terminal (by progress mode), the plain log and the raw
rawjson stream; the log opens with the buildx call as a command line."""

from __future__ import annotations

from imagebuild.engine.progress import (
    ProgressTracker,
    RawJsonReader,
    Vertex,
    compact_line,
    plain_line,
)
from imagebuild.output import Printer
from imagebuild.plan.plan import BuildPlan


class BuildLog:
    """The progress of one buildx call: shown, written to the plan's logs, and tracked."""

    def __init__(self, plan: BuildPlan, printer: Printer) -> None:
        self.plan = plan
        self.printer = printer
        plan.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = plan.log_path.open("w", encoding="utf-8")
        self.raw = plan.raw_log_path.open("w", encoding="utf-8")
        self.log.write(f"# {plan.describe()}\n")
        self.tracker = ProgressTracker(on_event=self._on_event)
        self.reader = RawJsonReader()

    def _on_event(self, kind: str, vertex: Vertex, detail: str) -> None:
        line = plain_line(kind, vertex, detail)
        if line is not None:
            self.log.write(line + "\n")
        shown: str | None = None
        if self.plan.progress == "plain":
            shown = line
        elif self.plan.progress in ("tty", "auto"):
            shown = compact_line(kind, vertex, detail)
        if shown is not None:
            self.printer(shown)

    def feed(self, chunk: str) -> None:
        self.raw.write(chunk if chunk.endswith("\n") else chunk + "\n")
        for event in self.reader.feed(chunk):
            self.tracker.handle(event)
            text = getattr(event, "line", None)
            if text is not None:
                self.log.write(text + "\n")
                if self.plan.progress != "quiet":
                    self.printer(text)

    def close(self) -> None:
        for event in self.reader.close():
            self.tracker.handle(event)
        self.log.close()
        self.raw.close()
