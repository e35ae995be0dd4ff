"""The pure parts of `inv up`: os-release, daemon.json merge, apt policy, base recipe, locks."""

from __future__ import annotations

from pathlib import Path

from imagebuild.locks.compile import GROUPS, compile_command, compile_environment
from imagebuild.plan.config import HostPackageSettings
from imagebuild.platform.base_image import BaseRecipe, read_packages
from imagebuild.platform.debian import apt_candidate_major, parse_os_release, pinned_siblings
from imagebuild.platform.local import merge_daemon_config
from imagebuild.platform.processes import mounts_under

ROOT = Path(__file__).resolve().parents[2]


def test_os_release() -> None:
    values = parse_os_release('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    assert values["ID"] == "debian" and values["VERSION_ID"] == "12"


def test_daemon_json_is_merged_not_clobbered() -> None:
    existing = {"log-level": "warn", "features": {"buildkit": True}}
    merged = merge_daemon_config(existing)
    assert merged == {
        "log-level": "warn",
        "features": {"buildkit": True, "containerd-snapshotter": True},
    }
    assert existing == {"log-level": "warn", "features": {"buildkit": True}}
    assert merge_daemon_config(merged) == merged


def test_apt_candidate_major() -> None:
    bookworm = "docker.io:\n  Installed: (none)\n  Candidate: 20.10.24+dfsg1-1+deb12u1+b6\n"
    trixie = "docker.io:\n  Installed: (none)\n  Candidate: 26.1.5+dfsg1-9+deb13u1\n"
    assert apt_candidate_major(bookworm) == 20
    assert apt_candidate_major(trixie) == 26
    assert apt_candidate_major("docker.io:\n  Candidate: (none)\n") is None


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


def test_lock_commands_are_hashed_relative_and_ignore_host_pip_config() -> None:
    torch = next(group for group in GROUPS if group.name == "torch-cpu")
    service = next(group for group in GROUPS if group.name == "service")
    host = HostPackageSettings(find_links=(Path("/opt/wheels"),))
    torch_cmd = compile_command(torch, host)
    assert "--generate-hashes" in torch_cmd and "--allow-unsafe" in torch_cmd
    assert torch_cmd[-1] == "torch-cpu.in" and "--find-links" in torch_cmd
    assert "--find-links" not in compile_command(service, host)
    env = compile_environment(
        {
            "PIP_FIND_LINKS": "/opt/wheels",
            "PIP_EXTRA_INDEX_URL": "file:///opt/pypi/simple",
            "PIP_INDEX_URL": "https://mirror.example/simple",
            "HOME": "/root",
        }
    )
    assert env["PIP_CONFIG_FILE"] and "PIP_FIND_LINKS" not in env
    assert "PIP_EXTRA_INDEX_URL" not in env
    assert env["PIP_INDEX_URL"] == "https://mirror.example/simple"
    assert env["CUSTOM_COMPILE_COMMAND"] == "inv lock"


def test_siblings_held_at_a_newer_version_are_found_in_apts_complaint() -> None:
    log = """$ apt-get update
$ apt-get install -y docker.io/trixie
The following packages have unmet dependencies:
 iptables : Depends: libip4tc2 (= 1.8.9-2) but 1.8.11-2 is to be installed
            Depends: libxtables12 (= 1.8.9-2) but 1.8.11-2 is to be installed
E: Unable to correct problems, you have held broken packages.
"""
    assert pinned_siblings(log) == ["iptables"]
    assert pinned_siblings("$ apt-get install x\nE: Unable to locate package x\n") == []


MOUNTINFO = r"""
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
97 22 254:0 /var/lib/audiobook-tts/engines/tests/data /var/lib/audiobook-tts/engines/tests/data rw - ext4 /dev/vda rw
98 97 0:50 / /var/lib/audiobook-tts/engines/tests/data/overlay/x/merged rw - overlay overlay rw
99 22 0:51 / /var/lib/audiobook-tts/engines/tests-other rw - tmpfs tmpfs rw
100 22 0:52 / /var/lib/audiobook-tts/engines/tests/with\040space rw - tmpfs tmpfs rw
"""


def test_mounts_under_a_root_deepest_first_and_no_prefix_lookalikes() -> None:
    root = Path("/var/lib/audiobook-tts/engines/tests")
    assert mounts_under(MOUNTINFO, root) == [
        root / "data/overlay/x/merged",
        root / "data",
        root / "with space",
    ]
    assert mounts_under(MOUNTINFO, Path("/srv")) == []
