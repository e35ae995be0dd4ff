"""Settings from the Invoke config and the host's pip environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild.errors import UsageError
from imagebuild.plan.config import HostPackageSettings, Settings

ROOT = Path(__file__).resolve().parents[4]


def test_relative_paths_are_resolved_against_the_repository() -> None:
    settings = Settings.from_mapping(
        {"dockerfile": "docker/tts/Dockerfile", "log_dir": "logs"}, ROOT
    )
    assert settings.dockerfile_path == ROOT / "docker/tts/Dockerfile"
    assert settings.log_path == ROOT / "logs"
    assert settings.registry_cache_ref == "127.0.0.1:5000/audiobook-tts:buildcache"
    assert settings.owns_base_image


def test_unknown_and_bad_settings_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown imagebuild setting"):
        Settings.from_mapping({"imagee": "x"}, ROOT)
    with pytest.raises(UsageError, match="torch_variant"):
        Settings.from_mapping({"torch_variant": "rocm"}, ROOT)
    with pytest.raises(UsageError, match="true or false"):
        Settings.from_mapping({"provenance": "maybe"}, ROOT)


def test_a_docker_hub_base_is_not_ours_to_make() -> None:
    assert not Settings.from_mapping(
        {"base_image": "python:3.11-slim-bookworm"}, ROOT
    ).owns_base_image


def test_host_settings_take_files_dirs_and_http_urls_only(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("pem")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    host = HostPackageSettings.from_environ(
        {
            "SSL_CERT_FILE": str(bundle),
            "PIP_CERT": str(tmp_path / "missing.pem"),
            "PIP_FIND_LINKS": f"{wheels} file://{wheels} /does/not/exist https://x/wheels",
            "PIP_INDEX_URL": "file:///opt/pypi/simple",
            "PIP_EXTRA_INDEX_URL": "https://a.example/simple file:///x https://b.example/simple",
        }
    )
    assert host.ca_bundle == bundle
    assert host.find_links == (wheels,)
    assert host.index_url is None
    assert host.extra_index_urls == ("https://a.example/simple", "https://b.example/simple")
    assert any("missing.pem" in note for note in host.ignored)
    assert any("file:///opt/pypi/simple" in note for note in host.ignored)
