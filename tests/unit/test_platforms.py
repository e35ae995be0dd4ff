"""Target platforms without a daemon: names, what a base lacks and the one line that says so,
the base recipe per architecture, and reading binfmt_misc's registrations."""

from __future__ import annotations

from pathlib import Path

from imagebuild.baseimage import BaseRecipe
from imagebuild.emulation import registration, usable
from imagebuild.plan import image_flavour
from imagebuild.platforms import (
    architecture,
    foreign,
    host_platform,
    missing_base_message,
    missing_platforms,
    normalize,
    platform_name,
)


def test_platform_names_compare_without_the_default_variant() -> None:
    assert normalize("linux/arm64/v8") == normalize("Linux/ARM64") == "linux/arm64"
    assert normalize("linux/arm/v7") == "linux/arm/v7"
    assert architecture("linux/arm64/v8") == "arm64" and architecture("linux/amd64") == "amd64"
    assert host_platform("x86_64") == "linux/amd64" and host_platform("aarch64") == "linux/arm64"
    assert foreign(["linux/amd64", "linux/arm64"], "x86_64") == ["linux/arm64"]
    assert foreign(["linux/amd64", "linux/arm64/v8"], "aarch64") == ["linux/amd64"]


def test_what_an_amd64_only_base_lacks_is_named_in_one_line() -> None:
    assert missing_platforms(["linux/amd64"], ["linux/arm64"]) == ["linux/arm64"]
    assert missing_platforms(["linux/amd64", "linux/arm64/v8"], ["linux/arm64"]) == []
    assert missing_platforms(["linux/amd64"], ["linux/amd64", "linux/arm64", "linux/arm/v7"]) == [
        "linux/arm64",
        "linux/arm/v7",
    ]
    message = missing_base_message("127.0.0.1:5000/a/base:x", ["linux/amd64"], ["linux/arm64"])
    assert "\n" not in message
    assert "has linux/amd64 only; linux/arm64 is missing" in message
    assert "`inv up --platform linux/amd64,linux/arm64`" in message


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


def test_a_binfmt_registration_is_usable_only_enabled_and_with_the_f_flag(tmp_path: Path) -> None:
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n"
        "offset 0\nmagic 7f454c460201010000000000000000000200b700\n"
    )
    (tmp_path / "qemu-arm").write_text("enabled\ninterpreter /usr/bin/qemu-arm\nflags: \n")
    (tmp_path / "qemu-riscv64").write_text("disabled\nflags: F\n")
    entry = registration("aarch64", tmp_path)
    assert entry["flags"] == "PF" and entry["interpreter"].endswith("aarch64-binfmt-P")
    assert usable("aarch64", tmp_path)
    assert not usable("arm", tmp_path)  # no F flag: the emulator is not found in a container
    assert not usable("riscv64", tmp_path) and not usable("s390x", tmp_path)


def test_an_image_for_another_architecture_gets_a_tag_of_its_own() -> None:
    assert image_flavour("cpu", ("espeak", "piper"), ("linux/arm64",), "x86_64") == "latest-arm64"
    assert image_flavour("cpu", ("espeak", "csm"), ("linux/arm64",), "x86_64") == (
        "cpu-espeak-csm-arm64"
    )
    assert image_flavour("cpu", ("espeak", "piper"), ("linux/amd64",), "x86_64") == "latest"
    assert image_flavour("cpu", ("espeak", "piper"), ("linux/arm64",), "aarch64") == "latest"
    # One index for both platforms keeps the plain tag.
    assert (
        image_flavour("cpu", ("espeak", "piper"), ("linux/amd64", "linux/arm64"), "x86_64")
        == "latest"
    )


def test_oci_platform_fields_name_a_platform() -> None:
    assert platform_name({"os": "linux", "architecture": "arm64", "variant": "v8"}) == (
        "linux/arm64"
    )
    assert platform_name({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    assert platform_name({"os": "unknown", "architecture": "unknown"}) == ""  # an attestation
