"""`inv context` agrees with what BuildKit receives; `inv cache-check` passes, explains, and fails."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from imagebuild.build.cache_check import cache_check
from imagebuild.errors import ImageBuildError
from imagebuild.plan.config import Settings
from imagebuild.plan.context import ContextManifest
from imagebuild.plan.request import BuildRequest

from .conftest import Sandbox

pytestmark = pytest.mark.docker


def test_context_listing_matches_what_buildkit_receives(
    docker_client: DockerClient, scratch_repo: Path, tmp_path: Path
) -> None:
    extras = {
        "src/audiobook_tts/data/new.txt": "kept",
        "src/audiobook_tts/__pycache__/app.cpython-311.pyc": "dropped",
        "docs/notes.md": "dropped",
        "requirements/extra.in": "dropped",
    }
    for name, text in extras.items():
        (scratch_repo / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch_repo / name).write_text(text)
    dockerfile = tmp_path / "context.Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY . /\n")
    out = tmp_path / "out"
    docker_client.buildx.build(
        scratch_repo, file=dockerfile, output={"type": "local", "dest": str(out)}, progress=False
    )
    received = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    listed = [item.path for item in ContextManifest.of(scratch_repo).files]
    assert listed == received
    assert "src/audiobook_tts/data/new.txt" in listed
    assert not [p for p in listed if "__pycache__" in p or p.startswith("docs/")]


def scratch(settings: Settings, root: Path) -> Settings:
    return replace(
        settings, root=root, dockerfile=root / "docker/tts/Dockerfile", log_dir=root / "build-logs"
    )


def test_cache_check_passes_and_explains_a_change(settings: Settings, scratch_repo: Path) -> None:
    local = scratch(settings, scratch_repo)
    tag = (f"audiobook-tts-it:{uuid.uuid4().hex[:8]}",)
    lines: list[str] = []
    cache_check(local, BuildRequest(tags=tag), lines.append, start_platform=False)
    assert lines[-1] == "cache check passed: every step hit the cache"
    source = scratch_repo / "src/audiobook_tts/cli.py"
    source.write_text(source.read_text() + f"\n# {uuid.uuid4()}\n")
    lines.clear()
    verdicts = cache_check(local, BuildRequest(tags=tag), lines.append, start_platform=False)
    text = "\n".join(lines)
    assert "context file changed: src/audiobook_tts/cli.py (changed)" in text
    assert all(v.cached for v in verdicts)


def test_cache_check_fails_when_the_builder_forgot(sandbox: Sandbox, scratch_repo: Path) -> None:
    local = scratch(sandbox.settings, scratch_repo)
    request = BuildRequest(target="base", tags=(f"audiobook-tts-it:{uuid.uuid4().hex[:8]}",))
    cache_check(local, request, lambda _: None, start_platform=False)
    sandbox.docker.buildx.prune(all=True)
    lines: list[str] = []
    with pytest.raises(ImageBuildError, match="missed the cache although nothing"):
        cache_check(local, request, lines.append, start_platform=False)
    assert "not in the builder's cache" in "\n".join(lines), lines
