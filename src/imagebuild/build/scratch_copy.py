"""A scratch copy of the repository, for builds that must not touch the work tree (the bench,
the integration tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def copy_tree(root: Path, destination: Path) -> Path:
    """Tracked and untracked-but-not-ignored files: what a clone plus local edits holds."""
    listed = (
        subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = root / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination
