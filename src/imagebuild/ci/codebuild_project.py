"""`inv doctor --codebuild PROJECT`: the three checks the original build guide made by hand
with the AWS CLI, made with boto3, each with its fix:

- the project's cache configuration (LOCAL, with LOCAL_DOCKER_LAYER_CACHE) and privileged mode;
- that ECR holds the image (tag latest) and its registry cache (tag buildcache);
- `CACHED` steps in the newest build's log (CloudWatch Logs).

boto3 finds credentials and region as the AWS CLI does (AWS_PROFILE, AWS_REGION, ...), and
AWS_ENDPOINT_URL points it elsewhere (the tests: moto's server mode, a stand-in AWS API).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


def project_check(clients: AwsClients, project: str) -> tuple[Check, dict[str, Any] | None]:
    try:
        found = clients.codebuild.batch_get_projects(names=[project])
    except ClientError as error:
        # AWS lists a missing project in projectsNotFound; some stand-ins raise instead.
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        found = {"projects": [], "projectsNotFound": [project]}
    if not found.get("projects"):
        return Check(
            "codebuild project",
            "FAIL",
            f"{project} does not exist in this account and region",
            f"terraform apply in infra/ ({TERRAFORM}), or name the right project",
        ), None
    details: dict[str, Any] = found["projects"][0]
    cache = details.get("cache") or {}
    modes = list(cache.get("modes") or [])
    privileged = bool((details.get("environment") or {}).get("privilegedMode"))
    problems: list[str] = []
    fixes: list[str] = []
    if cache.get("type") != "LOCAL" or "LOCAL_DOCKER_LAYER_CACHE" not in modes:
        problems.append(f"cache is {cache.get('type', 'NO_CACHE')} {modes or ''}".rstrip())
        fixes.append('cache { type = "LOCAL", modes = ["LOCAL_DOCKER_LAYER_CACHE"] }')
    if not privileged:
        problems.append("not privileged (Docker cannot run)")
        fixes.append("environment { privileged_mode = true }")
    if problems:
        return Check(
            "codebuild project",
            "FAIL",
            f"{project}: {'; '.join(problems)}",
            f"{' and '.join(fixes)}, as in {TERRAFORM}",
        ), details
    return Check(
        "codebuild project",
        "ok",
        f"{project}: cache LOCAL {', '.join(modes)}, privileged",
    ), details


def image_check(clients: AwsClients, repository: str) -> Check:
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
    if "buildcache" not in tags:
        return Check(
            "ecr image",
            "warn",
            f"{detail}; no registry cache (tag buildcache): a new build host starts cold",
            "build with `inv ci` (INVOKE_IMAGEBUILD_CACHE=registry)",
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
        project_result, details = project_check(clients, project)
        checks = [project_result, image_check(clients, repository)]
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
