"""The base image's recipe: its architectures and its digest, without a daemon."""

from __future__ import annotations

from pathlib import Path

from imagebuild.platform.base_image import BaseRecipe, read_packages

ROOT = Path(__file__).resolve().parents[4]


def test_the_base_recipe_covers_its_architectures(tmp_path: Path) -> None:
    one = BaseRecipe("bookworm", "http://deb.debian.org/debian", ("python3",), "FROM scratch\n")
    two = BaseRecipe(
        "bookworm",
        one.mirror,
        ("python3",),
        "FROM scratch\n",
        ("linux/amd64", "linux/arm64"),
    )
    assert one.digest() != two.digest()
    same = BaseRecipe(
        "bookworm", one.mirror, ("python3",), "FROM scratch\n", ("linux/arm64", "linux/amd64")
    )
    assert same.digest() == two.digest()
    command = two.mmdebstrap_command(tmp_path / "rootfs-arm64.tar", "linux/arm64")
    assert "--architectures=arm64" in command
    assert "--architectures=amd64" in one.mmdebstrap_command(tmp_path / "rootfs-amd64.tar")


def test_base_recipe_digest_follows_the_package_list(tmp_path: Path) -> None:
    packages = read_packages(ROOT / "docker/base/packages.txt")
    assert "espeak-ng" in packages and "python3-venv" in packages
    recipe = BaseRecipe("bookworm", "http://deb.debian.org/debian", packages, "FROM scratch\n")
    changed = BaseRecipe(
        "bookworm", "http://deb.debian.org/debian", (*packages, "sox"), "FROM scratch\n"
    )
    assert recipe.digest() != changed.digest()
    assert (
        recipe.digest()
        == BaseRecipe(
            "bookworm", recipe.mirror, tuple(reversed(packages)), "FROM scratch\n"
        ).digest()
    )
    command = recipe.mmdebstrap_command(tmp_path / "rootfs.tar")
    assert command[0] == "mmdebstrap" and "--variant=minbase" in command
    assert "deb http://deb.debian.org/debian-security bookworm-security main" in command
