"""`inv build`: the flags checked, the platform up, the plan made from the engine's facts, run
on that engine, reported."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from imagebuild.engine.docker import DockerEngine
from imagebuild.engine.progress import utc_now
from imagebuild.engine.report import BuildReport, append_history
from imagebuild.engine.run import BuildFailed, run_build
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import HostPackageSettings, Settings
from imagebuild.plan.context import ContextManifest
from imagebuild.plan.dockerfile import read_stages
from imagebuild.plan.plan import BuildPlan, CacheExporter, exports_cache, plan_build
from imagebuild.plan.request import BuildChoices, BuildRequest, check_request, image_build_args
from imagebuild.plan.target_platforms import architecture, missing_base_message, missing_platforms
from imagebuild.platform import local
from imagebuild.platform.local import platform_is_up
from imagebuild.platform.registry import Reference, RegistryClient


def prepare_wheelhouse(settings: Settings, host: HostPackageSettings) -> Path | None:
    """The host's wheel directories as one named context (hard links when there are several)."""
    if not host.find_links:
        return None
    if len(host.find_links) == 1:
        return host.find_links[0]
    merged = settings.state_dir / "wheelhouse"
    if merged.exists():
        shutil.rmtree(merged)
    merged.mkdir(parents=True)
    for directory in host.find_links:
        for wheel in sorted(directory.iterdir()):
            target = merged / wheel.name
            if wheel.is_file() and not target.exists():
                try:
                    os.link(wheel, target)
                except OSError:
                    shutil.copy2(wheel, target)
    return merged


def ensure_platform(
    settings: Settings, engine: DockerEngine, start: bool, printer: Printer
) -> None:
    if platform_is_up(settings, engine):
        return
    if not start:
        raise ImageBuildError(
            f"no Docker daemon or registry answers ({settings.registry}); "
            "run `inv up` to start the local build platform"
        )
    printer("the build platform is not up; running `inv up` first")
    local.up(settings, printer)


def buildkitd_config(settings: Settings) -> Path:
    """The docker-container builder's BuildKit settings: plain HTTP for a local registry."""
    path = settings.state_dir / "buildkitd.toml"
    lines = ["# Written by audiobook-tts `inv build` for its docker-container builder."]
    if settings.registry_is_local:
        lines += [f'[registry."{settings.registry}"]', "  http = true"]
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def cache_exporter(
    settings: Settings, choices: BuildChoices, engine: DockerEngine
) -> CacheExporter:
    """What the plan needs to know of the engine: whether it exports a registry or local
    cache itself (the containerd image store), else whether a docker-container builder
    starts to do it. Asked only of a build that exports such a cache."""
    if not exports_cache(settings, choices) or engine.facts().containerd_store:
        return CacheExporter()
    problem = engine.container_builder(
        settings.builder_name, settings.buildkit_image, buildkitd_config(settings)
    )
    return CacheExporter(containerd_store=False, builder_problem=problem)


def _swap_local_cache(plan: BuildPlan) -> None:
    if plan.local_cache is None:
        return
    fresh, current = plan.local_cache
    if not fresh.exists():
        return
    retired = current.with_name(current.name + ".old")
    if retired.exists():
        shutil.rmtree(retired)
    if current.exists():
        current.rename(retired)
    fresh.rename(current)
    if retired.exists():
        shutil.rmtree(retired)


def _discard_fresh_cache(plan: BuildPlan) -> None:
    if plan.local_cache is not None and plan.local_cache[0].exists():
        shutil.rmtree(plan.local_cache[0], ignore_errors=True)


def execute_plan(
    settings: Settings, plan: BuildPlan, engine: DockerEngine, printer: Printer
) -> BuildReport:
    """Run a plan: progress on the terminal, the report printed and appended to the history."""
    for note in plan.notes:
        printer(f"note: {note}")
    if plan.local_cache is not None:
        plan.local_cache[0].parent.mkdir(parents=True, exist_ok=True)
    printer(f"building target {plan.target} ({plan.cache_mode} cache); log: {plan.log_path}")
    manifest = ContextManifest.of(plan.context)
    plan.log_path.parent.mkdir(parents=True, exist_ok=True)
    # Kept beside the log, so that `inv cache-check` can name the files that changed.
    plan.context_manifest_path.write_text(manifest.to_json(), encoding="utf-8")
    try:
        report = run_build(engine, plan, printer)
    except BuildFailed as failed:
        _discard_fresh_cache(plan)
        append_history(settings.history_path, failed.report)
        if failed.tail:
            printer("last lines of the failing step:")
            for line in failed.tail:
                printer(f"  | {line}")
        raise
    _swap_local_cache(plan)
    append_history(settings.history_path, report)
    printer("")
    for line in report.summary_lines():
        printer(line)
    return report


def build(
    settings: Settings, request: BuildRequest, printer: Printer, start_platform: bool = True
) -> BuildReport:
    """`inv build`: the flags checked (before the platform is touched), the platform up, the
    plan made once from the engine's facts, run on that one engine, and reported."""
    epoch = source_date_epoch(settings.root) if request.reproducible else None
    choices = check_request(settings, request, read_stages(settings.dockerfile_path), epoch)
    host = HostPackageSettings.current()
    wheelhouse = prepare_wheelhouse(settings, host)
    engine = DockerEngine.of(settings)
    ensure_platform(settings, engine, start_platform, printer)
    check_platforms(settings, choices)
    exporter = cache_exporter(settings, choices, engine)
    plan = plan_build(settings, host, choices, utc_now(), wheelhouse, exporter)
    return execute_plan(settings, plan, engine, printer)


def check_platforms(settings: Settings, choices: BuildChoices) -> None:
    """Refuse, before building, a platform that the base or installer image lacks (BuildKit
    would otherwise take the other platform's layers and label them as asked), or that
    the torch variant has no lock for."""
    if not choices.platforms:
        return
    arguments = image_build_args(settings, choices) | dict(choices.build_args)
    variant = arguments.get("TORCH_VARIANT", "cpu")
    requirements = settings.root / "requirements"
    for platform in choices.platforms:
        arch = architecture(platform)
        if arch != "amd64" and not (requirements / f"torch-{variant}-{arch}.txt").exists():
            raise ImageBuildError(
                f"--platform {platform}: the {variant} torch has no lock for {arch} "
                f"(requirements/torch-{variant}-{arch}.txt); the README's arm64 section says "
                "what is locked and how to point the build at NVIDIA's L4T images"
            )
    client = RegistryClient.for_settings(settings)
    images = (arguments.get("BASE_IMAGE", ""), arguments.get("INSTALLER_IMAGE", ""))
    for image in dict.fromkeys(item for item in images if item.startswith(f"{settings.registry}/")):
        reference = Reference.parse(image)
        have = client.platforms(reference.repository, reference.tag)
        if have is None:
            continue  # absent: the build says so in its own words
        missing = missing_platforms(have, choices.platforms)
        if missing:
            raise ImageBuildError(missing_base_message(image, have, missing))


def source_date_epoch(root: Path) -> int | None:
    """The time of the last commit, for reproducible timestamps; None outside a git tree."""
    with contextlib.suppress(OSError, ValueError, subprocess.CalledProcessError):
        result = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(result.stdout.strip())
    return None
