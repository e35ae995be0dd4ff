"""What a build reads and leaves, printed: `inv stages`, `inv history`, `inv context`."""

from __future__ import annotations

from imagebuild.engine.report import read_history
from imagebuild.output import Printer
from imagebuild.plan.config import Settings
from imagebuild.plan.context import ContextManifest
from imagebuild.plan.dockerfile import read_stages


def print_stages(settings: Settings, printer: Printer) -> None:
    for stage in read_stages(settings.dockerfile_path):
        marker = " (default target)" if stage.name == settings.target else ""
        printer(f"{stage.name:<14} FROM {stage.base}  (line {stage.line}){marker}")


def print_history(settings: Settings, last: int, as_json: bool, printer: Printer) -> None:
    reports = read_history(settings.history_path)
    if not reports:
        printer(f"no builds recorded yet in {settings.history_path}")
        return
    for report in reports[-max(1, last) :]:
        if as_json:
            printer(report.to_json())
            continue
        printer(f"{report.started_at}")
        for line in report.summary_lines():
            printer(f"  {line}")


def print_context(settings: Settings, as_json: bool, printer: Printer) -> None:
    manifest = ContextManifest.of(settings.root)
    if as_json:
        printer(manifest.to_json())
        return
    for item in manifest.files:
        printer(f"{item.size:>10,d}  {item.path}")
    printer(
        f"{len(manifest.files)} files, {manifest.total_bytes:,d} bytes would be sent "
        f"(.dockerignore is an allow-list)"
    )
