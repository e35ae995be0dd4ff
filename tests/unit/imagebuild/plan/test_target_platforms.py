"""Target platforms without a daemon: names, what a base lacks and the one line that
says so, the tag of an image for another architecture."""

from __future__ import annotations

from imagebuild.plan.request import image_flavour
from imagebuild.plan.target_platforms import (
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
