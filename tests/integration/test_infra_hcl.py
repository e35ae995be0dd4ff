"""infra/codebuild.tf read by HashiCorp's HCL parser, as Terraform reads it: Debian's
terraform-config-inspect (`inv test-tools` installs it). It parses every block and reports
Terraform's own diagnostics; it does not load the provider, so it is no `terraform validate`
(no Terraform or OpenTofu binary, nor the provider, can be fetched here):
tests/unit/infra/test_infra.py checks the names against the provider's schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT


def inspect(module: Path) -> dict[str, Any]:
    binary = shutil.which("terraform-config-inspect")
    if binary is None:
        pytest.fail("terraform-config-inspect is not installed: run `inv test-tools` first")
    # It exits 1 when it reports an error diagnostic, and still prints the module.
    result = subprocess.run(
        [binary, "--json", str(module)], capture_output=True, text=True, check=False
    )
    assert result.stdout.startswith("{"), result.stderr
    return dict(json.loads(result.stdout))


def test_terraform_parses_infra_without_a_diagnostic() -> None:
    module = inspect(ROOT / "infra")
    assert module.get("diagnostics", []) == []
    assert module["required_providers"]["aws"] == {
        "source": "hashicorp/aws",
        "version_constraints": [">= 6.2, < 7.0"],
    }
    docker_server = module["variables"]["docker_server"]
    assert (docker_server["type"], docker_server["default"]) == ("bool", True)
    assert module["variables"]["docker_server_compute_type"]["default"] == "BUILD_GENERAL1_MEDIUM"
    assert {"aws_codebuild_project.image", "aws_security_group.docker_server"} <= set(
        module["managed_resources"]
    )


def test_the_parser_reports_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: a block cut short is Terraform's 'Invalid expression'."""
    text = (ROOT / "infra/codebuild.tf").read_text()
    broken = text.replace("compute_type       = docker_server.value", "compute_type =", 1)
    assert broken != text
    (tmp_path / "main.tf").write_text(broken)
    diagnostics = inspect(tmp_path).get("diagnostics", [])
    assert [item["severity"] for item in diagnostics] == ["error"]
    assert diagnostics[0]["pos"]["filename"].endswith("main.tf")
