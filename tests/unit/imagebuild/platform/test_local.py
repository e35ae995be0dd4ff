"""`inv up`'s daemon.json: merged, never clobbered."""

from __future__ import annotations

from imagebuild.platform.local import merge_daemon_config


def test_daemon_json_is_merged_not_clobbered() -> None:
    existing = {"log-level": "warn", "features": {"buildkit": True}}
    merged = merge_daemon_config(existing)
    assert merged == {
        "log-level": "warn",
        "features": {"buildkit": True, "containerd-snapshotter": True},
    }
    assert existing == {"log-level": "warn", "features": {"buildkit": True}}
    assert merge_daemon_config(merged) == merged
