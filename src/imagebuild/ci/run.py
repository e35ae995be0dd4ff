"""`inv ci`: the one sequence every CI runs (.ci/run, buildspec.yml, the GitHub workflow).

Build with the CI's cache, push, smoke-test the image, and write the digest and a build
summary where the CI shows it: $GITHUB_STEP_SUMMARY on GitHub, the build log (standard
output) on CodeBuild and everywhere else, and build-logs/ci-summary.md always.

The cache (`ci.cache` in invoke.yaml, INVOKE_CI_CACHE, `inv ci --cache`): `registry` for a
runner that starts cold (the cache in the registry, tag buildcache), `inline` for an engine
that outlives the build and keeps its own cache (CodeBuild's Docker Server): no
docker-container builder, which would not run on that server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagebuild.build.flow import build
from imagebuild.engine.report import BuildReport
from imagebuild.errors import ImageBuildError, UsageError
from imagebuild.output import Printer, human_bytes
from imagebuild.plan.config import Settings
from imagebuild.plan.request import BuildRequest

CI_CACHES = ("registry", "inline")


@dataclass(frozen=True)
class CiOptions:
    """What `inv ci` was asked: its cache mode (one of CI_CACHES) and whether to smoke-test."""

    cache: str = "registry"
    smoke: bool = True

    @classmethod
    def from_config(cls, section: Mapping[str, Any], cache_flag: str, smoke: bool) -> CiOptions:
        """The `ci` section of the Invoke config, a non-empty --cache flag over it."""
        unknown = sorted(set(section) - {"cache"})
        if unknown:
            raise UsageError(f"unknown ci setting(s) {', '.join(unknown)}; known: cache")
        cache = cache_flag or str(section.get("cache", "registry"))
        if cache not in CI_CACHES:
            raise UsageError(
                f"ci cache {cache!r} is not one of {', '.join(CI_CACHES)} "
                "(INVOKE_CI_CACHE, ci.cache in invoke.yaml, or inv ci --cache)"
            )
        return cls(cache=cache, smoke=smoke)


@dataclass(frozen=True)
class CiRun:
    """Where this CI run comes from: the commit and the CI system, read from its variables."""

    commit: str
    system: str
    build_id: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], root: Path) -> CiRun:
        if environ.get("CODEBUILD_BUILD_ID"):
            return cls(
                environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION", "") or _git_head(root),
                "codebuild",
                environ["CODEBUILD_BUILD_ID"],
            )
        if environ.get("GITHUB_ACTIONS") == "true":
            run_id = f"{environ.get('GITHUB_RUN_ID', '')}/{environ.get('GITHUB_RUN_ATTEMPT', '')}"
            return cls(environ.get("GITHUB_SHA", "") or _git_head(root), "github", run_id)
        return cls(_git_head(root), "local", "")

    def tags(self, settings: Settings) -> tuple[str, ...]:
        """The moving tag, and one per commit that never moves."""
        repository = f"{settings.registry}/{settings.image}"
        latest = f"{repository}:latest"
        return (latest, f"{repository}:{self.commit[:12]}") if self.commit else (latest,)


def _git_head(root: Path) -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()
    return ""


def summary_markdown(report: BuildReport, run: CiRun, smoke: str, notes: tuple[str, ...]) -> str:
    """The CI summary: what was built, from which commit, how much came from the cache."""
    lines = [
        "## audiobook-tts image",
        "",
        "| | |",
        "| --- | --- |",
        f"| commit | `{run.commit or 'unknown'}` |",
        f"| digest | `{report.image_digest or 'unknown'}` |",
        f"| tags | {', '.join(f'`{tag}`' for tag in report.tags)} |",
        f"| cache | {report.cache_mode}: {report.steps_cached} of {report.steps_total} steps "
        "cached |",
        f"| build time | {report.wall_seconds:.1f} s |",
        f"| downloaded by pip | {human_bytes(report.downloaded_bytes)} |",
        f"| smoke test | {smoke} |",
        f"| build log | `{report.log_path}` |",
    ]
    lines += ["", *(f"- {note}" for note in notes)] if notes else []
    lines += ["", *(f"- warning: {warning}" for warning in report.warnings)]
    return "\n".join(lines).rstrip() + "\n"


def _nox() -> str:
    """The nox beside the running Python (the project's virtual environment), else PATH's."""
    beside = Path(sys.executable).with_name("nox")
    return str(beside) if beside.exists() else shutil.which("nox") or "nox"


def run_smoke(root: Path, printer: Printer) -> bool:
    printer("smoke test: nox -s smoke -- --require-docker")
    result = subprocess.run(
        [_nox(), "-s", "smoke", "--", "--require-docker"], cwd=root, check=False
    )
    return result.returncode == 0


def run_ci(
    settings: Settings,
    printer: Printer,
    environ: Mapping[str, str] | None = None,
    options: CiOptions = CiOptions(),
) -> BuildReport:
    """Build (the CI's cache), push, smoke test, summary. Fails after writing the summary."""
    env = os.environ if environ is None else environ
    run = CiRun.from_environ(env, settings.root)
    printer(
        f"ci: {run.system} run {run.build_id or '(local)'} of commit {run.commit or '?'}, "
        f"{options.cache} cache"
    )
    request = BuildRequest(tags=run.tags(settings), cache_mode=options.cache, push=True, load=True)
    notes: list[str] = []
    report = build(settings, request, lambda line: _keep_notes(line, notes, printer))
    passed = run_smoke(settings.root, printer) if options.smoke else None
    verdict = {True: "passed", False: "FAILED", None: "not run (--no-smoke)"}[passed]
    summary = summary_markdown(report, run, verdict, tuple(notes))
    path = settings.log_path / "ci-summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary, encoding="utf-8")
    step_summary = env.get("GITHUB_STEP_SUMMARY", "")
    if step_summary:
        with Path(step_summary).open("a", encoding="utf-8") as handle:
            handle.write(summary)
    printer("")
    for line in summary.splitlines():
        printer(line)
    if passed is False:
        raise ImageBuildError("the smoke test failed (the summary above says what was built)", path)
    return report


def _keep_notes(line: str, notes: list[str], printer: Printer) -> None:
    """Pass the build's lines on, keeping its notes (a cache fallback) for the summary."""
    if line.startswith("note: "):
        notes.append(line.removeprefix("note: "))
    printer(line)
