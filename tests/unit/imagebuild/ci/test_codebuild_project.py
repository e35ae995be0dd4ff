"""`inv doctor --codebuild`'s verdicts from a project description (the dict that CodeBuild's
batch_get_projects returns): pure, no AWS. The same descriptions go through moto's server in
tests/integration/test_codebuild_doctor.py; moto keeps `environment.dockerServer` as given
but models none of its behaviour (no server, no status, no check of the VPC)."""

from __future__ import annotations

from typing import Any

import pytest

from imagebuild.ci.codebuild_project import (
    CACHE_OPTIONS,
    TERRAFORM,
    CacheKind,
    ProjectFacts,
    cache_check,
    engine_check,
)


def description(
    docker_server: dict[str, Any] | None = None,
    privileged: bool = False,
    cache: dict[str, Any] | None = None,
    ci_cache: str | None = None,
    environment_type: str = "LINUX_CONTAINER",
    vpc: bool = False,
) -> dict[str, Any]:
    """A project as batch_get_projects describes it (only the fields the doctor reads)."""
    environment: dict[str, Any] = {
        "type": environment_type,
        "image": "aws/codebuild/standard:7.0",
        "computeType": "BUILD_GENERAL1_MEDIUM",
        "privilegedMode": privileged,
        "environmentVariables": [
            {"name": "INVOKE_IMAGEBUILD_IMAGE", "value": "audiobook-tts", "type": "PLAINTEXT"}
        ],
    }
    if ci_cache is not None:
        environment["environmentVariables"].append(
            {"name": "INVOKE_CI_CACHE", "value": ci_cache, "type": "PLAINTEXT"}
        )
    if docker_server is not None:
        environment["dockerServer"] = docker_server
    project: dict[str, Any] = {
        "name": "audiobook-tts",
        "environment": environment,
        "cache": cache or {"type": "NO_CACHE"},
    }
    if vpc:
        project["vpcConfig"] = {"vpcId": "vpc-1", "subnets": ["subnet-1"]}
    return project


LOCAL = {"type": "LOCAL", "modes": ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]}
SERVER = {"computeType": "BUILD_GENERAL1_MEDIUM"}


def test_facts_are_read_from_the_description() -> None:
    facts = ProjectFacts.from_description(
        description(
            docker_server={"computeType": "BUILD_GENERAL1_LARGE", "securityGroupIds": ["sg-1"]},
            cache=LOCAL,
            ci_cache="inline",
            vpc=True,
        )
    )
    assert facts == ProjectFacts(
        name="audiobook-tts",
        privileged=False,
        docker_server_compute_type="BUILD_GENERAL1_LARGE",
        docker_server_security_groups=("sg-1",),
        cache_type="LOCAL",
        cache_modes=("LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"),
        ci_cache="inline",
        in_vpc=True,
    )


def test_a_secret_variable_is_not_read_as_the_ci_cache() -> None:
    project = description()
    project["environment"]["environmentVariables"].append(
        {"name": "INVOKE_CI_CACHE", "value": "/ci/cache", "type": "PARAMETER_STORE"}
    )
    assert ProjectFacts.from_description(project).ci_cache == ""


@pytest.mark.parametrize(
    ("project", "kind"),
    [
        # The Docker Server wins whatever else is set.
        (description(docker_server=SERVER, privileged=True, cache=LOCAL), CacheKind.DOCKER_SERVER),
        # inv ci's own default (invoke.yaml: ci.cache registry) is the ECR registry cache.
        (description(privileged=True), CacheKind.ECR_REGISTRY),
        (description(privileged=True, cache=LOCAL, ci_cache="registry"), CacheKind.ECR_REGISTRY),
        # The seeds' set-up without a registry cache: the local layer cache alone.
        (description(privileged=True, cache=LOCAL, ci_cache="inline"), CacheKind.LOCAL_LAYERS),
        (
            description(
                privileged=True,
                cache={"type": "LOCAL", "modes": ["LOCAL_SOURCE_CACHE"]},
                ci_cache="inline",
            ),
            CacheKind.NONE,
        ),
        (description(privileged=True, ci_cache="inline"), CacheKind.NONE),
    ],
)
def test_the_cache_kind(project: dict[str, Any], kind: CacheKind) -> None:
    assert ProjectFacts.from_description(project).cache is kind


def test_the_docker_server_is_ok_and_says_what_it_gives_and_costs() -> None:
    check = cache_check(ProjectFacts.from_description(description(docker_server=SERVER)))
    assert check.state == "ok"
    assert check.detail.startswith("Docker Server (BUILD_GENERAL1_MEDIUM): ")
    assert "24 min 54 s to 16 s" in check.detail and "costs the server's compute" in check.detail


def test_the_docker_server_with_a_registry_ci_cache_warns_with_the_fix() -> None:
    facts = ProjectFacts.from_description(description(docker_server=SERVER, ci_cache="registry"))
    check = cache_check(facts)
    assert check.state == "warn" and "docker-container builder" in check.detail
    assert check.fix == f"INVOKE_CI_CACHE=inline on the project, as in {TERRAFORM}"


def test_a_docker_server_in_a_vpc_without_a_security_group_warns() -> None:
    check = cache_check(ProjectFacts.from_description(description(docker_server=SERVER, vpc=True)))
    assert check.state == "warn" and "TCP 9876" in check.fix
    with_group = {**SERVER, "securityGroupIds": ["sg-1"]}
    facts = ProjectFacts.from_description(description(docker_server=with_group, vpc=True))
    assert cache_check(facts).state == "ok"


def test_the_ecr_registry_cache_is_ok_and_names_the_local_cache_beside_it() -> None:
    check = cache_check(ProjectFacts.from_description(description(privileged=True, cache=LOCAL)))
    assert check.state == "ok"
    assert check.detail.startswith("ECR registry cache: gives any build host the cache")
    assert "(and LOCAL_DOCKER_LAYER_CACHE, best effort)" in check.detail


@pytest.mark.parametrize(
    ("cache", "state", "kind"),
    [(LOCAL, "warn", CacheKind.LOCAL_LAYERS), ({"type": "NO_CACHE"}, "FAIL", CacheKind.NONE)],
)
def test_a_weak_cache_names_the_stronger_ones(
    cache: dict[str, Any], state: str, kind: CacheKind
) -> None:
    facts = ProjectFacts.from_description(
        description(privileged=True, cache=cache, ci_cache="inline")
    )
    check = cache_check(facts)
    assert check.state == state
    assert check.detail == f"{kind.value}: {CACHE_OPTIONS[kind].gives}; {CACHE_OPTIONS[kind].costs}"
    assert check.fix.startswith("docker_server = true") and "INVOKE_CI_CACHE=registry" in check.fix


def test_every_cache_kind_says_what_it_gives_and_costs() -> None:
    assert set(CACHE_OPTIONS) == set(CacheKind)
    for kind, option in CACHE_OPTIONS.items():
        assert option.kind is kind
        assert option.gives.startswith("gives ") and option.costs.startswith("costs ")


def test_docker_runs_on_the_server_or_in_a_privileged_build() -> None:
    server = engine_check(ProjectFacts.from_description(description(docker_server=SERVER)))
    assert server.state == "ok" and "Docker Server" in server.detail
    own = engine_check(ProjectFacts.from_description(description(privileged=True)))
    assert own.state == "ok" and "privileged" in own.detail
    neither = engine_check(ProjectFacts.from_description(description()))
    assert neither.state == "FAIL" and "privileged_mode = true" in neither.fix


def test_a_docker_server_on_arm_is_refused() -> None:
    facts = ProjectFacts.from_description(
        description(docker_server=SERVER, environment_type="ARM_CONTAINER")
    )
    check = engine_check(facts)
    assert check.state == "FAIL" and "LINUX_CONTAINER only" in check.detail
