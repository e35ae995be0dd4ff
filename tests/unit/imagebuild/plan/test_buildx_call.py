"""The buildx call is written once: the command line in every build log (`describe`) is the
call python-on-whales makes from `buildx_kwargs`, for every kind of plan."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from python_on_whales.components.buildx import cli_wrapper

from imagebuild.plan.config import HostPackageSettings, Settings
from imagebuild.plan.dockerfile import parse_stages
from imagebuild.plan.plan import BuildPlan, CacheExporter, make_plan
from imagebuild.plan.request import BuildRequest

ROOT = Path(__file__).resolve().parents[4]
NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=UTC)
STAGES = parse_stages((ROOT / "docker/tts/Dockerfile").read_text())
CLASSIC = CacheExporter(containerd_store=False)
NO_BUILDER = CacheExporter(containerd_store=False, builder_problem="cannot pull moby/buildkit")
REGISTRY_TAG = ("127.0.0.1:5000/x:1",)

# Every kind of plan: each cache mode, each way out (load, push, both, neither, through a
# docker-container builder, zstd, reproducible OCI archive), platforms, the host's settings.
KINDS: dict[str, tuple[BuildRequest, CacheExporter, dict[str, str]]] = {
    "default": (BuildRequest(), CacheExporter(), {}),
    "registry cache": (BuildRequest(cache_mode="registry"), CacheExporter(), {}),
    "local cache": (BuildRequest(cache_mode="local"), CacheExporter(), {}),
    "no cache": (BuildRequest(cache_mode="none"), CacheExporter(), {}),
    "no-cache flag": (BuildRequest(no_cache=True), CacheExporter(), {}),
    "cache flags": (
        BuildRequest(
            cache_from=("a.io/x:c", "type=local,src=/c"), cache_to=("type=local,dest=/d",)
        ),
        CacheExporter(),
        {},
    ),
    "push": (BuildRequest(push=True), CacheExporter(), {}),
    "push and load": (BuildRequest(push=True, load=True), CacheExporter(), {}),
    "neither": (BuildRequest(load=False), CacheExporter(), {}),
    "builder, load": (BuildRequest(cache_mode="registry"), CLASSIC, {}),
    "builder, push": (BuildRequest(cache_mode="registry", push=True), CLASSIC, {}),
    "builder, push and load": (
        BuildRequest(cache_mode="local", push=True, load=True, tags=REGISTRY_TAG),
        CLASSIC,
        {},
    ),
    "inline fallback": (BuildRequest(cache_mode="registry", push=True), NO_BUILDER, {}),
    "zstd, load": (BuildRequest(compression="zstd"), CacheExporter(), {}),
    "zstd, push and load": (
        BuildRequest(compression="zstd", push=True, load=True),
        CacheExporter(),
        {},
    ),
    "zstd, builder, load": (BuildRequest(compression="zstd", cache_mode="registry"), CLASSIC, {}),
    "zstd, builder, push": (
        BuildRequest(compression="zstd", cache_mode="registry", push=True),
        CLASSIC,
        {},
    ),
    "reproducible, load": (BuildRequest(reproducible=True), CacheExporter(), {}),
    "reproducible, push": (
        BuildRequest(reproducible=True, push=True, cache_mode="registry"),
        CacheExporter(),
        {},
    ),
    "reproducible, neither": (BuildRequest(reproducible=True, load=False), CacheExporter(), {}),
    "two platforms": (
        BuildRequest(push=True, platforms=("linux/amd64", "linux/arm64")),
        CacheExporter(),
        {},
    ),
    "target, tags, build args": (
        BuildRequest(target="layer-torch", tags=("t:1", "t:2"), build_args=("A=1", "B=x y")),
        CacheExporter(),
        {},
    ),
    "network and provenance": (
        BuildRequest(),
        CacheExporter(),
        {"build_network": "host", "provenance": "true"},
    ),
}


def make(request: BuildRequest, exporter: CacheExporter, overrides: dict[str, str]) -> BuildPlan:
    settings = Settings.from_mapping({"state_dir": "/var/lib/test-state", **overrides}, ROOT)
    host = HostPackageSettings(
        ca_bundle=ROOT / "pyproject.toml",
        index_url="https://mirror.example/simple",
        extra_index_urls=("https://a.example/simple", "https://b.example/simple"),
    )
    return make_plan(
        settings, host, request, STAGES, NOW, ROOT / "requirements", 1700000000, exporter
    )


def called(plan: BuildPlan, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The command python-on-whales runs for the plan's call (caught before it runs)."""
    commands: list[list[str]] = []

    def catch(full_cmd: list[object], env: object = None) -> Iterator[str]:
        commands.append([str(part) for part in full_cmd])
        return iter(())

    monkeypatch.setattr(cli_wrapper, "stream_buildx_logs", catch)
    DockerClient(client_call=["docker"]).buildx.build(**plan.buildx_kwargs())
    (command,) = commands
    return command[command.index("buildx") :]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_logged_command_is_the_call_made(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make(*KINDS[kind])
    described = shlex.split(plan.describe())
    assert described[0] == "docker"
    assert described[1:] == called(plan, monkeypatch)


def test_a_reproducible_build_is_logged_as_the_oci_export_it_is() -> None:
    plan = make(*KINDS["reproducible, load"])
    described = shlex.split(plan.describe())
    assert "--load" not in described
    output = described[described.index("--output") + 1]
    assert output == f"type=oci,dest={plan.oci_archive},rewrite-timestamp=true"


def test_credentials_in_an_index_url_are_called_with_but_never_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_mapping({"state_dir": "/var/lib/test-state"}, ROOT)
    host = HostPackageSettings(index_url="https://user:token@mirror.example/simple")
    plan = make_plan(settings, host, BuildRequest(), STAGES, NOW)
    described = shlex.split(plan.describe())
    assert "PIP_INDEX_URL=https://***@mirror.example/simple" in described
    assert "token" not in plan.describe()
    assert "PIP_INDEX_URL=https://user:token@mirror.example/simple" in called(plan, monkeypatch)
