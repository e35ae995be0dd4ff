"""infra/codebuild.tf, parsed (no Terraform provider can be fetched here, so neither
`terraform validate` nor `tofu validate` runs): the project the build needs, CodeBuild's
Docker Server on by default beside the ECR registry cache, and a lifecycle policy that keeps
cache tags from growing forever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2

from imagebuild.ci.buildspec import ci_problems, parse_buildspec
from imagebuild.ci.run import CI_CACHES

ROOT = Path(__file__).resolve().parents[3]


def document() -> dict[str, Any]:
    with (ROOT / "infra/codebuild.tf").open(encoding="utf-8") as handle:
        return dict(hcl2.load(handle))


def resources(kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    # python-hcl2 8 keeps the quotes of block labels and string values.
    for block in document().get("resource", []):
        for label, names in block.items():
            if label.strip('"') == kind:
                found.update({name.strip('"'): body for name, body in names.items()})
    return found


def first(value: Any) -> Any:
    """python-hcl2 gives a block as a list of one mapping."""
    return value[0] if isinstance(value, list) else value


def unquote(value: Any) -> Any:
    return value.strip('"') if isinstance(value, str) else value


def variables() -> dict[str, Any]:
    return {
        name.strip('"'): body for block in document()["variable"] for name, body in block.items()
    }


def locals_() -> dict[str, Any]:
    return {key: value for block in document()["locals"] for key, value in block.items()}


def dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A `dynamic "name"` block of body (python-hcl2 keeps the label's quotes)."""
    blocks = [block for item in body.get("dynamic", []) for block in item.items()]
    return next(content for label, content in blocks if label.strip('"') == name)


def strategy(docker_server: bool) -> dict[str, Any]:
    """What infra/codebuild.tf sets on the project for var.docker_server, from its locals."""
    values = locals_()
    assert values["cache_strategy"] == (
        '${local.cache_strategies[var.docker_server ? "docker_server" : "ecr_registry"]}'
    )
    chosen = values["cache_strategies"]["docker_server" if docker_server else "ecr_registry"]
    return {
        key: unquote(value) if not isinstance(value, list) else [unquote(v) for v in value]
        for key, value in chosen.items()
    }


def test_the_docker_server_is_on_by_default_with_its_compute_type_and_security_group() -> None:
    declared = variables()
    assert declared["docker_server"]["type"] == "bool"
    assert declared["docker_server"]["default"] is True
    compute = declared["docker_server_compute_type"]
    assert unquote(compute["default"]) == "BUILD_GENERAL1_MEDIUM"
    assert "BUILD_GENERAL1_2XLARGE" in str(compute["validation"])
    environment = first(resources("aws_codebuild_project")["image"]["environment"])
    server = dynamic(environment, "docker_server")
    assert server["for_each"] == "${var.docker_server ? [var.docker_server_compute_type] : []}"
    content = first(server["content"])
    assert content["compute_type"] == "${docker_server.value}"
    assert "aws_security_group.docker_server[*].id" in content["security_group_ids"]
    assert "var.docker_server_security_group_ids" in content["security_group_ids"]


def test_the_docker_servers_security_group_lets_the_builds_in_on_9876() -> None:
    group = resources("aws_security_group")["docker_server"]
    assert group["count"] == "${local.in_vpc && var.docker_server ? 1 : 0}"
    ingress = first(group["ingress"])
    assert (ingress["from_port"], ingress["to_port"], unquote(ingress["protocol"])) == (
        9876,
        9876,
        "tcp",
    )
    assert ingress["security_groups"] == ["${aws_security_group.build[0].id}"]
    vpc = dynamic(resources("aws_codebuild_project")["image"], "vpc_config")
    assert first(vpc["content"])["security_group_ids"] == ["${aws_security_group.build[0].id}"]


def test_docker_server_and_ecr_registry_cache_set_what_each_needs() -> None:
    server, registry = strategy(True), strategy(False)
    # The Docker Server: inv ci builds with the server's own builder and cache, no dockerd here.
    assert server == {
        "ci_cache": "inline",
        "privileged_mode": False,
        "local_cache_modes": ["LOCAL_SOURCE_CACHE"],
    }
    # The ECR registry cache: the build's own dockerd (privileged) and a docker-container
    # builder exporting to ECR; LOCAL_DOCKER_LAYER_CACHE beside it, where it still helps.
    assert registry == {
        "ci_cache": "registry",
        "privileged_mode": True,
        "local_cache_modes": ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"],
    }
    project = resources("aws_codebuild_project")["image"]
    environment = first(project["environment"])
    assert environment["privileged_mode"] == "${local.cache_strategy.privileged_mode}"
    cache = first(project["cache"])
    assert unquote(cache["type"]) == "LOCAL"
    assert cache["modes"] == "${local.cache_strategy.local_cache_modes}"
    ci_cache = next(
        item
        for item in environment["environment_variable"]
        if unquote(item["name"]) == "INVOKE_CI_CACHE"
    )
    assert ci_cache["value"] == "${local.cache_strategy.ci_cache}"
    # inv ci takes these values (and nothing else) for its cache.
    assert {server["ci_cache"], registry["ci_cache"]} == set(CI_CACHES)


def test_the_provider_is_one_whose_schema_has_the_docker_server() -> None:
    providers = first(first(document()["terraform"])["required_providers"])
    assert unquote(providers["aws"]["version"]) == ">= 6.2, < 7.0"


def test_the_project_builds_with_our_buildspec_and_registry() -> None:
    project = resources("aws_codebuild_project")["image"]
    environment = first(project["environment"])
    buildspec = unquote(first(project["source"])["buildspec"])
    assert (ROOT / buildspec).is_file()
    assert ci_problems(parse_buildspec((ROOT / buildspec).read_text())) == []
    names = {unquote(item["name"]) for item in environment["environment_variable"]}
    assert {
        "INVOKE_IMAGEBUILD_REGISTRY",
        "INVOKE_IMAGEBUILD_BASE_IMAGE",
        "INVOKE_CI_CACHE",
    } <= names


def test_one_ecr_repository_holds_image_and_cache_and_its_policy_is_the_json_file() -> None:
    assert set(resources("aws_ecr_repository")) == {"image"}
    policy = resources("aws_ecr_lifecycle_policy")["image"]
    assert "ecr-lifecycle.json" in policy["policy"]


def test_the_lifecycle_rules_bound_cache_tags_and_untagged_manifests() -> None:
    rules = json.loads((ROOT / "infra/ecr-lifecycle.json").read_text())["rules"]
    priorities = [rule["rulePriority"] for rule in rules]
    assert priorities == sorted(set(priorities))
    by_status = {rule["selection"]["tagStatus"]: rule for rule in rules}
    untagged = by_status["untagged"]["selection"]
    assert untagged["countType"] == "sinceImagePushed" and untagged["countNumber"] <= 30
    cache = next(
        rule["selection"]
        for rule in rules
        if "buildcache" in rule["selection"].get("tagPrefixList", [])
    )
    assert cache["countType"] == "imageCountMoreThan" and cache["countNumber"] <= 20
    # ECR requires the "any" rule to come last.
    assert rules[-1]["selection"]["tagStatus"] == "any"
    assert all(rule["action"]["type"] == "expire" for rule in rules)


# Not arguments of a resource: Terraform's own meta-arguments and python-hcl2's bookkeeping.
META = {"count", "for_each", "depends_on", "lifecycle", "provider", "dynamic"}


def unknown_names(body: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """Each argument or block of `body` that the provider's schema does not have, by path."""
    unknown: list[str] = []
    for key, value in body.items():
        if key.startswith("__") or key in META:
            continue
        if key not in schema:
            unknown.append(f"{where}.{key}")
        elif isinstance(schema[key], dict):
            for block in value if isinstance(value, list) else [value]:
                unknown += unknown_names(block, schema[key], f"{where}.{key}")
    for item in body.get("dynamic", []):
        for label, dynamic_block in item.items():
            name = label.strip('"')
            if not isinstance(schema.get(name), dict):
                unknown.append(f"{where}.dynamic {name}")
                continue
            for content in dynamic_block["content"]:
                unknown += unknown_names(content, schema[name], f"{where}.{name}")
    return unknown


def test_every_argument_and_block_is_in_the_providers_schema() -> None:
    """Short of `terraform validate`: the names infra/codebuild.tf uses, against the schema of
    hashicorp/aws 6.2.0 (tests/unit/infra/aws_provider_schema.json says where it comes from).
    Types, values and references are not checked."""
    schema = json.loads((ROOT / "tests/unit/infra/aws_provider_schema.json").read_text())
    assert schema["provider_version"] == "6.2.0"
    unknown: list[str] = []
    checked = 0
    for kind in ("resource", "data"):
        for block in document().get(kind, []):
            for label, named in block.items():
                resource_type = label.strip('"')
                assert resource_type in schema[kind], f"{kind} {resource_type} is not in the schema"
                for name, body in named.items():
                    unknown += unknown_names(body, schema[kind][resource_type], name.strip('"'))
                    checked += 1
    assert unknown == []
    assert checked >= 14


def test_the_schema_check_finds_a_misspelt_argument() -> None:
    schema = json.loads((ROOT / "tests/unit/infra/aws_provider_schema.json").read_text())
    project = resources("aws_codebuild_project")["image"]
    environment = dict(first(project["environment"]))
    environment["dynamic"] = [
        {'"docker_server"': {"content": [{"compute_type": "x", "security_groups_ids": []}]}}
    ]
    misspelt = {**project, "environment": [environment]}
    assert unknown_names(misspelt, schema["resource"]["aws_codebuild_project"], "image") == [
        "image.environment.docker_server.security_groups_ids"
    ]
