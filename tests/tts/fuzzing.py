"""Schemathesis against a running service, as the tts checks run it: every check, this
project's config (tests/tts/schemathesis.toml), the output kept in build-logs/tts/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")
REPORTS = Path(__file__).resolve().parents[2] / "build-logs" / "tts"


def run_schemathesis(
    url: str, report: str, max_examples: int, *options: str
) -> subprocess.CompletedProcess[str]:
    """schemathesis over `url`'s OpenAPI document; its output also written to `report`."""
    binary = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(binary),
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/openapi.json",
            *options,
            "--checks",
            "all",
            "--max-examples",
            str(max_examples),
            "--request-timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / report).write_text(result.stdout + result.stderr)
    return result
