"""`inv bench --publish`: a report's table and chart go into docs/bench.md, between the
markers of its image variant, and nothing else of the page changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from imagebuild.bench.results import publish
from imagebuild.errors import UsageError

PAGE = """# Bench
<!-- bench:cpu:start -->
old cpu table
<!-- bench:cpu:end -->
Between the blocks.
<!-- bench:arm64:start -->
arm64 table
<!-- bench:arm64:end -->
"""


def report(directory: Path, variant: str) -> Path:
    directory.mkdir()
    (directory / "bench.json").write_text(json.dumps({"image_variant": variant}))
    (directory / "bench.md").write_text("| scenario | ours |\n| --- | --- |\n| cold | 1 s |\n")
    (directory / "bench.png").write_bytes(b"\x89PNG chart")
    return directory


def test_publish_replaces_its_variants_block_in_docs_bench_md(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bench.md").write_text(PAGE)
    said: list[str] = []
    publish(report(tmp_path / "out", "cpu"), tmp_path, said.append)
    page = (tmp_path / "docs" / "bench.md").read_text()
    assert "old cpu table" not in page
    assert "| cold | 1 s |\n\n![cpu image build time by scenario](bench/cpu.png)\n" in page
    assert page.endswith(
        "Between the blocks.\n<!-- bench:arm64:start -->\narm64 table\n<!-- bench:arm64:end -->\n"
    )
    assert (tmp_path / "docs" / "bench" / "cpu.png").read_bytes() == b"\x89PNG chart"
    assert json.loads((tmp_path / "docs" / "bench" / "cpu.json").read_text()) == {
        "image_variant": "cpu"
    }
    assert said == [f"docs/bench.md and docs/bench/cpu.* updated from {tmp_path / 'out'}"]


def test_a_variant_without_its_block_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bench.md").write_text(PAGE)
    with pytest.raises(
        UsageError, match=re.escape("docs/bench.md has no <!-- bench:cuda-csm:start -->")
    ):
        publish(report(tmp_path / "out", "cuda-csm"), tmp_path, print)
    assert (tmp_path / "docs" / "bench.md").read_text() == PAGE
    assert not (tmp_path / "docs" / "bench").exists()
