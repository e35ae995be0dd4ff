"""Reading binfmt_misc's registrations: usable only enabled and with the F flag."""

from __future__ import annotations

from pathlib import Path

from imagebuild.platform.emulation import registration, usable


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
