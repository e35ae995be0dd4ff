"""The lock freshness check against the real package index (pip-compile, no mocks)."""

from __future__ import annotations

import shutil
from pathlib import Path

from imagebuild.locks.compile import check_locks

ROOT = Path(__file__).resolve().parents[2]


def test_an_in_file_changed_without_inv_lock_is_stale(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements"
    shutil.copytree(ROOT / "requirements", requirements)
    # torch-cuda resolves for minutes on a cold cache; the other groups show the point. The
    # listener's lock is compiled against csm's, so it goes with it.
    names = ("torch-cuda", "csm", "listener")
    for name in (f"{group}.{kind}" for group in names for kind in ("in", "txt")):
        (requirements / name).unlink()
    assert check_locks(requirements, lambda _: None) == []
    # A package in no lock yet (one another lock holds would show up in that lock's "via").
    with (requirements / "service.in").open("a") as handle:
        handle.write("tomli-w\n")
    stale = check_locks(requirements, lambda _: None)
    assert [item.group for item in stale] == ["service"]
    assert "+tomli-w==" in stale[0].diff
