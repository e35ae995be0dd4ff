"""An image without the listener (the default) still serves: nothing the service imports at
start needs the listener's lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[4] / "src"
LISTENER_ONLY = ("faster_whisper", "ctranslate2", "jiwer", "rapidfuzz", "whisper_normalizer")


def test_the_service_and_command_line_import_without_the_listeners_libraries() -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in LISTENER_ONLY)
    code = (
        f"import sys; {blocked}; import audiobook_tts.app, audiobook_tts.cli; "
        "from audiobook_tts.config import ServiceSettings; "
        "from audiobook_tts.listening.listener import load_listener; "
        "print(load_listener(ServiceSettings(listener_model='off')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"
