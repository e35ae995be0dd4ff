"""The bench harness on a tiny fixture: its mutations change what they should, and its
cached-step counts are right (real engine, sandboxed, seconds per build)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from imagebuild.bench.results import SCENARIOS, parse_scenarios
from imagebuild.bench.runner import run_bench
from imagebuild.errors import UsageError
from imagebuild.plan.config import Settings

pytestmark = pytest.mark.docker
FIXTURE = Path(__file__).parent / "fixtures" / "bench"


def fixture_repository(destination: Path) -> Path:
    shutil.copytree(FIXTURE, destination)
    subprocess.run(["git", "init", "-q", str(destination)], check=True)
    subprocess.run(["git", "-C", str(destination), "add", "-A"], check=True)
    return destination


def test_scenario_names_are_checked_and_ordered() -> None:
    assert parse_scenarios("app-change,no-change") == ("no-change", "app-change")
    assert parse_scenarios("") == SCENARIOS
    with pytest.raises(UsageError, match="unknown scenario"):
        parse_scenarios("warm")


def test_every_scenario_on_a_tiny_fixture(settings: Settings, tmp_path: Path) -> None:
    root = fixture_repository(tmp_path / "repo")
    fixture_settings = replace(settings, root=root, image="bench-fixture")
    result = run_bench(
        fixture_settings,
        SCENARIOS,
        1,
        tmp_path / "out",
        print,
        engine_name="bench-test",
        cidr="172.17.204.0/24",
    )

    def run(scenario: str, variant: str):  # type: ignore[no-untyped-def]
        found = result.result(scenario, variant)
        assert found is not None, (scenario, variant)
        return found.runs[0]

    # cold: nothing cached; no-change: everything cached.
    assert run("cold", "ours").steps_cached == 0 and run("cold", "baseline").steps_cached == 0
    for variant in ("ours", "baseline"):
        no_change = run("no-change", variant)
        assert no_change.steps_cached == no_change.steps_total > 0
    # app-change: ours rebuilds only the code steps; the baseline re-runs its install.
    assert sorted(run("app-change", "ours").rebuilt) == [
        "[runtime 1/2] COPY src/audiobook_tts /app/audiobook_tts",
        "[runtime 2/2] RUN cat /app/audiobook_tts/app.py > /app/done",
    ]
    assert (
        "[4/4] RUN cat requirements/*.txt > /installed.txt" in run("app-change", "baseline").rebuilt
    )
    # deps-change: the service lock's steps and what follows, never the torch steps.
    deps = run("deps-change", "ours").rebuilt
    assert "[dependencies 3/4] COPY requirements/service.txt /deps/service.txt" in deps
    assert not [name for name in deps if "torch" in name]
    # base-change: every step rebuilds.
    assert run("base-change", "ours").steps_cached == 0
    # fresh-runner: the registry cache alone brings every step back.
    fresh = run("fresh-runner", "ours")
    assert fresh.steps_cached == fresh.steps_total
    for name in ("bench.md", "bench.json", "bench.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "| app-change | 8-12 min |" in table
