"""`inv doctor`'s verdicts from an engine's facts: pure, no daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild.ci.doctor import disk_check, engine_checks
from imagebuild.engine.docker import EngineFacts
from imagebuild.output import Check
from imagebuild.plan.config import Settings

ROOT = Path(__file__).resolve().parents[4]
SETTINGS = Settings.from_mapping({}, ROOT)


def facts(containerd: bool, version: str = "26.1.5") -> EngineFacts:
    return EngineFacts(version, "0.13.1", containerd, "/var/lib/docker")


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_the_containerd_store_exports_every_cache_itself() -> None:
    checks = by_name(engine_checks(SETTINGS, facts(True), None))
    assert [check.state for check in checks.values()] == ["ok"] * 5
    assert "registry" in checks["cache exporters"].detail


def test_the_classic_store_with_a_builder_exports_through_it() -> None:
    checks = by_name(engine_checks(SETTINGS, facts(False), None))
    assert checks["image store"].state == "warn"
    assert checks["drivers"].state == "ok" and "docker-container" in checks["drivers"].detail
    assert checks["cache exporters"].state == "ok"


def test_the_classic_store_without_a_builder_says_inline_only_and_how_to_fix_it() -> None:
    checks = by_name(engine_checks(SETTINGS, facts(False), "cannot pull moby/buildkit"))
    drivers, exporters = checks["drivers"], checks["cache exporters"]
    assert drivers.state == "warn" and "cannot pull moby/buildkit" in drivers.detail
    assert SETTINGS.buildkit_image in drivers.fix
    assert exporters.state == "warn" and "fall back to inline" in exporters.detail
    assert drivers.lines()[1].startswith("      fix: ")


def test_an_old_engine_fails_with_the_fix() -> None:
    engine = by_name(engine_checks(SETTINGS, facts(True, "20.10.24"), None))["engine"]
    assert engine.state == "FAIL" and "inv up" in engine.fix


@pytest.mark.parametrize(
    ("free_gb", "state"), [(2, "FAIL"), (5, "warn"), (29.9, "warn"), (30, "ok"), (300, "ok")]
)
def test_the_disk_check_fails_below_5_gb_and_warns_below_30(free_gb: float, state: str) -> None:
    check = disk_check("/var/lib/docker", int(free_gb * 10**9))
    assert check.state == state
    assert "free on the engine's data root (/var/lib/docker)" in check.detail
