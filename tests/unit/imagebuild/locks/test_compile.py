"""The lock commands: hashed, relative, and blind to the host's pip config."""

from __future__ import annotations

from pathlib import Path

from imagebuild.locks.compile import GROUPS, compile_command, compile_environment
from imagebuild.plan.config import HostPackageSettings


def test_lock_commands_are_hashed_relative_and_ignore_host_pip_config() -> None:
    torch = next(group for group in GROUPS if group.name == "torch-cpu")
    service = next(group for group in GROUPS if group.name == "service")
    host = HostPackageSettings(find_links=(Path("/opt/wheels"),))
    torch_cmd = compile_command(torch, host)
    assert "--generate-hashes" in torch_cmd and "--allow-unsafe" in torch_cmd
    assert torch_cmd[-1] == "torch-cpu.in" and "--find-links" in torch_cmd
    assert "--find-links" not in compile_command(service, host)
    env = compile_environment(
        {
            "PIP_FIND_LINKS": "/opt/wheels",
            "PIP_EXTRA_INDEX_URL": "file:///opt/pypi/simple",
            "PIP_INDEX_URL": "https://mirror.example/simple",
            "HOME": "/root",
        }
    )
    assert env["PIP_CONFIG_FILE"] and "PIP_FIND_LINKS" not in env
    assert "PIP_EXTRA_INDEX_URL" not in env
    assert env["PIP_INDEX_URL"] == "https://mirror.example/simple"
    assert env["CUSTOM_COMPILE_COMMAND"] == "inv lock"
