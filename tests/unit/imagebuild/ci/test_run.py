"""`inv ci`'s options: its cache from the `ci` section of the Invoke config or the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imagebuild.ci.run import CI_CACHES, CiOptions
from imagebuild.errors import UsageError

ROOT = Path(__file__).resolve().parents[4]


def test_invoke_yaml_keeps_the_registry_cache_for_runners_that_start_cold() -> None:
    section = yaml.safe_load((ROOT / "invoke.yaml").read_text())["ci"]
    assert CiOptions.from_config(section, "", True) == CiOptions(cache="registry", smoke=True)


@pytest.mark.parametrize("cache", CI_CACHES)
def test_the_flag_wins_over_the_config(cache: str) -> None:
    other = next(mode for mode in CI_CACHES if mode != cache)
    assert CiOptions.from_config({"cache": other}, cache, False) == CiOptions(cache, False)


def test_an_empty_section_means_the_registry_cache() -> None:
    assert CiOptions.from_config({}, "", True).cache == "registry"


@pytest.mark.parametrize(
    ("section", "flag", "message"),
    [
        ({"cache": "local"}, "", "ci cache 'local' is not one of registry, inline"),
        ({}, "s3", "ci cache 's3' is not one of registry, inline"),
        ({"cahce": "inline"}, "", "unknown ci setting(s) cahce; known: cache"),
    ],
)
def test_a_bad_value_is_one_clear_line(section: dict[str, str], flag: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        CiOptions.from_config(section, flag, True)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
