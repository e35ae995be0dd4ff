"""`inv cache-check`: rebuild with no change and say, step by step, what hit and why not.

The explanation is pure: it compares two build reports, their context manifests and the
Dockerfile, and gives each missed step the most specific reason it can find.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imagebuild.build.flow import build
from imagebuild.engine.report import BuildReport, read_history
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer, shorten
from imagebuild.plan.config import Settings
from imagebuild.plan.context import changed_files
from imagebuild.plan.dockerfile import logical_lines
from imagebuild.plan.request import BuildRequest

UNEXPLAINED = "not in the builder's cache (pruned, evicted, or never built with these inputs)"
_INDEX = re.compile(r"^\[(?:\S+ )?(\d+)/\d+\]")
_COPY = re.compile(r"^(?:COPY|ADD)\s+(?P<args>.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class StepVerdict:
    name: str
    stage: str
    cached: bool
    reason: str
    expected: bool

    def line(self, width: int = 110) -> str:
        name = shorten(self.name, width)
        if self.cached:
            return f"  hit    {name}"
        mark = "miss" if self.expected else "MISS"
        return f"  {mark}   {name}\n           {self.reason}"


def stage_graph(dockerfile_text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """For each stage: the ARG names it declares, and the stages it builds on or copies from."""
    declared: dict[str, set[str]] = {}
    depends: dict[str, set[str]] = {}
    current: str | None = None
    for _, instruction in logical_lines(dockerfile_text):
        keyword, _, rest = instruction.partition(" ")
        word = keyword.upper()
        if word == "FROM":
            parts = [part for part in rest.split() if not part.startswith("--platform")]
            current = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else None
            if current is not None:
                declared[current] = set()
                depends[current] = {parts[0]}
        elif current is None:
            continue
        elif word == "ARG":
            declared[current].add(rest.split("=", 1)[0].strip())
        elif word in ("COPY", "ADD", "RUN"):
            # COPY --from=stage, and RUN --mount=...,from=stage
            depends[current].update(re.findall(r"(?:--|,)from=([A-Za-z0-9_.-]+)", rest))
    return declared, depends


def ancestors(stage: str, depends: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(depends.get(stage, ()))
    while todo:
        parent = todo.pop()
        if parent in depends and parent not in seen:
            seen.add(parent)
            todo.extend(depends[parent])
    return seen


def copy_sources(instruction: str) -> list[str] | None:
    """Context paths a COPY/ADD reads; None when it copies from another stage or image."""
    body = instruction.split("] ", 1)[-1]
    match = _COPY.match(body)
    if match is None:
        return None
    words = match.group("args").split()
    if any(word.startswith("--from=") for word in words):
        return None
    operands = [word for word in words if not word.startswith("--")]
    return [source.rstrip("/") for source in operands[:-1]]


def _touches(sources: Sequence[str], path: str) -> bool:
    for source in sources:
        cleaned = source.lstrip("./").replace("${TORCH_VARIANT}", "*")
        pattern = "^" + re.escape(cleaned).replace(r"\*", "[^/]*") + "(/|$)"
        if cleaned in ("", ".") or re.match(pattern, path):
            return True
    return False


def explain(
    current: BuildReport,
    previous: BuildReport | None,
    current_context: dict[str, str],
    previous_context: dict[str, str] | None,
    dockerfile_text: str,
) -> list[StepVerdict]:
    """Each step of `current`: hit, or miss with the likeliest reason and whether it was expected."""
    previous_names = {step.name for step in previous.steps} if previous else set()
    changes = changed_files(previous_context or {}, current_context) if previous_context else []
    args_before = dict(previous.build_args) if previous else {}
    args_now = dict(current.build_args)
    changed_args = sorted(
        key for key in set(args_before) | set(args_now) if args_before.get(key) != args_now.get(key)
    )
    declared, depends = stage_graph(dockerfile_text)
    unreachable = [
        w
        for w in current.warnings
        if "cache" in w.lower()
        and any(word in w.lower() for word in ("fail", "error", "refused", "not found"))
    ]
    missed_stages: set[str] = set()
    verdicts: list[StepVerdict] = []
    # Dockerfile order: a stage only builds on stages above it, so causes come before effects.
    order = {stage: position for position, stage in enumerate(declared)}

    def position(name: str, stage: str) -> tuple[int, int]:
        match = _INDEX.match(name)
        return order.get(stage, len(order)), int(match.group(1)) if match else 0

    for step in sorted(current.steps, key=lambda step: position(step.name, step.stage)):
        if step.cached:
            verdicts.append(StepVerdict(step.name, step.stage, True, "", True))
            continue
        reason, expected = _reason(
            step.name,
            step.stage,
            previous is not None,
            previous_names,
            changes,
            changed_args,
            declared,
            missed_stages & (ancestors(step.stage, depends) | {step.stage}),
            unreachable,
        )
        missed_stages.add(step.stage)
        verdicts.append(StepVerdict(step.name, step.stage, False, reason, expected))
    return verdicts


def _reason(
    name: str,
    stage: str,
    have_previous: bool,
    previous_names: set[str],
    changes: list[tuple[str, str]],
    changed_args: list[str],
    declared: dict[str, set[str]],
    missed_stages: set[str],
    unreachable: list[str],
) -> tuple[str, bool]:
    if not have_previous:
        return "no earlier build of this target to compare with", True
    if name not in previous_names:
        return "instruction changed (this step was not in the previous build)", True
    sources = copy_sources(name)
    if sources is not None and changes:
        touched = [f"{path} ({what})" for path, what in changes if _touches(sources, path)]
        if touched:
            return f"context file changed: {', '.join(touched[:5])}", True
    stage_changed = sorted(set(changed_args) & declared.get(stage, set()))
    if stage_changed:
        return f"build arg changed: {', '.join(stage_changed)}", True
    if stage in missed_stages:
        return "an earlier step of this stage rebuilt, so every later one does", True
    if missed_stages:
        return f"a stage it builds on rebuilt ({', '.join(sorted(missed_stages))})", True
    if unreachable:
        return f"cache source unreachable: {unreachable[0]}", False
    return UNEXPLAINED, False


def read_context(report: BuildReport) -> dict[str, str] | None:
    """The context manifest kept with a build; None for a build that kept none."""
    path = Path(report.context_manifest_path)
    if not report.context_manifest_path or not path.exists():
        return None
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --- `inv cache-check`: rebuild, then explain ---------------------------------------------


def last_successful(settings: Settings, target: str) -> BuildReport | None:
    for report in reversed(read_history(settings.history_path)):
        if report.succeeded and report.target == target:
            return report
    return None


def _show(verdicts: list[StepVerdict], printer: Printer) -> None:
    for verdict in verdicts:
        printer(verdict.line())


def cache_check(
    settings: Settings, request: BuildRequest, printer: Printer, start_platform: bool = True
) -> list[StepVerdict]:
    """Rebuild with no change; every step must hit. Misses get reasons; unexplained ones fail."""
    dockerfile_text = settings.dockerfile_path.read_text(encoding="utf-8")
    target = request.target or settings.target
    previous = last_successful(settings, target)
    quiet = BuildRequest(**{**request.__dict__, "progress": "quiet"})
    report = build(settings, quiet, lambda _: None, start_platform)
    current_context = read_context(report) or {}
    verdicts = explain(
        report,
        previous,
        current_context,
        read_context(previous) if previous else None,
        dockerfile_text,
    )
    unexpected: list[StepVerdict] = []
    if not report.all_cached:
        unexpected = [
            verdict for verdict in verdicts if not verdict.cached and not verdict.expected
        ]
        printer(
            f"since the last build of {target}: {report.steps_cached} of "
            f"{report.steps_total} steps hit the cache"
        )
        _show(verdicts, printer)
        # Now the inputs are built: an immediate rebuild has nothing left to explain.
        previous, report = report, build(settings, quiet, lambda _: None, start_platform)
        verdicts = explain(
            report, previous, read_context(report) or {}, current_context, dockerfile_text
        )
    printer(
        f"rebuild with no change: {report.steps_cached} of {report.steps_total} steps cached "
        f"in {report.wall_seconds:.1f}s (log: {report.log_path})"
    )
    _show(verdicts, printer)
    unexpected += [verdict for verdict in verdicts if not verdict.cached and not verdict.expected]
    if unexpected:
        raise ImageBuildError(
            f"{len(unexpected)} step(s) missed the cache although nothing they depend on "
            f"changed; first: {unexpected[0].name[:100]}",
            Path(report.log_path),
        )
    if not report.all_cached:
        raise ImageBuildError(
            f"{report.steps_total - report.steps_cached} step(s) rebuilt on a rebuild with no "
            "change",
            Path(report.log_path),
        )
    printer("cache check passed: every step hit the cache")
    return verdicts
