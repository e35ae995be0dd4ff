"""The mounts a killed engine leaves, found under its root."""

from __future__ import annotations

from pathlib import Path

from imagebuild.platform.processes import mounts_under

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
