"""`inv doctor --codebuild PROJECT`: the checks the original build guide made by hand with
the AWS CLI, made with boto3, each with its fix:

- the project's Docker: its Docker Server, else privileged mode for its own dockerd;
- which cache the project has (Docker Server, ECR registry cache, LOCAL_DOCKER_LAYER_CACHE,
  none), what it gives and costs, and the stronger one when it is weak (`ProjectFacts`, read
  from the project description: pure, unit-tested);
- that ECR holds the image (tag latest) and, with the ECR registry cache, that cache (tag
  buildcache);
- `CACHED` steps in the newest build's log (CloudWatch Logs).

boto3 finds credentials and region as the AWS CLI does (AWS_PROFILE, AWS_REGION, ...), and
AWS_ENDPOINT_URL points it elsewhere (the tests: moto's server mode, a stand-in AWS API).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from imagebuild.output import Check

TERRAFORM = "infra/codebuild.tf"
# BuildKit's plain progress says "CACHED"; `inv build`'s own lines say "cached".
_CACHED = re.compile(r"(#\d+ CACHED\b)|(^\s*cached\s+\[)")
MAX_LOG_PAGES = 20


@dataclass(frozen=True)
class AwsClients:
    codebuild: Any
    ecr: Any
    logs: Any

    @classmethod
    def create(cls, region: str | None) -> AwsClients:
        session = boto3.session.Session(region_name=region)
        return cls(session.client("codebuild"), session.client("ecr"), session.client("logs"))


def _error(error: Exception) -> str:
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code', 'error')}: {detail.get('Message', '')}".rstrip(": ")
    return str(error)


class CacheKind(Enum):
    """Where a CodeBuild project keeps its layers between builds, strongest first."""

    DOCKER_SERVER = "Docker Server"
    ECR_REGISTRY = "ECR registry cache"
    LOCAL_LAYERS = "LOCAL_DOCKER_LAYER_CACHE"
    NONE = "none"


@dataclass(frozen=True)
class CacheOption:
    """What keeping layers one way gives a build, and what it costs."""

    kind: CacheKind
    gives: str
    costs: str


CACHE_OPTIONS = {
    CacheKind.DOCKER_SERVER: CacheOption(
        CacheKind.DOCKER_SERVER,
        "gives every layer on the server's own disk, nothing pulled (AWS's example: 24 min 54 s "
        "to 16 s)",
        "costs the server's compute while builds run; recycled after a month unused",
    ),
    CacheKind.ECR_REGISTRY: CacheOption(
        CacheKind.ECR_REGISTRY,
        "gives any build host the cache (tag buildcache)",
        "costs ECR storage and, each build, pulling the reused layers and pushing the cache",
    ),
    CacheKind.LOCAL_LAYERS: CacheOption(
        CacheKind.LOCAL_LAYERS,
        "gives the layers only to a build on the same host soon after (best effort)",
        "costs nothing; most builds start cold",
    ),
    CacheKind.NONE: CacheOption(
        CacheKind.NONE, "gives nothing: every build starts cold", "costs a full build each time"
    ),
}
STRONGER = (
    f"docker_server = true (the default in {TERRAFORM}), or INVOKE_CI_CACHE=registry for the "
    "ECR registry cache"
)


@dataclass(frozen=True)
class ProjectFacts:
    """What a project description (batch_get_projects) says about building images."""

    name: str
    environment_type: str = "LINUX_CONTAINER"
    privileged: bool = False
    docker_server_compute_type: str = ""
    docker_server_security_groups: tuple[str, ...] = ()
    cache_type: str = "NO_CACHE"
    cache_modes: tuple[str, ...] = ()
    ci_cache: str = ""  # the project's INVOKE_CI_CACHE; empty: invoke.yaml's, registry
    in_vpc: bool = False

    @classmethod
    def from_description(cls, project: Mapping[str, Any]) -> ProjectFacts:
        environment = project.get("environment") or {}
        server = environment.get("dockerServer") or {}
        cache = project.get("cache") or {}
        variables = {
            str(item.get("name")): str(item.get("value", ""))
            for item in environment.get("environmentVariables") or []
            if item.get("type", "PLAINTEXT") == "PLAINTEXT"
        }
        return cls(
            name=str(project.get("name", "")),
            environment_type=str(environment.get("type", "LINUX_CONTAINER")),
            privileged=bool(environment.get("privilegedMode")),
            docker_server_compute_type=str(server.get("computeType", "")),
            docker_server_security_groups=tuple(server.get("securityGroupIds") or ()),
            cache_type=str(cache.get("type", "NO_CACHE")),
            cache_modes=tuple(cache.get("modes") or ()),
            ci_cache=variables.get("INVOKE_CI_CACHE", ""),
            in_vpc=bool((project.get("vpcConfig") or {}).get("vpcId")),
        )

    @property
    def cache(self) -> CacheKind:
        if self.docker_server_compute_type:
            return CacheKind.DOCKER_SERVER
        if (self.ci_cache or "registry") == "registry":
            return CacheKind.ECR_REGISTRY
        if self.cache_type == "LOCAL" and "LOCAL_DOCKER_LAYER_CACHE" in self.cache_modes:
            return CacheKind.LOCAL_LAYERS
        return CacheKind.NONE


def engine_check(facts: ProjectFacts) -> Check:
    """Whether the project's builds have a Docker engine: the Docker Server, or their own."""
    if facts.docker_server_compute_type:
        if facts.environment_type != "LINUX_CONTAINER":
            return Check(
                "codebuild project",
                "FAIL",
                f"{facts.name}: a Docker Server on {facts.environment_type} "
                "(CodeBuild takes it for LINUX_CONTAINER only)",
                f'environment {{ type = "LINUX_CONTAINER" }}, as in {TERRAFORM}',
            )
        return Check(
            "codebuild project",
            "ok",
            f"{facts.name}: the builds' Docker is the project's Docker Server",
        )
    if not facts.privileged:
        return Check(
            "codebuild project",
            "FAIL",
            f"{facts.name}: no Docker Server and not privileged (Docker cannot run)",
            f"docker_server = true, or environment {{ privileged_mode = true }}, as in {TERRAFORM}",
        )
    return Check("codebuild project", "ok", f"{facts.name}: privileged (the build's own dockerd)")


def cache_check(facts: ProjectFacts) -> Check:
    """Which cache the project has, what it gives and costs; the fix when it is the weak one."""
    kind = facts.cache
    option = CACHE_OPTIONS[kind]
    detail = f"{kind.value}: {option.gives}; {option.costs}"
    if kind is CacheKind.DOCKER_SERVER:
        detail = (
            f"{kind.value} ({facts.docker_server_compute_type}): {option.gives}; {option.costs}"
        )
        if facts.ci_cache == "registry":
            return Check(
                "codebuild cache",
                "warn",
                f"{detail}; but INVOKE_CI_CACHE=registry builds through a docker-container "
                "builder, which does not use the server's cache",
                f"INVOKE_CI_CACHE=inline on the project, as in {TERRAFORM}",
            )
        if facts.in_vpc and not facts.docker_server_security_groups:
            return Check(
                "codebuild cache",
                "warn",
                f"{detail}; the project is in a VPC and the server has no security group",
                "a security group on the server that lets the project's VPC in on TCP 9876, "
                f"as in {TERRAFORM}",
            )
        return Check("codebuild cache", "ok", detail)
    if kind is CacheKind.ECR_REGISTRY:
        if facts.cache_type == "LOCAL" and "LOCAL_DOCKER_LAYER_CACHE" in facts.cache_modes:
            detail += f" (and {CacheKind.LOCAL_LAYERS.value}, best effort)"
        return Check("codebuild cache", "ok", detail)
    state = "warn" if kind is CacheKind.LOCAL_LAYERS else "FAIL"
    return Check("codebuild cache", state, detail, STRONGER)


def project_check(clients: AwsClients, project: str) -> tuple[list[Check], dict[str, Any] | None]:
    try:
        found = clients.codebuild.batch_get_projects(names=[project])
    except ClientError as error:
        # AWS lists a missing project in projectsNotFound; some stand-ins raise instead.
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        found = {"projects": [], "projectsNotFound": [project]}
    if not found.get("projects"):
        return [
            Check(
                "codebuild project",
                "FAIL",
                f"{project} does not exist in this account and region",
                f"terraform apply in infra/ ({TERRAFORM}), or name the right project",
            )
        ], None
    details: dict[str, Any] = found["projects"][0]
    facts = ProjectFacts.from_description(details)
    return [engine_check(facts), cache_check(facts)], details


def image_check(clients: AwsClients, repository: str, registry_cache: bool = True) -> Check:
    """The image in ECR and, where the project's cache is there, its registry cache."""
    tags: dict[str, dict[str, Any]] = {}
    try:
        for tag in ("latest", "buildcache"):
            try:
                described = clients.ecr.describe_images(
                    repositoryName=repository, imageIds=[{"imageTag": tag}]
                )
                tags[tag] = described["imageDetails"][0]
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ImageNotFoundException":
                    raise
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "RepositoryNotFoundException":
            return Check(
                "ecr image",
                "FAIL",
                f"no ECR repository {repository}",
                f"terraform apply in infra/ ({TERRAFORM})",
            )
        raise
    if "latest" not in tags:
        return Check(
            "ecr image",
            "FAIL",
            f"{repository} has no image tagged latest",
            "run the CodeBuild project once (its `inv ci` pushes the image and the cache)",
        )
    latest = tags["latest"]
    detail = f"{repository}:latest {latest.get('imageDigest', '')}, pushed {latest.get('imagePushedAt', '?')}"
    if not registry_cache:
        return Check("ecr image", "ok", f"{detail}; no registry cache needed (Docker Server)")
    if "buildcache" not in tags:
        return Check(
            "ecr image",
            "warn",
            f"{detail}; no registry cache (tag buildcache): a new build host starts cold",
            "build with `inv ci` (INVOKE_CI_CACHE=registry)",
        )
    return Check("ecr image", "ok", f"{detail}; registry cache buildcache present")


def _log_location(build: dict[str, Any], project: dict[str, Any] | None) -> tuple[str, str]:
    logs = build.get("logs") or {}
    group = logs.get("groupName") or ""
    stream = logs.get("streamName") or ""
    if not group and project is not None:
        group = ((project.get("logsConfig") or {}).get("cloudWatchLogs") or {}).get("groupName", "")
    if not stream:
        # CodeBuild names a build's stream after the part of its id after the project name.
        stream = str(build.get("id", "")).partition(":")[2]
    return group, stream


def cached_steps_check(
    clients: AwsClients, project: str, project_details: dict[str, Any] | None
) -> Check:
    ids = clients.codebuild.list_builds_for_project(
        projectName=project, sortOrder="DESCENDING"
    ).get("ids", [])
    if not ids:
        return Check("cached steps", "warn", f"{project} has no build yet", "start a build")
    build = clients.codebuild.batch_get_builds(ids=[ids[0]])["builds"][0]
    group, stream = _log_location(build, project_details)
    if not group or not stream:
        return Check(
            "cached steps",
            "FAIL",
            f"build {ids[0]} has no CloudWatch log",
            f"logs_config {{ cloudwatch_logs {{ ... }} }}, as in {TERRAFORM}",
        )
    cached = 0
    arguments: dict[str, Any] = {
        "logGroupName": group,
        "logStreamName": stream,
        "startFromHead": True,
    }
    for _ in range(MAX_LOG_PAGES):
        page = clients.logs.get_log_events(**arguments)
        cached += sum(bool(_CACHED.search(event.get("message", ""))) for event in page["events"])
        token = page.get("nextForwardToken")
        if not page["events"] or token == arguments.get("nextToken"):
            break
        arguments["nextToken"] = token
    if cached == 0:
        return Check(
            "cached steps",
            "warn",
            f"build {ids[0]}: no step came from the cache ({group})",
            "`inv cache-check` says why; check the buildcache tag in ECR and the project's cache",
        )
    return Check("cached steps", "ok", f"build {ids[0]}: {cached} steps CACHED ({group})")


def codebuild_checks(project: str, repository: str, region: str | None) -> list[Check]:
    """The three checks; an AWS error is a FAIL line naming it, never a stack trace."""
    try:
        clients = AwsClients.create(region)
        checks, details = project_check(clients, project)
        server = details is not None and ProjectFacts.from_description(details).cache is (
            CacheKind.DOCKER_SERVER
        )
        checks.append(image_check(clients, repository, registry_cache=not server))
        if details is not None:  # a project that does not exist has no builds to read
            checks.append(cached_steps_check(clients, project, details))
    except (ClientError, BotoCoreError) as error:
        return [
            Check(
                "aws",
                "FAIL",
                _error(error),
                "AWS credentials and region (aws configure, AWS_PROFILE, AWS_REGION)",
            )
        ]
    return checks
