"""Debian's facts and apt's answers, read without running apt."""

from __future__ import annotations

from imagebuild.platform.debian import apt_candidate_major, parse_os_release, pinned_siblings


def test_os_release() -> None:
    values = parse_os_release('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    assert values["ID"] == "debian" and values["VERSION_ID"] == "12"


def test_apt_candidate_major() -> None:
    bookworm = "docker.io:\n  Installed: (none)\n  Candidate: 20.10.24+dfsg1-1+deb12u1+b6\n"
    trixie = "docker.io:\n  Installed: (none)\n  Candidate: 26.1.5+dfsg1-9+deb13u1\n"
    assert apt_candidate_major(bookworm) == 20
    assert apt_candidate_major(trixie) == 26
    assert apt_candidate_major("docker.io:\n  Candidate: (none)\n") is None


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
