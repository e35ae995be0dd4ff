"""infra/codebuild.tf, parsed (no Terraform provider can be fetched here): the project the
build needs, and a lifecycle policy that keeps cache tags from growing forever."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2

from imagebuild.ci.buildspec import parse_buildspec

ROOT = Path(__file__).resolve().parents[3]


def resources(kind: str) -> dict[str, Any]:
    with (ROOT / "infra/codebuild.tf").open(encoding="utf-8") as handle:
        document = hcl2.load(handle)
    found: dict[str, Any] = {}
    # python-hcl2 8 keeps the quotes of block labels and string values.
    for block in document.get("resource", []):
        for label, names in block.items():
            if label.strip('"') == kind:
                found.update({name.strip('"'): body for name, body in names.items()})
    return found


def first(value: Any) -> Any:
    """python-hcl2 gives a block as a list of one mapping."""
    return value[0] if isinstance(value, list) else value


def unquote(value: Any) -> Any:
    return value.strip('"') if isinstance(value, str) else value


def test_the_project_is_privileged_with_a_local_docker_layer_cache_and_our_buildspec() -> None:
    project = resources("aws_codebuild_project")["image"]
    environment = first(project["environment"])
    assert environment["privileged_mode"] is True
    cache = first(project["cache"])
    assert unquote(cache["type"]) == "LOCAL"
    assert "LOCAL_DOCKER_LAYER_CACHE" in [unquote(mode) for mode in cache["modes"]]
    buildspec = unquote(first(project["source"])["buildspec"])
    assert (ROOT / buildspec).is_file()
    parse_buildspec((ROOT / buildspec).read_text())
    variables = {unquote(item["name"]) for item in environment["environment_variable"]}
    assert {"INVOKE_IMAGEBUILD_REGISTRY", "INVOKE_IMAGEBUILD_BASE_IMAGE"} <= variables


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
