"""`inv doctor`: what the engine at hand supports, and how to fix what it lacks.

Each check is a line: ok, warn (works, with a cost) or FAIL, with the fix beside it. Nothing
here changes the machine, except that the docker-container builder is started (as a build
that needs it would start it) to learn whether it can run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from imagebuild.build.flow import buildkitd_config
from imagebuild.ci.codebuild_project import codebuild_checks
from imagebuild.ci.registry_login import ecr_region, is_ecr
from imagebuild.engine.docker import DockerEngine, EngineFacts
from imagebuild.errors import ImageBuildError
from imagebuild.output import Check, Printer, human_bytes
from imagebuild.plan.config import Settings
from imagebuild.platform.base_image import BaseRecipe, base_image_current
from imagebuild.platform.debian import MIN_ENGINE_MAJOR
from imagebuild.platform.registry import RegistryClient, stored_credentials


def engine_checks(
    settings: Settings, facts: EngineFacts, builder_problem: str | None
) -> list[Check]:
    """What the engine's facts say about building this image (pure: facts in, checks out)."""
    checks: list[Check] = []
    major = int(facts.server_version.split(".", 1)[0] or 0) if facts.server_version else 0
    checks.append(
        Check(
            "engine",
            "ok" if major >= MIN_ENGINE_MAJOR else "FAIL",
            f"Docker {facts.server_version}, data root {facts.data_root}",
            f"Docker Engine >= {MIN_ENGINE_MAJOR} (`inv up` installs it on Debian)",
        )
    )
    checks.append(
        Check(
            "buildx",
            "ok" if facts.buildx_version else "FAIL",
            facts.buildx_version or "not installed",
            "install the buildx plugin (Debian: docker-buildx)",
        )
    )
    store = "containerd" if facts.containerd_store else "classic (overlay2)"
    checks.append(
        Check(
            "image store",
            "ok" if facts.containerd_store else "warn",
            store,
            'set {"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json '
            "and restart the engine (CodeBuild: the docker-container builder below instead)",
        )
    )
    if facts.containerd_store:
        drivers = "docker (this engine's own BuildKit)"
        exporters = "inline, registry, local (docker driver)"
        checks.append(Check("drivers", "ok", drivers))
        checks.append(Check("cache exporters", "ok", exporters))
    elif builder_problem is None:
        checks.append(
            Check("drivers", "ok", f"docker, docker-container ({settings.buildkit_image})")
        )
        checks.append(
            Check("cache exporters", "ok", "inline (docker); registry, local (docker-container)")
        )
    else:
        checks.append(
            Check(
                "drivers",
                "warn",
                f"docker only; the docker-container builder cannot start: {builder_problem}",
                f"make {settings.buildkit_image} pullable (set imagebuild.buildkit_image to a "
                "mirror), or turn on the containerd image store",
            )
        )
        checks.append(
            Check(
                "cache exporters",
                "warn",
                "inline only: `--cache registry` and `--cache local` fall back to inline cache "
                "read from the pushed image",
                "either fix under drivers",
            )
        )
    return checks


# A cold CUDA + CSM build holds about 15 GB of layers and cache; `.ci/run` took 31 GB at its peak.
DISK_WARN_BYTES = 30 * 10**9
DISK_FAIL_BYTES = 5 * 10**9


def disk_check(data_root: str, free_bytes: int) -> Check:
    """Free space where the engine keeps images: a full disk fails a build many minutes in."""
    detail = f"{human_bytes(free_bytes)} free on the engine's data root ({data_root})"
    fix = "docker builder prune (old cache), docker image prune, or a bigger volume"
    if free_bytes < DISK_FAIL_BYTES:
        return Check("disk", "FAIL", f"{detail}; a build of the small image needs 5 GB", fix)
    if free_bytes < DISK_WARN_BYTES:
        return Check("disk", "warn", f"{detail}; a CUDA build or a CI run needs 30 GB", fix)
    return Check("disk", "ok", detail)


def registry_checks(settings: Settings) -> list[Check]:
    client = RegistryClient.for_settings(settings)
    status = client.status()
    how = "inv up" if settings.registry_is_local else "check the address and the network"
    where = f"{settings.registry_scheme}://{settings.registry}"
    if status is None:
        return [Check("registry", "FAIL", f"{where} does not answer", how)]
    checks = [Check("registry", "ok", f"{where} answers")]
    credentials = stored_credentials(settings.registry)
    if status == 200 and credentials is None:
        checks.append(Check("login", "ok", "not needed (the registry takes anonymous pushes)"))
    elif status == 200:
        checks.append(
            Check("login", "ok", f"stored login for {credentials[0] if credentials else '?'} works")
        )
    elif credentials is None:
        checks.append(
            Check(
                "login",
                "FAIL",
                "the registry wants a login and none is stored",
                "inv login (ECR: a token from the AWS CLI; else REGISTRY_PASSWORD or "
                "--password-stdin)",
            )
        )
    else:
        accepted = client.accepts(credentials)
        state, detail = {
            True: ("ok", f"stored login for {credentials[0]} works"),
            False: ("FAIL", f"the registry refuses the stored login for {credentials[0]}"),
            None: ("ok", f"a login for {credentials[0]} is stored (token auth: docker checks it)"),
        }[accepted]
        checks.append(Check("login", state, detail, "inv login again"))
    return checks


def base_image_check(settings: Settings) -> Check:
    if not settings.owns_base_image:
        return Check("base image", "ok", f"{settings.base_image} (pulled by the build)")
    recipe = BaseRecipe.from_repository(settings)
    try:
        current = base_image_current(settings, recipe)
    except OSError as error:
        return Check("base image", "FAIL", f"cannot read it from the registry: {error}", "inv up")
    if current:
        return Check("base image", "ok", f"{settings.base_image} matches recipe {recipe.digest()}")
    return Check("base image", "warn", f"{settings.base_image} is missing or stale", "inv up")


def run_doctor(settings: Settings, printer: Printer, codebuild_project: str = "") -> list[Check]:
    """Every check, printed; an error (exit 1) when one failed."""
    checks: list[Check] = []
    client = shutil.which(settings.docker_client)
    checks.append(
        Check(
            "docker client",
            "ok" if client else "FAIL",
            client or f"{settings.docker_client} is not on PATH",
            "inv up (Debian: docker-cli)",
        )
    )
    engine = DockerEngine.of(settings)
    if client and engine.answers():
        facts = engine.facts()
        problem = None
        if not facts.containerd_store:
            problem = engine.container_builder(
                settings.builder_name, settings.buildkit_image, buildkitd_config(settings)
            )
        checks += engine_checks(settings, facts, problem)
        if facts.data_root and Path(facts.data_root).exists():  # not for a remote engine
            checks.append(disk_check(facts.data_root, shutil.disk_usage(facts.data_root).free))
    elif client:
        checks.append(
            Check("engine", "FAIL", "no Docker daemon answers", "inv up (or start dockerd)")
        )
    checks += registry_checks(settings)
    checks.append(base_image_check(settings))
    if codebuild_project:
        region = ecr_region(settings.registry) if is_ecr(settings.registry) else None
        checks += codebuild_checks(codebuild_project, settings.image, region)
    for check in checks:
        for line in check.lines():
            printer(line)
    failed = [check.name for check in checks if check.state == "FAIL"]
    if failed:
        raise ImageBuildError(f"{len(failed)} check(s) failed: {', '.join(failed)}")
    printer(f"{len(checks)} checks, none failed")
    return checks
